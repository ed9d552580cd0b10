"""Strict validation of request input: JSON bodies against pydantic models, free text, path ids.

A request body is a pydantic model on :class:`Body` (the models are in :mod:`shared.api_models`):
strict JSON types (``true`` is not a number, a number is not a string), unknown fields refused,
``null`` the same as an absent field, strings stripped, and text fields (:data:`Text`, :data:`Line`)
free of control characters, bidi overrides and lone surrogates. :func:`validate_body` turns the first
failure into one :class:`~shared.errors.Invalid` (400) in Folio's words, naming the field's path
(``filters.docType``) in the detail and in ``fields``; pydantic's own messages and the input values
never reach the caller.

Pydantic costs nothing at cold start: the HTTP streaming extension loads it with FastAPI, and the
models build their validators on first use (``defer_build``).
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from shared.errors import Invalid, NotFound

# The first character that a text field may not hold: C0 controls (multi-line text keeps tab, line
# feed and carriage return), DEL and C1 controls, bidi overrides and isolates (they make a name
# display as something else: "invoice\u202etxt.pdf" shows as "invoicefdp.txt"), and lone surrogates,
# which JSON can carry but UTF-8, and so PostgreSQL, cannot. Single-line text (names, titles) also
# refuses tabs, line breaks and the Unicode line and paragraph separators. The ranges are written as
# regex escapes, so shared.api_models states the same rule in the OpenAPI patterns (without the lone
# surrogates, which a pattern cannot name portably).
TEXT_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
LINE_CONTROLS = TEXT_CONTROLS + r"\t\n\r\u2028\u2029"
_SURROGATES = r"\ud800-\udfff"
_BAD_TEXT = re.compile(f"[{TEXT_CONTROLS}{_SURROGATES}]")
_BAD_LINE = re.compile(f"[{LINE_CONTROLS}{_SURROGATES}]")


def text_problem(value: str, *, single_line: bool = False) -> Literal["control", "unicode"] | None:
    """What is wrong with ``value`` as user-visible text, decided by its first offending character."""
    found = (_BAD_LINE if single_line else _BAD_TEXT).search(value)
    if found is None:
        return None
    return "unicode" if 0xD800 <= ord(found.group()) <= 0xDFFF else "control"


def check_text(name: str, value: str, *, single_line: bool = False) -> None:
    """Raise :class:`Invalid` naming ``name`` if ``value`` is not acceptable text (see ``TEXT_CONTROLS``)."""
    problem = text_problem(value, single_line=single_line)
    if problem == "control":
        raise Invalid(f"Field '{name}' contains control characters.", fields=[name])
    if problem == "unicode":
        raise Invalid(f"Field '{name}' is not valid Unicode text.", fields=[name])


def _text_validator(single_line: bool) -> AfterValidator:
    def check(value: str) -> str:
        problem = text_problem(value, single_line=single_line)
        if problem is not None:
            # Our own error type, translated by _detail(); the message is never shown.
            raise PydanticCustomError(f"folio_text_{problem}", "not acceptable text")
        return value

    return AfterValidator(check)


# Strings a body may carry, stripped, then checked: Text may span lines (tabs and line breaks pass),
# Line is one line (names, titles). Limits go where they are used: ``Annotated[Line, Field(max_length=200)]``.
Text = Annotated[str, StringConstraints(strip_whitespace=True), _text_validator(single_line=False)]
Line = Annotated[str, StringConstraints(strip_whitespace=True), _text_validator(single_line=True)]
# A UUID in its JSON string form (strict mode would accept only a Python UUID object).
Id = Annotated[UUID, Field(strict=False)]


class Body(BaseModel):
    """Base of every request body model (and of the objects nested in one).

    Field names are snake_case in Python and camelCase on the wire (``collection_ids`` is
    ``collectionIds``); only the camelCase name is accepted.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """``"field": null`` means the same as leaving the field out: its default, or "is required"."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


B = TypeVar("B", bound=BaseModel)


def parse_json(body: bytes) -> Any:
    """The JSON document in a request body; anything unreadable is a 400 saying why, in a sentence."""
    if not body:
        raise Invalid("The request body is empty; send a JSON object.")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Invalid("The request body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        # Composed here, not the parser's own message: a position is all a caller needs.
        raise Invalid(f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise Invalid("The request body is nested too deeply.") from None
    except ValueError:  # e.g. an integer longer than Python's digit limit
        raise Invalid("The request body holds a value that cannot be read.") from None


def validate_body(model: type[B], data: Any) -> B:
    """``data`` (parsed JSON) as ``model``, or :class:`Invalid` describing the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(model, exc.errors(include_url=False, include_input=False)) from None


