"""Job documents: JSON or YAML text to Python data, with errors that say where.

YAML is read without aliases (`*a` repeated can make a 1 kB file expand to gigabytes).
"""

from __future__ import annotations

import json
from typing import Any

from imagegen.core.types import FieldError, JobValidationError


def _yaml_loader() -> type[Any]:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]  # yaml ships no types: SafeLoader is Any
        """SafeLoader without aliases: `*a` repeated can make a 1 kB file expand to
        gigabytes in memory (the "billion laughs"), and jobs never need them."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "YAML aliases (*name) are not allowed in job files", event.start_mark
                )
            return super().compose_node(parent, index)

    return Loader


def _syntax_error(kind: str, line: int | None, column: int | None, problem: str) -> JobValidationError:
    where = f" at line {line}, column {column}" if line else ""
    return JobValidationError([FieldError(path="", rule="syntax", message=f"the job is not valid {kind}{where}: {problem}")])


def load_document(text: str, *, filename: str | None = None) -> Any:
    """JSON or YAML text -> Python data. JSON by a .json name, YAML by .yaml/.yml, else sniffed."""
    import yaml

    suffix = (filename or "").lower().rsplit(".", 1)[-1] if filename and "." in filename else ""
    as_json = suffix == "json" or (suffix not in ("yaml", "yml") and text.lstrip()[:1] in ("{", "["))
    try:
        if as_json:
            return json.loads(text)
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as error:
        raise _syntax_error("JSON", error.lineno, error.colno, error.msg) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        raise _syntax_error("YAML", mark and mark.line + 1, mark and mark.column + 1, problem) from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:  # e.g. nesting or huge numbers
        raise _syntax_error("YAML" if not as_json else "JSON", None, None, str(error) or "too deeply nested") from None
