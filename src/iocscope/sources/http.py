"""HTTP plumbing shared by the network adapters.

One call, :func:`fetch`, sends a request with explicit timeouts and reads at most
``max_bytes``. It retries once with jitter on a connection error or a 5xx. Every
failure becomes a :class:`~iocscope.errors.SourceFailure` with a readable message,
which never contains the request's headers, where API keys travel. Adapters map the
vendor's own bodies, and this module handles only HTTP.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from iocscope.errors import RateLimited, UpstreamError, UpstreamTimeout

# Bodies larger than this are cut off and reported as an error, because no vendor
# response about one observable comes near this size.
MAX_BODY_BYTES = 5 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


class _DropQueryFilter(logging.Filter):
    """Strip query strings from the URLs httpx logs.

    Some vendors accept the API key only as a query parameter (Shodan's ``key``),
    and httpx logs every request URL at INFO level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(value: object) -> object:
    if isinstance(value, httpx.URL) and value.query:
        return value.copy_with(query=None)
    return value


logging.getLogger("httpx").addFilter(_DropQueryFilter())


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        return clean_text(self.body.decode("utf-8", errors="replace"))

    def json(self) -> Any:
        """Decode the body as JSON; raise UpstreamError when it is not JSON."""
        if not self.body.strip():
            raise UpstreamError(
                f"upstream returned {self.status_code} with an empty body",
                http_status=self.status_code,
            )
        try:
            decoded = json.loads(self.body.decode("utf-8", errors="replace"))
        except ValueError:
            raise UpstreamError(
                f"upstream returned {self.status_code} with a body that is not JSON",
                http_status=self.status_code,
            ) from None
        return clean_json(decoded)


def clean_text(text: str) -> str:
    """Replace NUL and lone surrogates, which cannot travel in UTF-8 JSON."""
    if "\0" in text:
        text = text.replace("\0", "\ufffd")
    return _clean_str(text)


def clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [clean_json(item) for item in value]
    if isinstance(value, dict):
        return {_clean_str(str(k)): clean_json(v) for k, v in value.items()}
    return value


def _clean_str(text: str) -> str:
    text = text.replace("\0", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def timeouts(total_s: float) -> httpx.Timeout:
    """Connect within a third of the budget, and read within all of it."""
    return httpx.Timeout(total_s, connect=max(0.5, total_s / 3))


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout_s: float,
    ok_statuses: frozenset[int] = frozenset({200}),
    retry: bool = True,
    max_bytes: int = MAX_BODY_BYTES,
    **kwargs: Any,
) -> HttpAnswer:
    """Send one request and return the response when its status is in ``ok_statuses``.

    Raises RateLimited for 429 (with Retry-After in seconds when the vendor sent
    one), UpstreamError for any other status, a body over ``max_bytes`` or a
    connection failure, and UpstreamTimeout when no answer came in ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    timed_out = f"timed out: no response within {timeout_s:g} s"
    attempts = 2 if retry else 1
    for attempt in range(attempts):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            answer = await _send(client, method, url, remaining, max_bytes, kwargs)
        except httpx.TimeoutException:
            raise UpstreamTimeout(timed_out) from None
        except httpx.TransportError as exc:
            if attempt + 1 < attempts and await _pause(deadline):
                continue
            raise UpstreamError(f"connection failed: {_describe(exc)}") from None
        if answer.status_code in RETRYABLE_STATUSES and attempt + 1 < attempts:
            if await _pause(deadline):
                continue
        return _check_status(answer, ok_statuses)
    raise UpstreamTimeout(timed_out)


async def _send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    remaining: float,
    max_bytes: int,
    kwargs: dict[str, Any],
) -> HttpAnswer:
    request = client.build_request(method, url, timeout=timeouts(remaining), **kwargs)
    response = await client.send(request, stream=True)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > max_bytes:
                raise UpstreamError(
                    f"upstream body larger than {max_bytes} bytes",
                    http_status=response.status_code,
                )
            chunks.append(chunk)
    finally:
        await response.aclose()
    return HttpAnswer(response.status_code, response.headers, b"".join(chunks))


async def _pause(deadline: float) -> bool:
    """Sleep 100-400 ms before a retry if the deadline leaves room for one."""
    delay = random.uniform(0.1, 0.4)  # noqa: S311 - jitter, not a secret
    if time.monotonic() + delay >= deadline:
        return False
    await asyncio.sleep(delay)
    return True


def _check_status(answer: HttpAnswer, ok_statuses: frozenset[int]) -> HttpAnswer:
    status = answer.status_code
    if status in ok_statuses:
        return answer
    if status == 429:
        retry_after = parse_retry_after(answer.headers.get("retry-after"))
        raise RateLimited(
            "upstream rate limit reached (HTTP 429)", retry_after_s=retry_after
        )
    if status in (401, 403):
        raise UpstreamError(
            f"upstream rejected the API key (HTTP {status}): check the key setting",
            http_status=status,
        )
    if not answer.body.strip():
        raise UpstreamError(
            f"upstream returned {status} with an empty body", http_status=status
        )
    raise UpstreamError(f"upstream returned {status}", http_status=status)


# Maximum wait a Retry-After may impose: a day. A larger value is capped, so a
# garbled header cannot block a source for good.
MAX_RETRY_AFTER_S = 86_400.0


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header (delta seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(0.0, moment.timestamp() - time.time()), MAX_RETRY_AFTER_S)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ProtocolError | httpx.UnsupportedProtocol):
        # A local protocol error quotes the offending header, which may be a key.
        return f"{type(exc).__name__}: the request or response broke HTTP rules"
    reason = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {reason}"[:200]
