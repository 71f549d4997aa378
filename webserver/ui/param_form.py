"""The trigger form of a DAG, generated from its Params, and the conf read back from it.

Pure functions over a DAG's serialized params (``{name: {value, has_default,
description, schema}}``): `fields` says which control each param gets; `read_form`
turns the submitted strings into a conf and checks each value against its param's JSON
schema, so an error is shown next to the field it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

# The control a field is drawn with.
SELECT, CHECKBOX, NUMBER, INTEGER, DATE, DATETIME, JSON, TEXT, TEXTAREA = (
    "select",
    "checkbox",
    "number",
    "integer",
    "date",
    "datetime",
    "json",
    "text",
    "textarea",
)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    control: str
    value: str  # what the control shows at first
    checked: bool
    required: bool
    description: str | None
    options: tuple[str, ...]
    title: str


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    return {k for k in kind if isinstance(k, str)} if isinstance(kind, list) else set()


def _control(schema: Mapping[str, Any], default: Any) -> str:
    types = _types(schema) - {"null"}
    if "enum" in schema:
        return SELECT
    if not types:  # no declared type: go by the default's
        types = {_json_type(default)} if default is not None else {"string"}
    if types == {"boolean"}:
        return CHECKBOX
    if types == {"integer"}:
        return INTEGER
    if types <= {"number", "integer"}:
        return NUMBER
    if types == {"string"}:
        fmt = schema.get("format")
        if fmt == "date":
            return DATE
        if fmt == "date-time":
            return DATETIME
        return TEXTAREA if schema.get("format") == "multiline" else TEXT
    return JSON


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def _shown(control: str, value: Any) -> str:
    if value is None:
        return ""
    if control == JSON:
        return json.dumps(value, indent=2)
    if control == DATETIME and isinstance(value, str):
        return value[:16]  # what a datetime-local input takes: YYYY-MM-DDTHH:MM
    if control == SELECT:
        return value if isinstance(value, str) else json.dumps(value)
    return str(value)


def fields(params: Mapping[str, Mapping[str, Any]]) -> list[Field]:
    out = []
    for name, param in params.items():
        schema = param.get("schema") or {}
        default = param.get("value")
        control = _control(schema, default)
        options = tuple(o if isinstance(o, str) else json.dumps(o) for o in schema.get("enum", ()))
        out.append(
            Field(
                name=name,
                control=control,
                value=_shown(control, default),
                checked=default is True,
                required=not param.get("has_default", True) and "null" not in _types(schema),
                description=param.get("description") or schema.get("description"),
                options=options,
                title=str(schema.get("title") or name),
            )
        )
    return out


def read_form(
    params: Mapping[str, Mapping[str, Any]], form: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The conf the form asks for, and an error message per field that is wrong.

    ``form`` holds ``param.<name>`` strings (a checkbox is present only when ticked)."""
    conf: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields(params):
        schema = params[field.name].get("schema") or {}
        raw = form.get(f"param.{field.name}")
        try:
            value = _parse(field, schema, raw)
        except ValueError as exc:
            errors[field.name] = str(exc)
            continue
        if value is _MISSING:
            if field.required:
                errors[field.name] = "A value is required."
            continue
        try:
            jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
        except jsonschema.ValidationError as exc:
            errors[field.name] = exc.message
            continue
        except jsonschema.SchemaError as exc:
            errors[field.name] = f"The param's schema is invalid: {exc.message}"
            continue
        conf[field.name] = value
    return conf, errors


_MISSING: Any = object()


def _parse(field: Field, schema: Mapping[str, Any], raw: str | None) -> Any:
    if field.control == CHECKBOX:
        return raw is not None
    if raw is None or raw.strip() == "":
        return None if "null" in _types(schema) else _MISSING
    text = raw.strip()
    if field.control == INTEGER:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number.") from None
    if field.control == NUMBER:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number.") from None
        return int(number) if number.is_integer() and "integer" in _types(schema) else number
    if field.control == SELECT:
        enum = list(schema.get("enum", ()))
        return raw if raw in enum else json.loads(raw) if _is_json(raw) else raw
    if field.control == JSON:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"Not valid JSON: {exc}") from None
    if field.control == DATETIME and len(text) == 16:
        return f"{text}:00+00:00"  # a datetime-local value, read as UTC
    return raw


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
