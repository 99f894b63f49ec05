"""Errors in words a person can act on: each names the field, the rule and the value.

Shared by everything that checks user input — job specs (`imagegen.jobs.spec`), Foundry bodies
(`imagegen.jobs.foundry_body`), schedule files (`imagegen.jobs.schedule_files`) and source images
(`imagegen.storage.source_images`) — so a bad field reads the same wherever it was sent.
`FieldError` and `JobValidationError` themselves live in `imagegen.core.types`.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from imagegen.core.types import FieldError, JobValidationError


def fail(rule: str, message: str, *, at: str | None = None) -> PydanticCustomError:
    """An error from a field check. `message` says `{path}` where the field's dotted path
    goes: a check on one size does not know it is `variants.sizes[2]`; `field_errors` does.
    `at` extends the path when a model-level check blames one of the model's fields."""
    context = {"message": message} if at is None else {"message": message, "at": at}
    return PydanticCustomError(rule, "{message}", context)


def reject(path: str, rule: str, message: str) -> JobValidationError:
    """One bad field, as the exception every intake path raises."""
    return JobValidationError([FieldError(path=path, rule=rule, message=message)])


def show_value(value: Any) -> str:
    """A value as it goes in a message: repr, cut short so a 2 MB prompt stays readable."""
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:40]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= 80 else text[:70] + "..."


def did_you_mean(path: str, key: Any, known: list[str] | tuple[str, ...]) -> str:
    """The message for an unknown field: the closest known name, else all of them."""
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`?" if close else "known fields: " + ", ".join(f"`{k}`" for k in known)
    return f"`{path}` is not a known field; {hint}"


# Tags of discriminated unions (`seeds` is a count or a list): never part of a user's path.
_UNION_TAGS = {"seeds-count", "seeds-list"}
_TYPE_WORDS = {
    "string_type": "text", "int_type": "a whole number", "int_from_float": "a whole number",
    "int_parsing": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "list_type": "a list (write [value] for one value)",
    "dict_type": "a mapping of fields", "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
}


def format_path(loc: tuple[int | str, ...]) -> str:
    """('prompts', 1, 'strength') -> 'prompts[1].strength'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in _UNION_TAGS:
            path += f".{part}" if path else str(part)
    return path


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds: `X`, `X | None`, `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _known_fields(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The fields of the model found at `loc` below `model` (list indexes skipped)."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or part in _UNION_TAGS:
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def field_errors(error: ValidationError, model: type[BaseModel] | None = None) -> list[FieldError]:
    """Every pydantic error as a FieldError: dotted path, rule id, and a sentence.

    `model` is the model that was validated: an unknown field is answered with the closest
    field of the model it was found in."""
    found = []
    for item in error.errors(include_url=False):
        loc, kind, ctx = tuple(item["loc"]), item["type"], item.get("ctx") or {}
        path = format_path(loc)
        if ctx.get("at"):
            path = f"{path}.{ctx['at']}" if path else ctx["at"]
        value = item.get("input")
        if "message" in ctx:  # one of our checks
            rule, message = kind, str(ctx["message"]).replace("{path}", path)
        elif kind == "missing":
            rule, message = "required", f"`{path}` is required"
        elif kind == "extra_forbidden":
            rule, message = "unknown_field", did_you_mean(path, loc[-1], _known_fields(model, loc[:-1]))
        elif kind in _TYPE_WORDS:
            rule, message = "type", f"`{path}` must be {_TYPE_WORDS[kind]}, got {show_value(value)}"
        elif kind == "literal_error":
            rule, message = "choice", f"`{path}` must be one of {ctx.get('expected')}, got {show_value(value)}"
        elif kind == "too_short":
            rule, message = "empty", f"`{path}` must have at least one entry"
        else:  # a pydantic rule we do not word ourselves; still name field and value
            rule, message = kind, f"`{path}` is invalid ({item['msg']}), got {show_value(value)}"
        found.append(FieldError(path=path, rule=rule, message=message))
    return found
