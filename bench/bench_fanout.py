"""Benchmark: one enrichment against 15 slow vendors takes the slowest, not the sum.

Every HTTP vendor adapter is pointed at its own server on 127.0.0.1 that answers
every request after a fixed delay between 50 and 400 ms. The script enriches an
IP, a URL and a SHA-256 through the real engine and reports, per observable, the
wall time next to the slowest delay and the sum of the delays of the vendors that
were asked. Run by hand:

    .venv/bin/python bench/bench_fanout.py [--write docs/benchmarks.md]

Traffic stays on loopback; DNS-based sources are disabled because they would need
a resolver.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.loopback import LoopbackServer, Reply  # noqa: E402

from iocscope.config import Settings  # noqa: E402
from iocscope.models import Status  # noqa: E402
from iocscope.runtime import open_engine  # noqa: E402

VENDORS = [
    "abuseipdb",
    "circl_hashlookup",
    "circl_pdns",
    "google_safebrowsing",
    "greynoise",
    "ipinfo",
    "malwarebazaar_api",
    "otx",
    "rdap",
    "shodan_host",
    "shodan_internetdb",
    "threatfox_api",
    "urlhaus_api",
    "urlscan",
    "virustotal",
]
KEYS = {
    "abuseipdb_api_key": "bench-key-abuseipdb",
    "shodan_api_key": "bench-key-shodan",
    "greynoise_api_key": "bench-key-greynoise",
    "otx_api_key": "bench-key-otx",
    "abusech_auth_key": "bench-key-abusech",
    "urlscan_api_key": "bench-key-urlscan",
    "google_safebrowsing_api_key": "bench-key-gsb",
    "ipinfo_token": "bench-key-ipinfo",
    "virustotal_api_key": "bench-key-vt",
    "circl_pdns_user": "bench",
    "circl_pdns_password": "bench-key-pdns",
}
OBSERVABLES = ["45.61.49.78", "http://bench.example/login", "a" * 64]
ROUNDS = 5


def delays() -> dict[str, float]:
    """Spread the 15 vendors evenly over 50-400 ms."""
    step = (0.400 - 0.050) / (len(VENDORS) - 1)
    return {name: round(0.050 + i * step, 3) for i, name in enumerate(VENDORS)}


async def measure(
    settings: Settings, delay: dict[str, float]
) -> list[dict[str, object]]:
    rows = []
    async with open_engine(settings) as engine:
        for value in OBSERVABLES:
            walls = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                report = await engine.enrich(value, tlp="clear", refresh=True)
                walls.append(time.perf_counter() - started)
            asked = [
                name
                for name, result in report.enrichment.items()
                if name in delay and result.status is not Status.SKIPPED
            ]
            rows.append(
                {
                    "observable": report.observable.type.value,
                    "vendors": len(asked),
                    "slowest_ms": max(delay[n] for n in asked) * 1000,
                    "sum_ms": sum(delay[n] for n in asked) * 1000,
                    "wall_ms": statistics.median(walls) * 1000,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="append the results to this file")
    args = parser.parse_args()
    delay = delays()
    servers = {name: LoopbackServer().start() for name in VENDORS}
    try:
        for name, server in servers.items():
            server.fallback = Reply(status=404, body="{}", delay_s=delay[name])
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                data_dir=Path(data_dir),
                source_endpoints={n: s.url for n, s in servers.items()},
                disabled_sources=["dns", "spamhaus_zen", "spamhaus_dbl", "surbl_multi"],
                # Measure the fan-out, not our own budgets: no rate limits, no
                # quotas, and no breaker opening on the servers' 404 responses.
                source_rate_limits=dict.fromkeys(VENDORS),
                source_daily_quotas=dict.fromkeys(VENDORS),
                breaker_failure_threshold=1_000_000,
                **KEYS,  # type: ignore[arg-type]
            )
            rows = asyncio.run(measure(settings, delay))
    finally:
        for server in servers.values():
            server.stop()
    report = render(rows)
    print(report)
    if args.write:
        with args.write.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report)


def render(rows: list[dict[str, object]]) -> str:
    lines = [
        "## Fan-out to slow vendors",
        "",
        "`python bench/bench_fanout.py` on this machine "
        f"({platform.machine()}, 2 cores, Python {platform.python_version()}). "
        "Each HTTP vendor adapter talks to its own loopback server that answers "
        "after a fixed delay between 50 and 400 ms; median of "
        f"{ROUNDS} enrichments with `refresh=True`.",
        "",
        "| observable | vendors asked | slowest delay | sum of delays | wall time "
        "| wall / slowest | wall / sum |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        wall = float(row["wall_ms"])  # type: ignore[arg-type]
        slowest = float(row["slowest_ms"])  # type: ignore[arg-type]
        total = float(row["sum_ms"])  # type: ignore[arg-type]
        lines.append(
            f"| {row['observable']} | {row['vendors']} | {slowest:.0f} ms | "
            f"{total:.0f} ms | {wall:.0f} ms | {wall / slowest:.2f} "
            f"| {wall / total:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
