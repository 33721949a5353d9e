"""Load test of the HTTP service: 50 concurrent clients x 200 lookups on one key.

Run by hand from the repository root:

    .venv/bin/python bench/bench_service.py [--backend sqlite|postgres] [--write]

The server is ``create_app`` under uvicorn on 127.0.0.1 with one local synthetic
source, so the numbers measure the service layer (auth, rate limit, credit
ledger, usage records, JSON) and not any vendor. The plan is sized so that some
requests hit the per-minute limit (429) and some run out of credits (402). With
``--write`` the results replace the "Service" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from pydantic import Field

from iocscope.api import create_app
from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.models import ALL_TYPES, Observable, SourceResult
from iocscope.service.database import create_engine, session_factory, upgrade_database
from iocscope.service.keys import create_key
from iocscope.sources.base import SourceSpec

CLIENTS = 50
LOOKUPS = 200
PER_MINUTE = 3_000
CREDITS = 18_000
IP_COST = 3
# Seconds after which the whole run is abandoned.
RUN_LIMIT_S = 600
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class BenchSettings(Settings):
    service_plans: dict[str, dict[str, int]] = Field(default_factory=dict)
    redis_key_prefix: str = "iocscope-bench"


class SyntheticSource:
    spec = SourceSpec(
        name="synthetic",
        types=frozenset(ALL_TYPES),
        description="in-memory source for the benchmark",
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        return SourceResult.not_found()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def make_key(settings: Settings) -> str:
    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        return (await create_key(session_factory(engine), "bench", "bench"))[1]
    finally:
        await engine.dispose()


async def client(
    url: str, key: str, number: int, latencies: list[float], statuses: Counter[int]
) -> None:
    async with httpx.AsyncClient(
        base_url=url, timeout=30, headers={"X-API-Key": key}
    ) as http:
        for n in range(LOOKUPS):
            body = {"value": f"10.{number}.{n // 250}.{n % 250 + 1}", "refresh": True}
            started = time.perf_counter()
            response = await http.post("/v1/ioc/enrich", json=body)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1


async def load(url: str, key: str) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(
            *(client(url, key, n, latencies, statuses) for n in range(CLIENTS))
        ),
        RUN_LIMIT_S,
    )
    elapsed = time.perf_counter() - started
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as http:
        usage = await http.get("/v1/usage")
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "elapsed_s": elapsed,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p95_ms": quantiles[94] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "statuses": dict(sorted(statuses.items())),
        "credits_used": int(usage.headers["X-Credits-Used"]),
    }


def run(backend: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        fields: dict[str, Any] = {
            "data_dir": Path(data_dir),
            "service_plans": {
                "bench": {"monthly_credits": CREDITS, "requests_per_minute": PER_MINUTE}
            },
        }
        database = None
        if backend == "postgres":
            database = f"iocscope_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{database}"')
            fields["database_url"] = (
                f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
            )
            fields["redis_url"] = "redis://127.0.0.1:6379/14"
            fields["redis_key_prefix"] = f"iocscope-bench-{uuid.uuid4().hex[:8]}"
        settings = BenchSettings(**fields)
        try:
            return serve_and_load(settings)
        finally:
            if database is not None:
                with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def serve_and_load(settings: BenchSettings) -> dict[str, Any]:
    key = asyncio.run(make_key(settings))
    app = create_app(settings, engine=Engine([SyntheticSource()], settings))
    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", log_config=None, access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        port = sock.getsockname()[1]
        return asyncio.run(load(f"http://127.0.0.1:{port}", key))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def section(backend: str, result: dict[str, Any]) -> str:
    statuses = result["statuses"]
    ok = statuses.get(200, 0)
    lines = [
        f"### {backend}",
        "",
        f"- {result['requests']} requests in {result['elapsed_s']:.1f} s "
        f"({result['rps']:.0f} requests/s)",
        f"- latency p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms",
        f"- status codes: {statuses}",
        f"- credits used {result['credits_used']}, expected {ok} x {IP_COST} = "
        f"{ok * IP_COST}",
        "",
    ]
    return "\n".join(lines)


def write_docs(sections: list[str]) -> None:
    header = [
        "## Service",
        "",
        f"`bench/bench_service.py`: {CLIENTS} concurrent clients x {LOOKUPS} "
        f"lookups on one key, plan {PER_MINUTE} requests/minute and {CREDITS} "
        "credits, one in-memory source, server and clients in one process on "
        "127.0.0.1.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        "",
    ]
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    start = text.find("## Service")
    if start != -1:
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end + 1 :] if end != -1 else "")
    text = text.rstrip("\n") + "\n\n" + "\n".join(header + sections)
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="sqlite"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="replace the Service section of docs/benchmarks.md",
    )
    arguments = parser.parse_args()
    backends = (
        ["sqlite", "postgres"] if arguments.backend == "both" else [arguments.backend]
    )
    sections = []
    for backend in backends:
        result = run(backend)
        text = section(backend, result)
        print(text)
        sections.append(text)
    if arguments.write:
        write_docs(sections)


if __name__ == "__main__":
    main()
