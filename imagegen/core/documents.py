"""Job documents: JSON or YAML text to Python data, with errors that say where.

YAML is read without aliases (`*a` repeated can make a 1 kB file expand to gigabytes).
Neither may nest deeper than `imagegen.core.nesting.MAX_DEPTH`: JSON is measured before
it is parsed, YAML as it is composed (PyYAML's composer recurses once a level, so it
stops at the limit).
"""

from __future__ import annotations

import json
from typing import Any

from imagegen.core.nesting import MAX_DEPTH, TooDeep, check_json_depth, depth_error
from imagegen.core.types import FieldError, JobValidationError


def _yaml_loader() -> type[Any]:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]  # yaml ships no types: SafeLoader is Any
        """SafeLoader without aliases: `*a` repeated can make a 1 kB file expand to
        gigabytes in memory (the "billion laughs"), and jobs never need them. It composes
        at most MAX_DEPTH collections one inside another (its recursion stops there)."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "YAML aliases (*name) are not allowed in job files", event.start_mark
                )
            return super().compose_node(parent, index)

        def compose_sequence_node(self, anchor: Any) -> Any:
            self.enter_collection()
            try:
                return super().compose_sequence_node(anchor)
            finally:
                self.depth -= 1

        def compose_mapping_node(self, anchor: Any) -> Any:
            self.enter_collection()
            try:
                return super().compose_mapping_node(anchor)
            finally:
                self.depth -= 1

        def enter_collection(self) -> None:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise TooDeep(f"at line {mark.line + 1}, column {mark.column + 1}")

    return Loader


def _syntax_error(what: str, kind: str, line: int | None, column: int | None, problem: str) -> JobValidationError:
    where = f" at line {line}, column {column}" if line else ""
    return JobValidationError([FieldError(path="", rule="syntax", message=f"{what} is not valid {kind}{where}: {problem}")])


def load_document(text: str, *, filename: str | None = None, what: str = "the job") -> Any:
    """JSON or YAML text -> Python data. JSON by a .json name, YAML by .yaml/.yml, else sniffed.

    Raises JobValidationError: rule `syntax` (where and what), or `max_depth`; `what` names
    the document in those messages."""
    import yaml

    suffix = (filename or "").lower().rsplit(".", 1)[-1] if filename and "." in filename else ""
    as_json = suffix == "json" or (suffix not in ("yaml", "yml") and text.lstrip()[:1] in ("{", "["))
    try:
        if as_json:
            check_json_depth(text)
            return json.loads(text)
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except TooDeep as error:
        raise depth_error(error, what) from None
    except json.JSONDecodeError as error:
        raise _syntax_error(what, "JSON", error.lineno, error.colno, error.msg) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        raise _syntax_error(what, "YAML", mark and mark.line + 1, mark and mark.column + 1, problem) from None
    except (yaml.YAMLError, ValueError) as error:  # e.g. huge numbers
        raise _syntax_error(what, "YAML" if not as_json else "JSON", None, None, str(error) or "unreadable") from None


def load_json(data: bytes | str, what: str = "the body") -> Any:
    """A JSON request body -> Python data, its depth measured before it is parsed.

    Raises JobValidationError (rule `max_depth`) for a body nested too deeply, and
    `ValueError` (json's own, or a `UnicodeDecodeError`) for one that is not JSON, so a
    route can answer the latter in its own words. Bytes are decoded as `json.loads`
    decodes them (UTF-8, -16 or -32)."""
    text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
    try:
        check_json_depth(text)
    except TooDeep as error:
        raise depth_error(error, what) from None
    return json.loads(text)
