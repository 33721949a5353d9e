"""A bulk job's peak memory grows by far less than one report per item.

The server runs in this process, so ``tracemalloc`` traces every Python allocation
of the job: the request, the stored items, the bulk workers and the database
writes. Sources pad each result so that a report has about 37 KB of JSON, the
size of a report from many real sources. Only SQLite is measured, because the
job path runs the same SQLAlchemy code on PostgreSQL, where the other job tests
run as well.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.service import RunningService, build_settings, run_server

# Characters of padding per source result. Two sources make a 37 KB report.
PADDING_CHARS = 18_000
REPORT_BYTES = 36_000
SMALL_JOB = 500
LARGE_JOB = 3_000
# Each observable appears this many times in a row, which keeps the engine calls
# (and the test's run time) down while every item still gets a full report.
COPIES = 6
# Allowed growth of peak memory per extra item. About 1 KB was measured with
# reports written as they finish, and about 45 KB when every report was kept
# until the job ended.
BYTES_PER_ITEM = 4_000
PLAN = {"monthly_credits": 10_000_000, "requests_per_minute": 100_000}


@pytest.fixture
def padded_service(tmp_path: Path) -> Iterator[RunningService]:
    settings = build_settings(
        "sqlite",
        tmp_path,
        service_plans={"bulk": PLAN},
        service_bulk_concurrency=8,
    )
    with run_server(settings, padding_chars=PADDING_CHARS) as service:
        yield service


def job_items(count: int, prefix: str) -> list[dict[str, str]]:
    return [{"value": f"{prefix}{n // COPIES}.example"} for n in range(count)]


def run_job(service: RunningService, key: str, items: list[dict[str, str]]) -> str:
    headers = {"X-API-Key": key}
    response = httpx.post(
        f"{service.url}/v1/ioc/bulk",
        json={"items": items},
        headers=headers,
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # One result per poll keeps the responses' own size out of the peak.
        job = get_page(service, key, job_id, offset=0, limit=1)
        if job["status"] in ("finished", "failed"):
            assert job["status"] == "finished", job
            return job_id
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish within 60 s")


def get_page(
    service: RunningService, key: str, job_id: str, *, offset: int, limit: int
) -> dict[str, Any]:
    response = httpx.get(
        f"{service.url}/v1/jobs/{job_id}",
        params={"offset": offset, "limit": limit},
        headers={"X-API-Key": key},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def peak_growth(service: RunningService, key: str, count: int) -> tuple[int, str]:
    """Run a job of ``count`` items and return its peak traced bytes and its id."""
    items = job_items(count, f"size{count}-")
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    job_id = run_job(service, key, items)
    return tracemalloc.get_traced_memory()[1] - baseline, job_id


def test_job_memory_bounded_per_item(padded_service: RunningService) -> None:
    service = padded_service
    key = service.create_key("memory", "bulk")
    # Warm up imports, pools and caches before anything is measured.
    run_job(service, key, job_items(150, "warm-"))

    tracemalloc.start()
    try:
        small, _ = peak_growth(service, key, SMALL_JOB)
        large, job_id = peak_growth(service, key, LARGE_JOB)
    finally:
        tracemalloc.stop()

    extra_items = LARGE_JOB - SMALL_JOB
    message = f"peak growth {small} B for {SMALL_JOB} items, {large} B for {LARGE_JOB}"
    assert large - small < extra_items * BYTES_PER_ITEM, message

    page = get_page(service, key, job_id, offset=1500, limit=3)
    entries = page["results"]
    assert [entry["index"] for entry in entries] == [1500, 1501, 1502]
    assert page["next_offset"] == 1503
    first, duplicate, _ = (entry["result"] for entry in entries)
    assert first["observable"]["value"] == f"size{LARGE_JOB}-250.example"
    assert duplicate["observable"] == first["observable"]
    assert first["credits"]["charged"] == 3
    assert duplicate["credits"]["charged"] == 0
    padding = first["enrichment"]["local_intel"]["data"]["padding"]
    assert len(padding) == PADDING_CHARS
    assert len(json.dumps(first)) > REPORT_BYTES
