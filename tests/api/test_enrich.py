"""POST /v1/ioc/enrich over a real server: reports, credits, headers and errors."""

from __future__ import annotations

import httpx

from tests.api.conftest import StartService
from tests.api.service import RunningService

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
CREDIT_HEADERS = ("X-Credits-Used", "X-Credits-Remaining")


def enrich(
    service: RunningService, key: str, body: dict[str, object], **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/ioc/enrich",
        json=body,
        headers={"X-API-Key": key, **headers},
        timeout=30,
    )


def test_enrich_returns_report_with_credits(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(service, key, {"value": "evil[.]example"})
    assert response.status_code == 200
    report = response.json()
    assert report["observable"]["value"] == "evil.example"
    assert report["verdict"] == "malicious"
    for name in (
        "risk_score",
        "sources_queried",
        "sources_flagged",
        "enrichment",
        "tags",
    ):
        assert name in report
    assert report["credits"] == {"charged": 3, "remaining": 497}
    assert response.headers["X-Credits-Used"] == "3"
    assert response.headers["X-Credits-Remaining"] == "497"
    for header in RATE_HEADERS:
        assert header in response.headers
    assert response.headers["X-RateLimit-Limit"] == "60"
    assert response.headers["X-RateLimit-Remaining"] == "59"


def test_enrich_costs_by_type(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    expected = {
        "198.51.100.7": 3,
        "http://costs.example/a": 4,
        "d41d8cd98f00b204e9800998ecf8427e": 4,
        "someone@costs.example": 5,
        "198.51.100.0/24": 5,
    }
    for value, cost in expected.items():
        report = enrich(service, key, {"value": value}).json()
        assert report["credits"]["charged"] == cost, value


def test_full_cache_hit_costs_one(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    first = enrich(service, key, {"value": "cached.example"}).json()
    second = enrich(service, key, {"value": "CACHED.example"}).json()
    assert first["credits"]["charged"] == 3
    assert second["credits"]["charged"] == 1
    assert all(
        r["cached"] for r in second["enrichment"].values() if r["status"] != "skipped"
    )


def test_refresh_bypasses_cache(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    enrich(service, key, {"value": "fresh.example"})
    again = enrich(service, key, {"value": "fresh.example", "refresh": True}).json()
    assert again["credits"]["charged"] == 3
    assert service.local.calls["fresh.example"] == 2


def test_failed_lookup_costs_nothing(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(service, key, {"value": "failing.example"})
    assert response.status_code == 200
    assert response.json()["credits"]["charged"] == 0
    assert response.headers["X-Credits-Used"] == "0"


def test_private_ip_not_sent_out(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    report = enrich(service, key, {"value": "10.0.0.5"}).json()
    assert report["enrichment"]["remote_intel"]["status"] == "skipped"
    assert report["enrichment"]["remote_intel"]["reason"] == "non-routable"
    assert report["verdict"] != "malicious"
    assert service.remote.calls["10.0.0.5"] == 0


def test_tlp_red_skips_capped_source(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    report = enrich(service, key, {"value": "evil.example", "tlp": "red"}).json()
    assert report["enrichment"]["remote_intel"]["reason"] == "tlp"
    assert report["enrichment"]["local_intel"]["status"] == "ok"
    assert report["tlp"] == "TLP:RED" or "red" in report["tlp"].lower()


def test_bad_observable_is_400_and_free(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(
        service, key, {"value": "d41d8cd98f00b204e9800998ecf8427z", "type": "md5"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["field"] == "value"
    assert error["value"] == "d41d8cd98f00b204e9800998ecf8427z"
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert response.headers["X-Credits-Used"] == "0"


def test_unknown_tlp_names_field(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(service, key, {"value": "evil.example", "tlp": "purple"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "tlp"


def test_schema_error_is_422_envelope(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(service, key, {"valeu": "evil.example"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert set(error) >= {"type", "code", "message", "request_id"}
    assert "value" in error["message"]


def test_malformed_json_is_422(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = httpx.post(
        f"{service.url}/v1/ioc/enrich",
        content=b"{not json",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "validation_failed"
    assert error["message"].startswith("the request body is not valid JSON: ")
    assert "at offset 1" in error["message"]
    assert "field" not in error
    assert "value" not in error


def test_body_not_object_is_422(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(service, key, ["evil.example"])  # type: ignore[arg-type]
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith("the request body must be a JSON object")
    assert "field" not in error


def test_body_as_text_plain_is_422(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = httpx.post(
        f"{service.url}/v1/ioc/enrich",
        content=b'{"value": "evil.example"}',
        headers={"X-API-Key": key, "Content-Type": "text/plain"},
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "Content-Type: application/json" in message


def test_schema_error_names_field(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    cases = [
        ({"value": {"a": [1]}}, "value", {"a": [1]}, "must be a string"),
        ({"value": None}, "value", None, "must be a string"),
        ({"value": "x", "refresh": "maybe"}, "refresh", "maybe", "true or false"),
        ({"value": "x", "tlp": True}, "tlp", True, "a string or an integer"),
        ({"value": "x", "extra": [1, 2]}, "extra", [1, 2], "not an accepted field"),
        ({}, "value", None, "is required"),
    ]
    for body, field, value, words in cases:
        response = enrich(service, key, body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["field"] == field, body
        assert error["value"] == value, body
        assert error["message"].startswith(f"body field {field} "), body
        assert words in error["message"], body


def test_long_array_value_not_echoed(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = enrich(service, key, {"value": ["x" * 300]})
    error = response.json()["error"]
    assert error["field"] == "value"
    assert error["value"] is None


def test_bearer_auth_accepted(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    response = httpx.post(
        f"{service.url}/v1/ioc/enrich",
        json={"value": "198.51.100.9"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200


def test_missing_key_is_401(service: RunningService) -> None:
    response = httpx.post(f"{service.url}/v1/ioc/enrich", json={"value": "x.example"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert "X-Request-Id" in response.headers


def test_unknown_key_is_401_without_echo(service: RunningService) -> None:
    bogus = "ioc_" + "A" * 43
    response = enrich(service, bogus, {"value": "x.example"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert bogus not in response.text


def test_revoked_key_is_401(service: RunningService) -> None:
    import asyncio

    from iocscope.service.database import create_engine, session_factory
    from iocscope.service.keys import list_keys, revoke_key

    key = service.create_key("acme", "team")
    assert enrich(service, key, {"value": "198.51.100.1"}).status_code == 200

    async def revoke_all() -> None:
        engine = create_engine(service.settings)
        sessions = session_factory(engine)
        for info in await list_keys(sessions):
            await revoke_key(sessions, info.id)
        await engine.dispose()

    asyncio.run(revoke_all())
    assert enrich(service, key, {"value": "198.51.100.1"}).status_code == 401


def test_rate_limit_is_429(service: RunningService) -> None:
    key = service.create_key("busy", "free")
    responses = [enrich(service, key, {"value": "198.51.100.3"}) for _ in range(12)]
    statuses = [r.status_code for r in responses]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    limited = responses[10]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json()["error"]["type"] == "rate_limit_error"


def test_request_id_echoed_or_generated(service: RunningService) -> None:
    key = service.create_key("acme", "team")
    echoed = enrich(
        service, key, {"value": "198.51.100.4"}, **{"X-Request-Id": "abc-123"}
    )
    assert echoed.headers["X-Request-Id"] == "abc-123"
    assert echoed.json()["request_id"] == "abc-123"
    odd = enrich(
        service,
        key,
        {"value": "198.51.100.4"},
        **{"X-Request-Id": "bad id with spaces"},
    )
    assert odd.headers["X-Request-Id"] != "bad id with spaces"
    assert len(odd.headers["X-Request-Id"]) == 32


def test_unknown_route_is_404_envelope(service: RunningService) -> None:
    response = httpx.get(f"{service.url}/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert "X-Request-Id" in response.headers


def test_wrong_method_is_405_envelope(service: RunningService) -> None:
    response = httpx.get(f"{service.url}/v1/ioc/enrich")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_credits_exhaust_to_402(start_service: StartService) -> None:
    service = start_service(
        service_plans={"tiny": {"monthly_credits": 7, "requests_per_minute": 100}}
    )
    key = service.create_key("tiny-tenant", "tiny")
    first = enrich(service, key, {"value": "198.51.100.20", "refresh": True})
    second = enrich(service, key, {"value": "198.51.100.21", "refresh": True})
    third = enrich(service, key, {"value": "198.51.100.22", "refresh": True})
    assert [first.status_code, second.status_code] == [200, 200]
    assert third.status_code == 402
    error = third.json()["error"]
    assert error["type"] == "insufficient_credits"
    assert third.headers["X-Credits-Used"] == "6"
    assert third.headers["X-Credits-Remaining"] == "1"
    assert service.local.calls["198.51.100.22"] == 0
