"""Strict validation of JSON request bodies: wrong types and unknown fields are 400s, not surprises."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.errors import Invalid


@dataclass(frozen=True)
class Field:
    kind: type
    required: bool = False
    max_length: int | None = None
    min_length: int = 0
    choices: tuple[str, ...] | None = None
    strip: bool = True
    single_line: bool = False  # names and titles: no line breaks or tabs either


# Characters that make a name display as something else: bidi overrides and isolates.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def parse_json(body: bytes) -> Any:
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


def parse_object(data: Any, spec: dict[str, Field]) -> dict[str, Any]:
    """Check ``data`` against ``spec``; returns only the known fields, strings stripped."""
    if not isinstance(data, dict):
        raise Invalid("The request body must be a JSON object.")
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)}.", fields=unknown)
    out: dict[str, Any] = {}
    for name, field in spec.items():
        if name not in data or data[name] is None:
            if field.required:
                raise Invalid(f"Field '{name}' is required.", fields=[name])
            continue
        out[name] = _check(name, data[name], field)
    return out


def _check(name: str, value: Any, field: Field) -> Any:
    # bool is an int in Python; JSON true must not pass as a number.
    if not isinstance(value, field.kind) or (field.kind is int and isinstance(value, bool)):
        raise Invalid(f"Field '{name}' must be a {_json_type(field.kind)}.", fields=[name])
    if isinstance(value, str):
        if field.strip:
            value = value.strip()
        if len(value) < field.min_length:
            raise Invalid(f"Field '{name}' must not be empty." if field.min_length == 1 else
                          f"Field '{name}' must be at least {field.min_length} characters.", fields=[name])
        if field.max_length is not None and len(value) > field.max_length:
            raise Invalid(f"Field '{name}' must be at most {field.max_length} characters.", fields=[name])
        check_text(name, value, single_line=field.single_line)
        if field.choices is not None and value not in field.choices:
            raise Invalid(f"Field '{name}' must be one of: {', '.join(field.choices)}.", fields=[name])
    return value


def check_text(name: str, value: str, *, single_line: bool = False) -> None:
    """Refuse control characters (single-line text: tabs and line breaks too), bidi overrides,
    and lone surrogates, which JSON can carry but UTF-8 (and so PostgreSQL) cannot."""
    allowed = "" if single_line else "\t\n\r"
    for c in value:
        code = ord(c)
        if (code < 32 and c not in allowed) or 0x7F <= code <= 0x9F or c in _BIDI_CONTROLS or (
                single_line and c in "\u2028\u2029"):
            raise Invalid(f"Field '{name}' contains control characters.", fields=[name])
        if 0xD800 <= code <= 0xDFFF:
            raise Invalid(f"Field '{name}' is not valid Unicode text.", fields=[name])


def _json_type(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object", float: "number"}.get(
        kind, kind.__name__
    )


def parse_uuid(value: str, what: str) -> Any:
    """A path id; malformed ids are reported as not found, so ids are opaque to callers."""
    from uuid import UUID

    from shared.errors import NotFound

    try:
        return UUID(value)
    except (ValueError, TypeError):
        raise NotFound(f"No such {what}.") from None
