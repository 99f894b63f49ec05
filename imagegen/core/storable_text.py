"""Text that can be stored: no lone UTF-16 surrogates anywhere in what a user sent.

JSON (`"\\ud800"`) and YAML (`"\\udfff"`) can both spell a code point from U+D800 to U+DFFF
on its own. Python keeps such a string, but it has no UTF-8 form: a job holding one
would be accepted, run, and then fail writing its manifest. So every string of a job
(keys too) is checked at intake and a lone surrogate is refused with its field named.

A high surrogate followed by a low one is a character spelled as a UTF-16 pair: JSON
joins those itself, YAML does not (`"\\ud83d\\ude00"` is two code points to PyYAML), so
pairs are joined here and only lone halves are refused.
"""

from __future__ import annotations

import re
from typing import Any

from imagegen.core.nesting import TooDeep, check_data_depth, depth_error
from imagegen.core.types import FieldError, JobValidationError

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_document(document: Any) -> Any:
    """`document` with surrogate pairs joined; raises JobValidationError naming every
    field that holds a lone surrogate, or the field past `MAX_DEPTH` (rule `max_depth`).

    Neither the depth check nor the walk recurses (each is a loop over an explicit stack),
    so data of any depth, parsed here or handed in, is safe to pass."""
    try:
        check_data_depth(document)
    except TooDeep as error:
        raise depth_error(error) from None
    errors: list[FieldError] = []
    cleaned = _clean(document, "", errors)
    if errors:
        raise JobValidationError(errors)
    return cleaned


def _clean(document: Any, path: str, errors: list[FieldError]) -> Any:
    """A copy of `document` with every string (keys too) made storable, errors in document
    order. Each container is copied empty, then filled as its items come off the stack:
    (item, the copy it goes into, its key or index there, the copy's path)."""
    root: dict[str, Any] = {}
    stack: list[tuple[Any, dict[Any, Any] | list[Any], Any, str]] = [(document, root, "", path)]
    while stack:
        value, parent, key, parent_path = stack.pop()
        if parent is root:
            at = parent_path
        elif isinstance(parent, list):
            at = f"{parent_path}[{key}]"
        else:
            if isinstance(key, str):
                key = _storable(key, f"{parent_path}.{key!r}" if parent_path else repr(key), errors)
            at = f"{parent_path}.{key}" if parent_path else str(key)
        if isinstance(value, str):
            value = _storable(value, at or "body", errors)
        elif isinstance(value, (list, dict)):
            items = list(value.items() if isinstance(value, dict) else enumerate(value))
            value = [None] * len(items) if isinstance(value, list) else {}
            stack.extend((item, value, name, at) for name, item in reversed(items))
        parent[key] = value
    return root[""]


def _storable(text: str, path: str, errors: list[FieldError]) -> str:
    if not _SURROGATE.search(text):
        return text
    lone = _first_lone_surrogate(text)
    if lone is None:   # only whole pairs: one character each
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    position, code_point = lone
    errors.append(FieldError(path=path, rule="lone_surrogate", message=(
        f"`{path}` has a lone UTF-16 surrogate U+{code_point:04X} at character {position}, which no "
        "UTF-8 text can hold: write the character itself, or remove the stray escape")))
    return text


def _first_lone_surrogate(text: str) -> tuple[int, int] | None:
    """(index, code point) of the first surrogate that is not half of a high-low pair."""
    index = 0
    while index < len(text):
        code = ord(text[index])
        if 0xD800 <= code <= 0xDBFF and index + 1 < len(text) and 0xDC00 <= ord(text[index + 1]) <= 0xDFFF:
            index += 2
        elif 0xD800 <= code <= 0xDFFF:
            return index, code
        else:
            index += 1
    return None
