"""The one error envelope: ``{"error": {"type", "code", "message", "request_id"}}``.

Every error response uses it: bad input from the engine, FastAPI's own 422
validation errors, 404 and 405 from routing, auth, limits and credits, and
unexpected exceptions (which become a 500 that shows no internals). Errors about a
field also carry ``field`` and ``value``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from iocscope.api.validation import describe_errors
from iocscope.errors import InvalidInput
from iocscope.sources.http import clean_json

# Maximum length of an echoed value, in characters. Longer strings are cut, and
# arrays or objects with longer JSON are not echoed.
MAX_SHOWN_VALUE = 200

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_credits",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

_CODE_BY_STATUS = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


class ApiError(Exception):
    """An error with its HTTP status, raised by routes and dependencies."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.field = field
        self.value = value


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def envelope(
    request_id: str,
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    value: object = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": _TYPE_BY_STATUS.get(status, "api_error"),
        "code": code,
        "message": message,
        "request_id": request_id,
    }
    if field is not None:
        body["field"] = field
        body["value"] = shown_value(value)
    return {"error": body}


def shown_value(value: object) -> object:
    """Return ``value`` fit for echoing as a JSON value.

    Long strings are cut to ``MAX_SHOWN_VALUE`` characters. Arrays and objects
    are echoed whole if their JSON fits in that many characters. Anything else
    becomes None.
    """
    if isinstance(value, str):
        return value[:MAX_SHOWN_VALUE]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | dict):
        try:
            text = json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        return value if len(text) <= MAX_SHOWN_VALUE else None
    return None


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    field: str | None = None,
    value: object = None,
) -> JSONResponse:
    body = envelope(
        request_id_of(request), status, code, message, field=field, value=value
    )
    # The message and value may echo the client's input, which can hold a lone
    # surrogate that UTF-8 cannot encode.
    return JSONResponse(clean_json(body), status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(
        request,
        exc.status,
        exc.code,
        exc.message,
        headers=exc.headers,
        field=exc.field,
        value=exc.value,
    )


async def _invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return error_response(
        request, 400, exc.code, exc.message, field=exc.field, value=exc.value
    )


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = describe_errors(exc.errors())
    if not problems:
        message = "the request does not match the schema; see /openapi.json"
        return error_response(request, 422, "validation_failed", message)
    first = problems[0]
    message = first.message
    others = len(problems) - 1
    if others:
        message += f" (and {others} more {'problem' if others == 1 else 'problems'})"
    message += "; fix the request to match /openapi.json"
    return error_response(
        request,
        422,
        "validation_failed",
        message,
        field=first.field,
        value=first.value,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _CODE_BY_STATUS.get(status, "http_error")
    if status == 404:
        message = f"no route matches {request.url.path}; see /docs for the API"
    elif status == 405:
        message = (
            f"method {request.method} is not allowed on {request.url.path}; "
            "see /docs for the methods each route accepts"
        )
    else:
        message = str(exc.detail)
    return error_response(
        request, status, code, message, headers=dict(exc.headers or {})
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
