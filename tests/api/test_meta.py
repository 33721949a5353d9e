"""GET /v1/sources, /v1/usage, /healthz, /metrics and the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.api.conftest import StartService
from tests.api.service import RunningService

ALL_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Credits-Used",
    "X-Credits-Remaining",
    "X-Request-Id",
)


def test_sources_list_without_keys(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = httpx.get(f"{service.url}/v1/sources", headers={"X-API-Key": key})
    assert response.status_code == 200
    sources = {s["name"]: s for s in response.json()["sources"]}
    assert set(sources) == {"local_intel", "remote_intel"}
    remote = sources["remote_intel"]
    assert remote["needs_key"] is False
    assert remote["key_configured"] is None
    assert remote["weight"] == 1.0
    assert remote["status"] == "ready"
    assert "ip" in remote["types"]
    for header in ALL_HEADERS:
        assert header in response.headers


def test_sources_needs_auth(service: RunningService) -> None:
    assert httpx.get(f"{service.url}/v1/sources").status_code == 401


def test_usage_counts_by_type(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    headers = {"X-API-Key": key}
    for value in ("198.51.100.1", "198.51.100.2", "a@usage.example"):
        httpx.post(
            f"{service.url}/v1/ioc/enrich", json={"value": value}, headers=headers
        )
    response = httpx.get(f"{service.url}/v1/usage", headers=headers)
    assert response.status_code == 200
    usage = response.json()
    assert usage["plan"] == "team"
    assert usage["tenant"] == "acme"
    assert usage["credits"] == {"limit": 500, "used": 11, "remaining": 489}
    assert usage["lookups"] == 3
    assert usage["by_type"]["ip"] == {"lookups": 2, "credits": 6}
    assert usage["by_type"]["email"] == {"lookups": 1, "credits": 5}
    assert usage["requests_per_minute"] == 60
    assert usage["costs"]["url"] == 4
    for header in ALL_HEADERS:
        assert header in response.headers


def test_healthz_without_auth(service: RunningService) -> None:
    response = httpx.get(f"{service.url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "X-Request-Id" in response.headers


def test_metrics_count_requests(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    httpx.post(
        f"{service.url}/v1/ioc/enrich",
        json={"value": "evil.example"},
        headers={"X-API-Key": key},
    )
    text = httpx.get(f"{service.url}/metrics").text
    assert (
        'iocscope_http_requests_total{method="POST",'
        'route="/v1/ioc/enrich",status="200"} 1.0'
    ) in text
    assert 'iocscope_lookups_total{verdict="malicious"} 1.0' in text
    assert "iocscope_credits_charged_total 3.0" in text
    assert "iocscope_http_request_duration_seconds_bucket" in text


def test_metrics_token_required_when_set(start_service: StartService) -> None:
    service = start_service(metrics_token="metrics-secret-token")
    assert httpx.get(f"{service.url}/metrics").status_code == 401
    allowed = httpx.get(
        f"{service.url}/metrics",
        headers={"Authorization": "Bearer metrics-secret-token"},
    )
    assert allowed.status_code == 200


def test_openapi_and_docs_served(service: RunningService) -> None:
    spec = httpx.get(f"{service.url}/openapi.json").json()
    assert "/v1/ioc/enrich" in spec["paths"]
    assert "/v1/ioc/bulk" in spec["paths"]
    assert httpx.get(f"{service.url}/docs").status_code == 200


def test_unexpected_error_is_500_envelope(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    state = service.extra["app"].state.service

    async def broken(tenant_id: int) -> dict[str, dict[str, int]]:
        raise RuntimeError("secret internal detail")

    state.ledger.usage_by_type = broken
    response = httpx.get(
        f"{service.url}/v1/usage", headers={"X-API-Key": key}, timeout=30
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "secret internal detail" not in response.text
    assert error["request_id"] == response.headers["X-Request-Id"]