def parse_uuid(value: str, what: str) -> UUID:
    """A path id; malformed ids are reported as not found, so ids are opaque to callers."""
    try:
        return UUID(value)
    except (ValueError, TypeError):
        raise NotFound(f"No such {what}.") from None


# --- pydantic's errors in Folio's words ---------------------------------------------------------

_JSON_TYPES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}
_JSON_PLURALS = {
    "a string": "strings",
    "an integer": "integers",
    "a boolean": "booleans",
    "a number": "numbers",
    "an array": "arrays",
    "an object": "objects",
}


def _invalid(model: type[BaseModel], errors: Sequence[ErrorDetails]) -> Invalid:
    unknown = sorted(_path(e["loc"]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:  # all of them at once, as a caller will want to fix them together
        return Invalid(f"Unknown field(s): {', '.join(unknown)}.", fields=unknown)
    error = errors[0]
    loc = error["loc"]
    if not loc:  # the body itself
        return Invalid("The request body must be a JSON object.")
    name = _path(loc)
    return Invalid(_detail(error, name, item=isinstance(loc[-1], int), field=_field_at(model, loc)), fields=[name])


def _path(loc: tuple[int | str, ...]) -> str:
    """``("filters", "docType", 3)`` -> ``filters.docType``: the field as the API documents it."""
    return ".".join(str(part) for part in loc if isinstance(part, str))


def _detail(error: ErrorDetails, name: str, *, item: bool, field: FieldInfo | None) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    subject = f"Field '{name}'"
    if kind == "missing":
        return f"{subject} is required."
    if kind in _JSON_TYPES:
        expected = _JSON_TYPES[kind]
        return f"{subject} must be an array of {_JSON_PLURALS[expected]}." if item else f"{subject} must be {expected}."
    if kind in ("uuid_type", "uuid_parsing", "uuid_version"):
        return f"{subject} holds a malformed id." if item else f"{subject} is not a valid id."
    if kind in ("string_unicode", "folio_text_unicode"):
        return f"{subject} is not valid Unicode text."
    if kind == "folio_text_control":
        return f"{subject} contains control characters."
    if kind in ("string_too_short", "too_short"):
        least = int(ctx.get("min_length", 1))
        if ctx.get("field_type") == "List":
            return f"{subject} must hold at least {least} item{'s' if least != 1 else ''}."
        return f"{subject} must not be empty." if least == 1 else f"{subject} must be at least {least} characters."
    if kind in ("string_too_long", "too_long"):
        most = ctx.get("max_length")
        if ctx.get("field_type") == "List":
            return f"{subject} must hold at most {most} items."
        return f"{subject} must be at most {most} characters."
    if kind in ("literal_error", "enum"):
        choices = _choices(field)
        return f"{subject} must be one of: {', '.join(choices)}." if choices else f"{subject} has an unknown value."
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{subject} must be {_range(field, ctx)}."
    if kind == "string_pattern_mismatch":
        return f"{subject} is not in the expected form."
    return f"{subject} is not valid."


def _field_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    """The declaration of the field at ``loc``, following nested models; None where there is none."""
    current: type[BaseModel] | None = model
    found: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list: the list's declaration describes it
        if current is None:
            return None
        found = next((info for attr, info in current.model_fields.items() if (info.alias or attr) == part), None)
        if found is None:
            return None
        inner = _unwrap(found.annotation)
        current = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
    return found


def _unwrap(annotation: Any) -> Any:
    """The type inside ``Annotated``, ``X | None`` and ``list[X]``."""
    origin = get_origin(annotation)
    if origin is Annotated or origin is list:
        return _unwrap(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrap(rest[0]) if len(rest) == 1 else annotation
    return annotation


def _choices(field: FieldInfo | None) -> list[str]:
    inner = _unwrap(field.annotation) if field is not None else None
    return [str(choice) for choice in get_args(inner)] if get_origin(inner) is Literal else []


def _range(field: FieldInfo | None, ctx: dict[str, Any]) -> str:
    bounds = dict(ctx)
    for constraint in field.metadata if field is not None else ():
        for key in ("ge", "gt", "le", "lt"):
            if getattr(constraint, key, None) is not None:
                bounds[key] = getattr(constraint, key)
    if "ge" in bounds and "le" in bounds:
        return f"between {bounds['ge']} and {bounds['le']}"
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
    return " and ".join(f"{words[key]} {bounds[key]}" for key in words if key in bounds)
