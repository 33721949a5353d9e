"""Regression tests for faults found in review of the governor store, bulk
jobs, the engine and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.governor import UpstreamGovernor
from iocscope.models import ObservableType, SourceResult, Status
from iocscope.sources.base import SourceSpec
from iocscope.sources.http import parse_retry_after
from tests.api.service import build_settings, run_server
from tests.test_cli import run_cli

NETWORK_SPEC = SourceSpec(
    name="vendor",
    types=frozenset({ObservableType.IP}),
    description="a network source under test",
    network=True,
)


class TupleDataSource:
    """A local source whose data contains a lone surrogate inside a tuple."""

    spec = SourceSpec(
        name="tuple_data",
        types=frozenset({ObservableType.IP}),
        description="returns a tuple with a lone surrogate",
    )

    async def lookup(self, observable: object) -> SourceResult:
        return SourceResult(status=Status.OK, data={"names": ("bad\ud800",)})


@pytest.mark.parametrize("header", ["²", "9" * 400, "Fri, 31 Dec 99999 23:59:59 GMT"])
def test_odd_retry_after_is_bounded(header: str) -> None:
    delay = parse_retry_after(header)
    assert delay is None or 0 <= delay <= 86_400


def test_huge_retry_after_admit() -> None:
    async def scenario() -> SourceResult | None:
        governor = UpstreamGovernor(Settings())
        delay = parse_retry_after("1" + "0" * 308)
        limited = SourceResult(
            status=Status.RATE_LIMITED, reason="HTTP 429", retry_after_s=delay
        )
        await governor.record(NETWORK_SPEC, limited)
        return await governor.admit(NETWORK_SPEC)

    refusal = asyncio.run(scenario())
    assert refusal is not None
    assert refusal.status is Status.RATE_LIMITED


def test_sources_unopenable_governor_file(tmp_path: Path) -> None:
    (tmp_path / "governor.sqlite3").mkdir()
    args = ("sources", "--json", "--data-dir", str(tmp_path))
    result = run_cli(*args, env=dict(os.environ))
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert "Traceback" not in result.stderr
    assert result.returncode == 0
    assert "store unavailable" in rows["virustotal"]["health"]["last_error"]


def test_db_refused_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "IOCSCOPE_DATABASE_URL": "postgresql://iocscope@127.0.0.1:1/iocscope",
    }
    result = run_cli("db", "upgrade", "--data-dir", str(tmp_path), env=env)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error:")


def test_job_page_huge_offset(tmp_path: Path) -> None:
    settings = build_settings("sqlite", tmp_path / "data", offline=True)
    with run_server(settings) as service:
        key = service.create_key("acme", "business")
        headers = {"X-API-Key": key}
        items = [{"value": f"page{n}.example"} for n in range(101)]
        accepted = httpx.post(
            f"{service.url}/v1/ioc/bulk",
            json={"items": items},
            headers=headers,
            timeout=60,
        )
        job_url = f"{service.url}/v1/jobs/{accepted.json()['job_id']}"
        for _ in range(300):
            if httpx.get(job_url, headers=headers).json()["status"] == "finished":
                break
            asyncio.run(asyncio.sleep(0.1))
        page = httpx.get(job_url, params={"offset": 2**63}, headers=headers)
    assert page.status_code in (200, 422)


def test_bulk_lone_surrogate_value(tmp_path: Path) -> None:
    settings = build_settings("sqlite", tmp_path / "data", offline=True)
    with run_server(settings) as service:
        key = service.create_key("acme", "business")
        response = httpx.post(
            f"{service.url}/v1/ioc/bulk",
            content=b'{"items": [{"value": "\\ud800.example"}]}',
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
    assert response.status_code == 422


def test_engine_cleans_tuple_text() -> None:
    engine = Engine([TupleDataSource()], Settings(offline=True))
    report = asyncio.run(engine.enrich("8.8.8.8"))
    report.model_dump_json()
