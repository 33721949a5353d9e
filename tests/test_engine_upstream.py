"""The engine with the VirusTotal, AbuseIPDB and GreyNoise adapters on loopback servers.

Covers what only shows end to end: rate-limited and failed results kept out of the
score and the cache, the governor's backoff, per-source timeouts, cache hits and
key rotation, text that cannot travel in UTF-8, and keys kept out of the logs.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis.asyncio
import structlog

from iocscope.cache import MemoryCache, RedisCache, ResultCache
from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.governor import UpstreamGovernor
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source
from iocscope.sources.vendors.abuseipdb import AbuseIPDBSource
from iocscope.sources.vendors.greynoise import GreyNoiseSource
from iocscope.sources.vendors.virustotal import SPEC as VT_SPEC
from iocscope.sources.vendors.virustotal import VirusTotalSource
from iocscope.tlp import TLP
from tests.loopback import LoopbackServer, Reply

REDIS_URL = "redis://127.0.0.1:6379/15"
KEYS = {
    "virustotal_api_key": "vt-engine-key-3f9a61c2",
    "abuseipdb_api_key": "abuse-engine-key-77d0e4",
    "greynoise_api_key": "gn-engine-key-b81c5f",
}
SHA256 = "0078c8132fb99b4bccbb2e2429885a857d6a89534f74e23e6a12821abd2c3db2"
ADDRESS = "81.2.69.160"


class VirusTotalMirror(VirusTotalSource):
    """A second VirusTotal-shaped source, so one lookup can meet two failures."""

    spec = replace(VT_SPEC, name="virustotal_mirror")


class VirusTotalThird(VirusTotalSource):
    spec = replace(VT_SPEC, name="virustotal_third")


class RecordingCache:
    """A ResultCache that records every store, in front of another cache."""

    def __init__(self, inner: ResultCache) -> None:
        self.inner = inner
        self.stored: list[tuple[str, Status, int]] = []

    async def get(self, key: str) -> tuple[SourceResult, float] | None:
        return await self.inner.get(key)

    async def set(self, key: str, result: SourceResult, ttl_s: int) -> None:
        self.stored.append((key.split(":", 1)[0], result.status, ttl_s))
        await self.inner.set(key, result, ttl_s)


ServerFactory = Callable[[], LoopbackServer]


@pytest.fixture
def servers() -> Iterator[ServerFactory]:
    """Start loopback servers on demand; stop them all after the test."""
    started: list[LoopbackServer] = []

    def start() -> LoopbackServer:
        server = LoopbackServer().start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def recorded(shared_fixtures: Path) -> Path:
    return shared_fixtures / "upstream"


def settings_for(endpoints: dict[str, LoopbackServer], **extra: object) -> Settings:
    values: dict[str, object] = dict(KEYS)
    values.update(extra)
    urls = {name: server.url for name, server in endpoints.items()}
    return Settings(source_endpoints=urls, **values)  # type: ignore[arg-type]


def build_engine(
    settings: Settings,
    client: httpx.AsyncClient,
    kinds: list[type[Source]],
    cache: ResultCache | None = None,
) -> Engine:
    sources: list[Source] = [kind(settings, client) for kind in kinds]  # type: ignore[call-arg]
    return Engine(
        sources,
        settings,
        cache=cache if cache is not None else MemoryCache(),
        governor=UpstreamGovernor(settings),
    )


def sha256() -> Observable:
    return Observable(type=ObservableType.SHA256, value=SHA256, input=SHA256)


def address() -> Observable:
    return Observable(
        type=ObservableType.IP, value=ADDRESS, input=ADDRESS, scope="global"
    )


async def test_rate_limits_and_empty_400(
    servers: ServerFactory, client: httpx.AsyncClient, recorded: Path
) -> None:
    quota_body = (
        recorded / "virustotal" / "error_429_quota_exceeded.constructed.json"
    ).read_bytes()
    path = f"/api/v3/files/{SHA256}"
    limited, quota, broken = servers(), servers(), servers()
    limited.route("GET", path, Reply(429, quota_body, {"Retry-After": "60"}))
    quota.route("GET", path, Reply(200, quota_body))
    broken.route("GET", path, Reply(400, b""))
    settings = settings_for(
        {"virustotal": limited, "virustotal_mirror": quota, "virustotal_third": broken}
    )
    cache = RecordingCache(MemoryCache())
    kinds: list[type[Source]] = [VirusTotalSource, VirusTotalMirror, VirusTotalThird]
    engine = build_engine(settings, client, kinds, cache)

    report = await engine.enrich_observable(sha256(), tlp=TLP.AMBER)
    first = report.enrichment["virustotal"]
    second = report.enrichment["virustotal_mirror"]
    third = report.enrichment["virustotal_third"]
    assert first.status is Status.RATE_LIMITED
    assert first.retry_after_s == 60
    assert second.status is Status.RATE_LIMITED
    assert second.retry_after_s == 60
    assert third.status is Status.ERROR
    assert third.reason == "upstream returned 400 with an empty body"
    assert report.risk_score == 0
    assert report.verdict is Verdict.UNKNOWN
    assert report.explanation == []
    assert report.sources_failed == 3
    assert cache.stored == []

    # The governor keeps the rate-limited sources waiting, without a request.
    again = await engine.enrich_observable(sha256(), tlp=TLP.AMBER)
    held = again.enrichment["virustotal"]
    assert held.status is Status.RATE_LIMITED
    assert held.reason == "backing off after the vendor's rate limit"
    assert held.retry_after_s is not None
    assert 55 < held.retry_after_s <= 60
    assert again.enrichment["virustotal_mirror"].status is Status.RATE_LIMITED
    assert len(limited.requests) == 1
    assert len(quota.requests) == 1
    assert len(broken.requests) == 2
    assert cache.stored == []

    # Nothing was cached: an engine with a fresh budget calls the vendors again.
    fresh = build_engine(settings, client, kinds, cache)
    await fresh.enrich_observable(sha256(), tlp=TLP.AMBER)
    assert len(limited.requests) == 2
    assert len(quota.requests) == 2
    assert len(broken.requests) == 3


async def test_slow_sources_time_out(
    servers: ServerFactory, client: httpx.AsyncClient, recorded: Path
) -> None:
    vt_body = (recorded / "virustotal" / "ip_8.8.8.8_benign.json").read_bytes()
    ip_path = f"/api/v3/ip_addresses/{ADDRESS}"
    hanging, slow, fast, faster = servers(), servers(), servers(), servers()
    hanging.route(
        "GET", f"/v3/community/{ADDRESS}", Reply(200, b"{}", delay_s=float("inf"))
    )
    slow.route("GET", "/api/v2/check", Reply(200, b"{}", delay_s=20))
    fast.route("GET", ip_path, Reply(200, vt_body))
    faster.route("GET", ip_path, Reply(200, vt_body))
    settings = settings_for(
        {
            "greynoise": hanging,
            "abuseipdb": slow,
            "virustotal": fast,
            "virustotal_mirror": faster,
        },
        source_timeouts={"greynoise": 1.0, "abuseipdb": 1.0},
    )
    cache = RecordingCache(MemoryCache())
    kinds: list[type[Source]] = [
        GreyNoiseSource,
        AbuseIPDBSource,
        VirusTotalSource,
        VirusTotalMirror,
    ]
    engine = build_engine(settings, client, kinds, cache)

    started = time.monotonic()
    report = await engine.enrich_observable(address(), tlp=TLP.AMBER)
    elapsed = time.monotonic() - started
    assert elapsed < 3
    for name in ("greynoise", "abuseipdb"):
        result = report.enrichment[name]
        assert result.status is Status.TIMEOUT
        assert result.reason is not None
        assert re.fullmatch(r"timed out after 1\.\d s \(limit 1 s\)", result.reason)
    for name in ("virustotal", "virustotal_mirror"):
        assert report.enrichment[name].status is Status.OK
        assert report.enrichment[name].verdict is Verdict.CLEAN
    assert sorted(entry[0] for entry in cache.stored) == [
        "virustotal",
        "virustotal_mirror",
    ]

    await engine.enrich_observable(address(), tlp=TLP.AMBER)
    assert len(hanging.requests) == 2
    assert len(slow.requests) == 2
    assert len(fast.requests) == 1


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def result_cache(request: pytest.FixtureRequest) -> AsyncIterator[ResultCache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    prefix = f"iocscope-test-{uuid.uuid4().hex[:12]}:"
    connection = redis.asyncio.Redis.from_url(REDIS_URL)
    yield RedisCache(connection, prefix=prefix)
    keys = [key async for key in connection.scan_iter(match=f"{prefix}*")]
    if keys:
        await connection.delete(*keys)
    await connection.aclose()


async def test_cache_hit_refresh_and_rotation(
    loopback: LoopbackServer,
    client: httpx.AsyncClient,
    recorded: Path,
    result_cache: ResultCache,
) -> None:
    body = (recorded / "virustotal" / "ip_8.8.8.8_benign.json").read_bytes()
    loopback.route("GET", f"/api/v3/ip_addresses/{ADDRESS}", Reply(200, body))
    settings = settings_for({"virustotal": loopback})
    cache = RecordingCache(result_cache)
    engine = build_engine(settings, client, [VirusTotalSource], cache)

    first = (await engine.enrich_observable(address(), tlp=TLP.AMBER)).enrichment
    assert first["virustotal"].cached is False
    assert cache.stored == [("virustotal", Status.OK, VT_SPEC.cache_ttl_hit_s)]

    second = (await engine.enrich_observable(address(), tlp=TLP.AMBER)).enrichment
    assert second["virustotal"].cached is True
    assert second["virustotal"].age_s == 0
    assert second["virustotal"].verdict is Verdict.CLEAN
    assert len(loopback.requests) == 1

    refreshed = await engine.enrich_observable(address(), tlp=TLP.AMBER, refresh=True)
    assert refreshed.enrichment["virustotal"].cached is False
    assert len(loopback.requests) == 2

    rotated_settings = settings_for(
        {"virustotal": loopback}, virustotal_api_key="vt-rotated-key-5e0b"
    )
    rotated = build_engine(rotated_settings, client, [VirusTotalSource], cache)
    after = await rotated.enrich_observable(address(), tlp=TLP.AMBER)
    assert after.enrichment["virustotal"].cached is False
    assert len(loopback.requests) == 3
    assert loopback.requests[-1].headers["x-apikey"] == "vt-rotated-key-5e0b"


async def test_not_found_cached_with_miss_ttl(
    loopback: LoopbackServer, client: httpx.AsyncClient, recorded: Path
) -> None:
    body = (recorded / "virustotal" / "error_404_not_found.json").read_bytes()
    loopback.route("GET", f"/api/v3/files/{SHA256}", Reply(404, body))
    cache = RecordingCache(MemoryCache())
    settings = settings_for({"virustotal": loopback})
    engine = build_engine(settings, client, [VirusTotalSource], cache)
    report = await engine.enrich_observable(sha256(), tlp=TLP.AMBER)
    assert report.enrichment["virustotal"].status is Status.NOT_FOUND
    assert report.verdict is Verdict.UNKNOWN
    assert cache.stored == [("virustotal", Status.NOT_FOUND, VT_SPEC.cache_ttl_miss_s)]
    again = await engine.enrich_observable(sha256(), tlp=TLP.AMBER)
    assert again.enrichment["virustotal"].cached is True
    assert len(loopback.requests) == 1


async def test_bad_text_serializes_as_utf8(
    loopback: LoopbackServer, client: httpx.AsyncClient
) -> None:
    body = (
        b'{"data": {"ipAddress": "81.2.69.160", "abuseConfidenceScore": 0,'
        b' "totalReports": 0, "isp": "'
        + "Société Exemple 株式会社".encode()
        + b'", "domain": "exa\\u0000mple.test",'
        b' "usageType": "Data Center \\ud800 Transit",'
        b' "countryCode": "F\xffR"}}'
    )
    loopback.route("GET", "/api/v2/check", Reply(200, body))
    settings = settings_for({"abuseipdb": loopback})
    engine = build_engine(settings, client, [AbuseIPDBSource])
    report = await engine.enrich_observable(address(), tlp=TLP.AMBER)

    encoded = report.model_dump_json().encode("utf-8")
    text = encoded.decode("utf-8", errors="strict")
    assert "Société Exemple 株式会社" in text
    assert "\\u0000" not in text
    assert "\\ud800" not in text
    data = json.loads(text)["enrichment"]["abuseipdb"]["data"]
    assert data["isp"] == "Société Exemple 株式会社"
    assert data["domain"] == "exa\ufffdmple.test"
    assert data["usageType"] == "Data Center \ufffd Transit"
    assert data["countryCode"] == "F\ufffdR"


async def test_keys_never_logged(
    servers: ServerFactory,
    client: httpx.AsyncClient,
    recorded: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vt, abuse, grey = servers(), servers(), servers()
    vt_body = (recorded / "virustotal" / "error_401_auth_required.json").read_bytes()
    abuse_body = (recorded / "abuseipdb" / "error_429_daily_limit.json").read_bytes()
    vt.route("GET", f"/api/v3/ip_addresses/{ADDRESS}", Reply(401, vt_body))
    abuse.route("GET", "/api/v2/check", Reply(429, abuse_body, {"Retry-After": "9"}))
    grey.route("GET", f"/v3/community/{ADDRESS}", Reply(500, b"{}"))
    settings = settings_for({"virustotal": vt, "abuseipdb": abuse, "greynoise": grey})
    kinds: list[type[Source]] = [VirusTotalSource, AbuseIPDBSource, GreyNoiseSource]
    engine = build_engine(settings, client, kinds)
    caplog.set_level(logging.DEBUG)

    with structlog.testing.capture_logs() as events:
        report = await engine.enrich_observable(address(), tlp=TLP.AMBER)

    # The keys did travel, in headers only.
    assert vt.requests[0].headers["x-apikey"] == KEYS["virustotal_api_key"]
    assert abuse.requests[0].headers["key"] == KEYS["abuseipdb_api_key"]
    assert grey.requests[0].headers["key"] == KEYS["greynoise_api_key"]
    failed = {
        event["source"] for event in events if event["event"] == "source.lookup.failed"
    }
    assert failed == {"virustotal", "abuseipdb", "greynoise"}
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)

    structured = repr(events)
    stdlib = "\n".join(
        f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records
    )
    printed = capsys.readouterr()
    for key in KEYS.values():
        assert key not in structured
        assert key not in stdlib
        assert key not in printed.out
        assert key not in printed.err
        assert key not in report.model_dump_json()
