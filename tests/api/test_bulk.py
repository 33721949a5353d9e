"""POST /v1/ioc/bulk and GET /v1/jobs/{id} over a real server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from typing import Any

import httpx
from sqlalchemy import func, select

from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.service.database import create_engine, session_factory
from iocscope.service.keys import webhook_secret
from iocscope.service.tables import BulkJobReport, BulkJobResult
from tests.api.conftest import StartService
from tests.api.service import RunningService
from tests.loopback import LoopbackServer, Reply, SeenRequest

PRIVATE_IPS = [
    "10.0.0.5",
    "192.168.1.20",
    "172.16.4.4",
    "100.64.0.1",
    "169.254.169.254",
    "127.0.0.1",
    "fd00::1",
    "0.0.0.0",
    "192.0.2.10",
]
BAD_MD5 = "d41d8cd98f00b204e9800998ecf8427z"


def bulk(service: RunningService, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/ioc/bulk", json=body, headers={"X-API-Key": key}, timeout=60
    )


def wait_for_job(service: RunningService, key: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{service.url}/v1/jobs/{job_id}", headers={"X-API-Key": key}
        )
        assert response.status_code == 200
        job: dict[str, Any] = response.json()
        assert job["progress"]["done"] <= job["progress"]["total"]
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish within 60 s")


def variants(kind: str, n: int) -> list[str]:
    """Return three spellings of one observable that share a canonical form."""
    if kind == "ip":
        ip = f"203.0.{n // 250}.{n % 250 + 1}"
        return [ip, ip.replace(".", "[.]", 1), f"  {ip}\t"]
    if kind == "domain":
        domain = f"host{n}.example.com"
        return [domain, domain.upper(), domain.replace(".", "[.]")]
    if kind == "url":
        url = f"http://site{n}.example.com/path/{n}"
        return [url, url.replace("http", "hxxp", 1), f" {url} "]
    if kind == "md5":
        digest = hashlib.md5(str(n).encode()).hexdigest()
        return [digest, digest.upper(), f"\t{digest} "]
    email = f"user{n}@mail{n}.example.com"
    return [email, email.replace("@mail", "@MAIL"), f" {email}"]


def thousand_items() -> tuple[list[dict[str, str]], int]:
    """Return 990 valid items (330 unique), 9 private IPs and one bad md5."""
    valid: list[dict[str, str]] = []
    mix = {"ip": 100, "domain": 100, "url": 60, "md5": 50, "email": 20}
    for kind, count in mix.items():
        for n in range(count):
            valid.extend({"value": v} for v in variants(kind, n))
    rng = random.Random(7)
    rng.shuffle(valid)
    items = valid[:]
    for offset, ip in enumerate(PRIVATE_IPS):
        items.insert(100 * offset + 5, {"value": ip})
    items.insert(500, {"value": BAD_MD5, "type": "md5"})
    return items, sum(mix.values())


def canonical_keys(settings: Settings, items: list[dict[str, str]]) -> set[str]:
    engine = Engine([], settings)
    keys = set()
    for item in items:
        if item["value"] == BAD_MD5:
            continue
        keys.add(engine.parse(item["value"], item.get("type")).cache_key)
    return keys


def test_sync_bulk_collapses_duplicates(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items = [
        {"value": "evil.example"},
        {"value": "EVIL[.]example"},
        {"value": " evil.example "},
        {"value": BAD_MD5, "type": "md5"},
        {"value": "10.0.0.5"},
        {"value": "198.51.100.77"},
    ]
    response = bulk(service, key, {"items": items})
    assert response.status_code == 200
    body = response.json()
    assert [entry["index"] for entry in body["results"]] == list(range(6))
    assert body["results"][3]["error"]["field"] == "value"
    assert body["results"][3]["error"]["value"] == BAD_MD5
    assert "result" not in body["results"][3] or body["results"][3]["result"] is None
    assert body["results"][0]["result"]["verdict"] == "malicious"
    assert body["results"][1]["result"]["observable"]["value"] == "evil.example"
    assert service.local.calls["evil.example"] == 1
    summary = body["summary"]
    assert summary["total"] == 6
    assert summary["succeeded"] == 5
    assert summary["failed"] == 1
    assert summary["unique"] == 3
    assert summary["by_verdict"]["malicious"] == 3
    # Charged once per unique observable: 3 (domain) + 3 (ip) + 3 (private ip).
    assert summary["credits_charged"] == 9
    assert response.headers["X-Credits-Used"] == "9"


def test_thousand_items_via_job(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items, unique = thousand_items()
    assert len(items) == 1000
    response = bulk(service, key, {"items": items})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status_url"].endswith(f"/v1/jobs/{accepted['job_id']}")
    job = wait_for_job(service, key, accepted["job_id"])
    assert job["status"] == "finished"
    assert job["progress"] == {"done": 1000, "total": 1000}

    page = httpx.get(
        accepted["status_url"], params={"limit": 1000}, headers={"X-API-Key": key}
    ).json()
    results = page["results"]
    assert [entry["index"] for entry in results] == list(range(1000))
    bad = results[500]
    assert bad["error"]["field"] == "value"
    assert bad["error"]["value"] == BAD_MD5
    assert "md5" in bad["error"]["message"] or "hex" in bad["error"]["message"]
    assert sum(1 for entry in results if entry.get("error")) == 1

    expected_keys = canonical_keys(service.settings, items)
    assert len(expected_keys) == unique + len(PRIVATE_IPS)
    assert sum(service.local.calls.values()) == len(expected_keys)
    assert max(service.local.calls.values()) == 1
    for ip in PRIVATE_IPS:
        assert service.remote.calls[ip] == 0
    for entry in results:
        result = entry.get("result")
        if result and result["observable"]["value"] in PRIVATE_IPS:
            assert result["verdict"] != "malicious"
            assert result["enrichment"]["remote_intel"]["reason"] == "non-routable"
    concurrency = service.settings.service_bulk_concurrency
    assert service.local.max_in_flight <= concurrency
    assert service.remote.max_in_flight <= concurrency

    summary = job["summary"]
    assert summary["total"] == 1000
    assert summary["succeeded"] == 999
    assert summary["failed"] == 1
    assert summary["unique"] == len(expected_keys)
    assert sum(summary["by_verdict"].values()) == 999


def test_job_results_paginate(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items = [{"value": f"page{i}.example"} for i in range(150)]
    job_id = bulk(service, key, {"items": items}).json()["job_id"]
    wait_for_job(service, key, job_id)
    url = f"{service.url}/v1/jobs/{job_id}"
    first = httpx.get(
        url, params={"offset": 0, "limit": 100}, headers={"X-API-Key": key}
    ).json()
    second = httpx.get(
        url, params={"offset": 100, "limit": 100}, headers={"X-API-Key": key}
    ).json()
    assert len(first["results"]) == 100
    assert first["next_offset"] == 100
    assert [e["index"] for e in second["results"]] == list(range(100, 150))
    assert second["next_offset"] is None


def test_unknown_job_is_404(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    response = httpx.get(
        f"{service.url}/v1/jobs/0123456789abcdef", headers={"X-API-Key": key}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "job_not_found"


def test_other_tenants_job_is_404(service: RunningService) -> None:
    owner = service.create_key("owner", "business")
    other = service.create_key("other", "business")
    items = [{"value": f"own{i}.example"} for i in range(101)]
    job_id = bulk(service, owner, {"items": items}).json()["job_id"]
    response = httpx.get(
        f"{service.url}/v1/jobs/{job_id}", headers={"X-API-Key": other}
    )
    assert response.status_code == 404


def test_bulk_rejects_bad_webhook_scheme(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    response = bulk(
        service,
        key,
        {"items": [{"value": "a.example"}], "webhook_url": "file:///etc/passwd"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "webhook_url"
    assert error["value"] == "file:///etc/passwd"
    assert error["message"].startswith(
        "body field webhook_url must start with http:// or https://"
    )


def test_bulk_empty_items_is_422(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    response = bulk(service, key, {"items": []})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "items"
    assert error["value"] == []
    assert error["message"].startswith("body field items must have at least 1 item")


def test_bulk_item_error_names_path(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items: list[dict[str, Any]] = [{"value": "a.example"}, {"value": ["b.example"]}]
    response = bulk(service, key, {"items": items})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "items[1].value"
    assert error["value"] == ["b.example"]
    assert error["message"].startswith("body field items[1].value must be a string")


def test_job_page_limit_error_names_parameter(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    response = httpx.get(
        f"{service.url}/v1/jobs/0123456789abcdef",
        params={"limit": 5000},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["field"] == "limit"
    assert error["value"] == "5000"
    assert error["message"].startswith("query parameter limit must be at most 1000")
    assert "body" not in error["message"]


def test_webhook_signed_and_retried(
    service: RunningService, loopback: LoopbackServer
) -> None:
    attempts: list[SeenRequest] = []

    def receive(seen: SeenRequest) -> Reply:
        attempts.append(seen)
        return Reply(status=503 if len(attempts) == 1 else 204)

    loopback.route("POST", "/hook", receive)
    key = service.create_key("hooked", "business")
    items = [{"value": f"hook{i}.example"} for i in range(120)]
    response = bulk(
        service, key, {"items": items, "webhook_url": f"{loopback.url}/hook"}
    )
    job_id = response.json()["job_id"]
    wait_for_job(service, key, job_id)
    deadline = time.monotonic() + 20
    while len(attempts) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(attempts) == 2
    delivered = attempts[1]
    payload = json.loads(delivered.body)
    assert payload["job_id"] == job_id
    assert payload["summary"]["total"] == 120
    secret = asyncio.run(_secret(service, "hooked"))
    expected = hmac.new(secret.encode(), delivered.body, hashlib.sha256).hexdigest()
    assert delivered.headers["x-iocscope-signature"] == f"sha256={expected}"
    assert delivered.headers["x-iocscope-timestamp"].isdigit()


async def _secret(service: RunningService, tenant: str) -> str:
    engine = create_engine(service.settings)
    try:
        secret = await webhook_secret(session_factory(engine), tenant)
    finally:
        await engine.dispose()
    assert secret is not None
    return secret


def test_bulk_out_of_credits_per_item(start_service: StartService) -> None:
    service = start_service(
        service_plans={"tiny": {"monthly_credits": 7, "requests_per_minute": 100}}
    )
    key = service.create_key("tiny-tenant", "tiny")
    items = [{"value": f"198.51.100.{i}"} for i in range(1, 5)]
    body = bulk(service, key, {"items": items}).json()
    errors = [e for e in body["results"] if e.get("error")]
    assert body["summary"]["succeeded"] == 2
    assert len(errors) == 2
    assert all(e["error"]["code"] == "insufficient_credits" for e in errors)
    again = bulk(service, key, {"items": items})
    assert again.status_code == 402


def get_page(
    service: RunningService, key: str, job_id: str, offset: int, limit: int
) -> dict[str, Any]:
    response = httpx.get(
        f"{service.url}/v1/jobs/{job_id}",
        params={"offset": offset, "limit": limit},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def without_credits(result: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in result.items() if name != "credits"}


def test_job_pages_share_duplicate_reports(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items: list[dict[str, str]] = [
        {"value": f"dup{n % 50}.example"} for n in range(250)
    ]
    items.insert(7, {"value": BAD_MD5, "type": "md5"})
    job_id = bulk(service, key, {"items": items}).json()["job_id"]
    job = wait_for_job(service, key, job_id)
    assert job["status"] == "finished"

    pages = [get_page(service, key, job_id, offset, 100) for offset in (0, 100, 200)]
    assert [page["next_offset"] for page in pages] == [100, 200, None]
    entries = [entry for page in pages for entry in page["results"]]
    assert [entry["index"] for entry in entries] == list(range(251))

    assert entries[7]["error"]["value"] == BAD_MD5
    assert entries[7]["error"]["field"] == "value"
    first_seen: dict[str, dict[str, Any]] = {}
    for entry in entries[:7] + entries[8:]:
        result = entry["result"]
        value = result["observable"]["value"]
        if value not in first_seen:
            first_seen[value] = result
            assert result["credits"]["charged"] == 3, entry["index"]
            continue
        assert result["credits"]["charged"] == 0, entry["index"]
        assert without_credits(result) == without_credits(first_seen[value])
    assert len(first_seen) == 50
    assert sum(service.local.calls.values()) == 50

    summary = job["summary"]
    assert summary["total"] == 251
    assert summary["succeeded"] == 250
    assert summary["failed"] == 1
    assert summary["unique"] == 50
    assert summary["credits_charged"] == 150


def test_job_page_past_end_is_empty(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items = [{"value": f"end{n}.example"} for n in range(101)]
    job_id = bulk(service, key, {"items": items}).json()["job_id"]
    wait_for_job(service, key, job_id)
    last = get_page(service, key, job_id, 100, 10)
    assert [entry["index"] for entry in last["results"]] == [100]
    assert last["next_offset"] is None
    past = get_page(service, key, job_id, 500, 10)
    assert past["results"] == []
    assert past["next_offset"] is None


def test_failed_job_keeps_no_results(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    ledger = service.extra["app"].state.service.ledger
    real_settle = ledger.settle
    settled = 0

    async def settle_then_break(*args: Any, **kwargs: Any) -> Any:
        nonlocal settled
        settled += 1
        if settled == 10:
            raise RuntimeError("settle failed")
        return await real_settle(*args, **kwargs)

    ledger.settle = settle_then_break
    items = [{"value": f"broken{n}.example"} for n in range(300)]
    job_id = bulk(service, key, {"items": items}).json()["job_id"]
    job = wait_for_job(service, key, job_id)

    assert job["status"] == "failed"
    assert job["error"] == "internal error: RuntimeError"
    assert job["results"] is None
    # The other workers stop once one fails, so most items never run.
    assert sum(service.local.calls.values()) < 100
    assert asyncio.run(_stored_rows(service, job_id)) == (0, 0)


async def _stored_rows(service: RunningService, job_id: str) -> tuple[int, int]:
    engine = create_engine(service.settings)
    try:
        async with session_factory(engine)() as session:
            counts = []
            for table in (BulkJobResult, BulkJobReport):
                query = select(func.count()).where(table.job_id == job_id)
                counts.append(int(await session.scalar(query) or 0))
    finally:
        await engine.dispose()
    return counts[0], counts[1]


def lookup_metrics(service: RunningService) -> tuple[dict[str, float], float]:
    """Return iocscope_lookups_total by verdict and iocscope_credits_charged_total."""
    by_verdict: dict[str, float] = {}
    credits = 0.0
    for line in httpx.get(f"{service.url}/metrics").text.splitlines():
        if line.startswith("iocscope_lookups_total{"):
            labels, count = line.rsplit(" ", 1)
            verdict = labels.split('verdict="', 1)[1].split('"', 1)[0]
            by_verdict[verdict] = float(count)
        elif line.startswith("iocscope_credits_charged_total "):
            credits = float(line.rsplit(" ", 1)[1])
    return by_verdict, credits


def test_job_items_counted_in_metrics(service: RunningService) -> None:
    key = service.create_key("acme", "business")
    items = [{"value": f"counted{n % 100}.example"} for n in range(130)]
    items += [{"value": "evil.example"}, {"value": "EVIL[.]example"}]
    items.append({"value": BAD_MD5, "type": "md5"})
    job_id = bulk(service, key, {"items": items}).json()["job_id"]
    job = wait_for_job(service, key, job_id)
    assert job["status"] == "finished"

    by_verdict, credits = lookup_metrics(service)
    assert by_verdict == {"malicious": 2.0, "unknown": 130.0}
    assert by_verdict == {
        verdict: float(count) for verdict, count in job["summary"]["by_verdict"].items()
    }
    # 101 unique domains at 3 credits each; duplicates and the bad md5 are free.
    assert credits == 303.0
    assert credits == job["summary"]["credits_charged"]
