"""Two ways for an integration to enrich an observable: in process or over HTTP.

``EngineEnricher`` runs iocscope's engine inside the calling process, with the
sources and keys of the local settings. ``ServiceEnricher`` calls a running
iocscope service (``POST /v1/ioc/enrich``) with an API key, so credits, rate limits
and the shared cache of that service apply.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from iocscope.engine import Engine
from iocscope.errors import InvalidObservable, IocscopeError
from iocscope.models import Report
from iocscope.tlp import TLP


class EnrichmentUnavailable(IocscopeError):
    """The enrichment could not run now (service down, key, credits, rate limit).

    Retrying later may succeed, unlike an InvalidObservable.
    """

    code = "enrichment_unavailable"


class Enricher(Protocol):
    async def enrich(self, value: str, type_hint: str, tlp: TLP) -> Report:
        """Enrich one observable; raise InvalidObservable or EnrichmentUnavailable."""
        ...


class EngineEnricher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def enrich(self, value: str, type_hint: str, tlp: TLP) -> Report:
        return await self.engine.enrich(value, type_hint, tlp=tlp)


class ServiceEnricher:
    """Calls ``POST {base_url}/v1/ioc/enrich`` with an ``X-API-Key`` header."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 60.0,
        verify_tls: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            verify=verify_tls,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            follow_redirects=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def enrich(self, value: str, type_hint: str, tlp: TLP) -> Report:
        url = f"{self.base_url}/v1/ioc/enrich"
        body = {"type": type_hint, "value": value, "tlp": tlp.label}
        try:
            response = await self._client.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise EnrichmentUnavailable(
                f"request to iocscope at {self.base_url} timed out: "
                f"{type(exc).__name__}"
            ) from exc
        except httpx.HTTPError as exc:
            raise EnrichmentUnavailable(
                f"could not reach iocscope at {self.base_url}: {exc}; check that "
                "`iocscope serve` is running there"
            ) from exc
        if response.status_code == 200:
            return _parse_report(response, self.base_url)
        detail = _error_message(response)
        if response.status_code in (400, 422):
            raise InvalidObservable(
                f"iocscope rejected {value!r}: {detail}", value=value
            )
        raise EnrichmentUnavailable(
            f"iocscope at {self.base_url} returned HTTP {response.status_code}: "
            f"{detail}{_retry_hint(response)}"
        )


def _parse_report(response: httpx.Response, base_url: str) -> Report:
    try:
        return Report.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise EnrichmentUnavailable(
            f"iocscope at {base_url} returned something that is not a /v1 "
            f"enrichment document: {exc}"
        ) from exc


def _error_message(response: httpx.Response) -> str:
    try:
        payload: Any = response.json()
    except ValueError:
        return response.text[:300] or "no details in the response"
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(payload)[:300]


def _retry_hint(response: httpx.Response) -> str:
    retry_after = response.headers.get("Retry-After")
    return f" (Retry-After: {retry_after} s)" if retry_after else ""
