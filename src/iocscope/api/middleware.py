"""Request context: request id, extra response headers, metrics and the last-resort 500.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, so that it
receives every response, error responses included, and can add headers to each.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iocscope.api.errors import envelope
from iocscope.api.metrics import Metrics

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# An incoming request id is echoed only if it is short and plain.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def pick_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def response_headers(scope: Scope) -> dict[str, str]:
    """Return the mutable dict of headers that routes add to this response."""
    state: dict[str, Any] = scope.setdefault("state", {})
    headers: dict[str, str] = state.setdefault("response_headers", {})
    return headers


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = pick_request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                extra = dict(response_headers(scope))
                extra["X-Request-Id"] = request_id
                for name, value in extra.items():
                    headers.append((name.lower().encode(), value.encode("latin-1")))
                message["headers"] = headers
                self._observe(scope, int(message["status"]), started)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception(
                "request.failed",
                request_id=request_id,
                path=scope.get("path"),
                method=scope.get("method"),
            )
            if status_holder["started"]:
                raise
            await self._internal_error(scope, receive, send_with_headers, request_id)

    async def _internal_error(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        body = envelope(
            request_id,
            500,
            "internal_error",
            "internal error; retry later, and report the request_id if it persists",
        )
        await JSONResponse(body, status_code=500)(scope, receive, send)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = str(scope.get("method", ""))
        self.metrics.requests.labels(
            route=template, method=method, status=str(status)
        ).inc()
        self.metrics.latency.labels(route=template, method=method).observe(
            time.perf_counter() - started
        )
