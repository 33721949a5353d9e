"""Signed webhook delivery of a finished bulk job's summary.

The tenant's webhook URL is the only outbound request the service makes on its
own. The body is signed with HMAC-SHA256 under the tenant's webhook secret and the
signature sent as ``X-Iocscope-Signature: sha256=<hex>``; ``X-Iocscope-Timestamp``
carries the UNIX time of the attempt. Only the body is signed, so a receiver that
checks freshness must trust the timestamp header as sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Iocscope-Signature"
TIMESTAMP_HEADER = "X-Iocscope-Timestamp"
# Statuses after which a retry may succeed; other answers end the delivery.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def check_webhook_url(url: str) -> str | None:
    """Return why ``url`` cannot be a webhook target, or None if it can."""
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return "webhook_url must not contain spaces or control characters"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return "webhook_url is not a valid URL: check the host and the port"
    if parts.scheme not in ("http", "https"):
        return "webhook_url must start with http:// or https://"
    if not parts.hostname:
        return "webhook_url has no host"
    if parts.username or parts.password:
        return "webhook_url must not contain credentials"
    return None


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


async def deliver(
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    timeout_s: float = 5.0,
    attempts: int = 3,
    backoff_s: float = 0.5,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bool:
    """POST the signed payload, retrying up to ``attempts`` times in all.

    Returns True once the receiver answers 2xx. Waits double after each failure,
    starting at ``backoff_s`` seconds. Redirects are not followed.
    """
    body = encode(payload)
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, transport=transport
    ) as client:
        for attempt in range(1, attempts + 1):
            outcome = await _attempt(client, url, secret, body, attempt, payload)
            if outcome == "delivered":
                return True
            if outcome == "rejected":
                break
            if attempt < attempts:
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
    log.error(
        "webhook.delivery.gave_up", job_id=payload.get("job_id"), max_attempts=attempts
    )
    return False


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    body: bytes,
    attempt: int,
    payload: dict[str, Any],
) -> str:
    """Make one attempt; return "delivered", "retry" or "rejected"."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        TIMESTAMP_HEADER: str(int(time.time())),
    }
    job_id = payload.get("job_id")
    try:
        response = await client.post(url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        log.warning(
            "webhook.delivery.failed",
            job_id=job_id,
            attempt=attempt,
            error=type(exc).__name__,
        )
        return "retry"
    if response.is_success:
        log.info(
            "webhook.delivered",
            job_id=job_id,
            attempt=attempt,
            status=response.status_code,
        )
        return "delivered"
    log.warning(
        "webhook.delivery.rejected",
        job_id=job_id,
        attempt=attempt,
        status=response.status_code,
    )
    if response.status_code in RETRYABLE_STATUSES:
        return "retry"
    return "rejected"
