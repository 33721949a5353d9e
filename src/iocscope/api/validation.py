"""Plain-words descriptions of FastAPI's request validation errors.

FastAPI reports each problem as a pydantic error: a ``type`` such as
``less_than_equal``, a ``loc`` such as ``("query", "limit")`` or
``("body", "items", 3, "value")``, a ``msg`` and the ``input``. This module turns
them into sentences that name the body field or query parameter, such as
"query parameter limit must be at most 1000".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The kind of value that each pydantic type error expects.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "an array",
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "none_required": "null",
}
# Names pydantic appends to ``loc`` for each member of a failed union, as in
# ("body", "tlp", "str") and ("body", "tlp", "int").
_UNION_MEMBERS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})
# The words that name a field in a message, by the first part of ``loc``.
_LOCATION_NAMES = {
    "body": "body field",
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
    "cookie": "cookie",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request."""

    # A sentence that names the field and states the problem.
    message: str
    # The body field path ("items[3].value") or parameter name ("limit"). None
    # when the problem is with the request body as a whole.
    field: str | None
    # The value that the request sent, or None for a missing field.
    value: object


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Describe each problem of a RequestValidationError, in the order given.

    The errors of one union's members (a value that is neither a string nor an
    integer) become one problem.
    """
    problems: list[Problem] = []
    grouped: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    order: list[tuple[Any, ...]] = []
    for error in errors:
        key = _location_without_union_member(error)
        if key not in grouped:
            grouped[key] = []
            order.append(key)
        grouped[key].append(error)
    for key in order:
        problems.append(_describe(key, grouped[key]))
    return problems


def _location_without_union_member(error: Mapping[str, Any]) -> tuple[Any, ...]:
    location = tuple(error.get("loc", ()))
    if (
        len(location) > 2
        and location[-1] in _UNION_MEMBERS
        and error.get("type") in _EXPECTED
    ):
        return location[:-1]
    return location


def _describe(location: tuple[Any, ...], errors: list[Mapping[str, Any]]) -> Problem:
    first = errors[0]
    kind = str(first.get("type", ""))
    where = str(location[0]) if location else "body"
    path = location[1:]
    if kind == "json_invalid":
        return Problem(message=_invalid_json(first), field=None, value=None)
    if where == "body" and not path:
        if isinstance(first.get("input"), bytes):
            # FastAPI parses the body as JSON only when Content-Type is a JSON
            # type or missing, and passes the raw bytes otherwise.
            message = (
                "the request body must be JSON, sent with the header "
                "Content-Type: application/json"
            )
            return Problem(message=message, field=None, value=None)
        subject = "the request body"
        field = None
    else:
        field = field_path(path)
        subject = f"{_LOCATION_NAMES.get(where, where)} {field}"
    value = None if kind == "missing" else first.get("input")
    kinds = [str(error.get("type")) for error in errors]
    if len(kinds) > 1 and all(kind in _EXPECTED for kind in kinds):
        predicate = "must be " + _join_choices([_EXPECTED[kind] for kind in kinds])
    else:
        predicate = _predicate(first, path)
    return Problem(message=f"{subject} {predicate}", field=field, value=value)


def field_path(parts: Sequence[Any]) -> str:
    """Write a ``loc`` path as ``items[3].value``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def _invalid_json(error: Mapping[str, Any]) -> str:
    context = error.get("ctx") or {}
    reason = str(context.get("error") or "JSON decode error")
    location = tuple(error.get("loc", ()))
    message = f"the request body is not valid JSON: {reason}"
    if len(location) > 1 and isinstance(location[1], int):
        message += f" at offset {location[1]}"
    return message


# Number bounds: the words of the message, and the ``ctx`` key of the bound.
_BOUNDS = {
    "less_than_equal": ("must be at most", "le"),
    "greater_than_equal": ("must be at least", "ge"),
    "less_than": ("must be less than", "lt"),
    "greater_than": ("must be greater than", "gt"),
}


def _predicate(error: Mapping[str, Any], path: Sequence[Any]) -> str:
    """Describe what is wrong with the value, in words that follow its name."""
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not an accepted field"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}"

    if kind in _BOUNDS:
        words, bound_key = _BOUNDS[kind]
        return f"{words} {context.get(bound_key)}"
    if kind in ("string_too_long", "string_too_short"):
        length = context.get("max_length", context.get("min_length"))
        bound = "at most" if kind == "string_too_long" else "at least"
        return f"must be {bound} {length} characters long"
    if kind in ("too_long", "too_short"):
        length = context.get("max_length", context.get("min_length"))
        bound = "at most" if kind == "too_long" else "at least"
        noun = "item" if length == 1 else "items"
        return f"must have {bound} {length} {noun}"

    if kind in ("value_error", "assertion_error"):
        return _validator_predicate(str(context.get("error", "")), path)
    return f"is invalid: {error.get('msg', 'does not match the schema')}"


def _validator_predicate(reason: str, path: Sequence[Any]) -> str:
    """Fit a field validator's reason, which may start with the field's name."""
    name = str(path[-1]) if path else ""
    if name and reason.startswith(f"{name} "):
        return reason[len(name) + 1 :]
    return f"is invalid: {reason}"


def _join_choices(choices: Sequence[str]) -> str:
    unique = list(dict.fromkeys(choices))
    if len(unique) == 1:
        return unique[0]
    return ", ".join(unique[:-1]) + " or " + unique[-1]
