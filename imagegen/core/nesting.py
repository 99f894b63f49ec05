"""How deeply a document nests, measured without recursion, before anything walks it.

Python's parsers and every walk over parsed data recurse once or more per level: a few
hundred levels of `[[[[...` (a 1 kB body) overflow the stack, and `json.loads` then raises
`RecursionError`, which is no `ValueError`; PyYAML's composer and `repr` do the same. So
depth is counted here first, by loops with an explicit position (the text) or stack (the
data), and anything deeper than `MAX_DEPTH` is refused before a parser or a walk sees it.

Depth counts containers: `"a"` is 0 deep, `{"prompts": [{"text": "a"}]}` 3. A job is
about 5 deep at most (a schedule's job one more), a Foundry body 2, a review pass 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from imagegen.core.types import FieldError, JobValidationError

# The most containers a JSON or YAML document may hold one inside another: far more than
# any job, schedule or request needs, far fewer than any parser or walk can take.
MAX_DEPTH = 32

# A JSON string (with its escapes; an unterminated one runs to the end) or a bracket. The
# unrolled loop `[^"\\]*(?:\\.[^"\\]*)*` reads a long string (a base64 image) in one match.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """A document nests deeper than the limit. `where` says where it passed the limit
    (`at line L, column C` in text); `field`, in parsed data, is the first field past it."""

    def __init__(self, where: str, limit: int = MAX_DEPTH, field: str = ""):
        self.where = where
        self.limit = limit
        self.field = field
        super().__init__(f"nests more than {limit} levels deep ({where})")


def check_json_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when the JSON `text` opens more than `limit` brackets one inside
    another (brackets inside strings do not count). It reads the text whatever its syntax:
    JSON errors are the parser's to report, after this."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > limit:
                raise TooDeep(_line_and_column(text, token.start()), limit)
        elif bracket in ("]", "}"):
            depth = max(0, depth - 1)


def check_data_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when parsed data (dicts and lists) nests deeper than `limit`, naming
    the first field past it. A loop over an explicit stack: any depth is safe to measure."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth + 1 > limit:
            raise TooDeep(f"at `{path}`" if path else "at the top", limit, field=path)
        stack.extend((child, depth + 1, child_path) for child_path, child in _children(item, path))


def _children(item: dict[Any, Any] | list[Any], path: str) -> Iterator[tuple[str, Any]]:
    """The containers directly inside `item`, each with its path; scalars are skipped."""
    pairs = item.items() if isinstance(item, dict) else enumerate(item)
    for key, child in pairs:
        if isinstance(child, (dict, list)):
            yield (f"{path}[{key}]" if isinstance(item, list) else f"{path}.{key}" if path else str(key)), child


def depth_error(error: TooDeep, what: str = "the document") -> JobValidationError:
    """The error a user sees: the field past the limit (for text, "": the whole document),
    rule `max_depth`, the limit, and where it was passed."""
    return JobValidationError([FieldError(path=error.field, rule="max_depth", message=(
        f"{what} nests more than {error.limit} levels deep ({error.where}); the limit is "
        f"{error.limit} levels of lists and mappings one inside another (a job needs about 5)"))])


def _line_and_column(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return f"at line {line}, column {column}"
