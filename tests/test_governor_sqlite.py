"""Governor budgets in the SQLite file of the data folder, shared across processes."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from iocscope.config import Settings
from iocscope.errors import ConfigError
from iocscope.governor import UpstreamGovernor, governor_db_path
from iocscope.models import ObservableType, SourceResult, Status
from iocscope.sources.base import SourceSpec
from iocscope.sources.vendors.virustotal import SPEC as VIRUSTOTAL

SPEC = SourceSpec(
    name="vendor",
    types=frozenset({ObservableType.IP}),
    description="a network source under test",
    network=True,
)
ERROR = SourceResult(status=Status.ERROR, reason="upstream returned 500")
RATE_LIMITED = SourceResult(
    status=Status.RATE_LIMITED,
    reason="upstream rate limit reached (HTTP 429)",
    retry_after_s=60,
)

# Tries to admit argv[3] calls against a daily quota of argv[2] in the data folder
# argv[1], then prints how many it admitted. Each run is a separate process.
ADMIT_SCRIPT = """
import asyncio, sys
from dataclasses import replace
from pathlib import Path
from iocscope.config import Settings
from iocscope.governor import UpstreamGovernor
from iocscope.models import ObservableType
from iocscope.sources.base import SourceSpec

async def main() -> None:
    spec = SourceSpec(
        name="vendor",
        types=frozenset({ObservableType.IP}),
        description="a network source under test",
        network=True,
        daily_quota=int(sys.argv[2]),
    )
    governor = UpstreamGovernor.from_settings(Settings(data_dir=Path(sys.argv[1])))
    admitted = 0
    for _ in range(int(sys.argv[3])):
        if await governor.admit(spec) is None:
            admitted += 1
    await governor.aclose()
    print(admitted)

asyncio.run(main())
"""


class Clock:
    """A wall clock that tests move by hand."""

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StoreSettings(Settings):
    """Settings with the ``governor_store`` field the governor reads when present."""

    governor_store: str = "auto"


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[UpstreamGovernor, ...]]:
    """Yield two governors on the same data folder, as two processes would build."""
    settings = Settings(data_dir=tmp_path / "data")
    first = UpstreamGovernor.from_settings(settings)
    second = UpstreamGovernor.from_settings(settings)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_sqlite_rate_limit_shared(pair: tuple[UpstreamGovernor, ...]) -> None:
    first, second = pair
    spec = replace(SPEC, rate_limit="3/minute")
    assert await first.admit(spec) is None
    assert await second.admit(spec) is None
    assert await first.admit(spec) is None
    refusal = await second.admit(spec)
    assert refusal is not None
    assert refusal.status is Status.RATE_LIMITED
    assert refusal.retry_after_s is not None
    assert 55 < refusal.retry_after_s <= 60
    assert await first.admit(spec) is not None


async def test_sqlite_quota_shared(pair: tuple[UpstreamGovernor, ...]) -> None:
    first, second = pair
    spec = replace(SPEC, daily_quota=2)
    assert await first.admit(spec) is None
    assert await second.admit(spec) is None
    refusal = await first.admit(spec)
    assert refusal is not None
    assert refusal.reason == "quota"
    assert (await second.health(spec)).quota_left == 0


async def test_sqlite_backoff_shared(pair: tuple[UpstreamGovernor, ...]) -> None:
    first, second = pair
    assert await first.admit(SPEC) is None
    await first.record(SPEC, RATE_LIMITED)
    refusal = await second.admit(SPEC)
    assert refusal is not None
    assert refusal.status is Status.RATE_LIMITED
    health = await second.health(SPEC)
    assert health.backoff_until is not None
    assert health.last_error == "upstream rate limit reached (HTTP 429)"


async def test_sqlite_breaker_shared(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = UpstreamGovernor.from_settings(settings)
    second = UpstreamGovernor.from_settings(settings)
    first.failure_threshold = second.failure_threshold = 2
    try:
        await first.record(SPEC, ERROR)
        await second.record(SPEC, ERROR)
        health = await first.health(SPEC)
        assert health.breaker == "open"
        assert health.consecutive_failures == 2
        assert health.last_error == "upstream returned 500"
        refusal = await first.admit(SPEC)
        assert refusal is not None
        assert refusal.reason == "circuit open"
    finally:
        await first.aclose()
        await second.aclose()


async def test_sqlite_probe_claimed_once(tmp_path: Path) -> None:
    clock = Clock()
    settings = Settings(data_dir=tmp_path)
    first = UpstreamGovernor.from_settings(settings, clock=clock)
    second = UpstreamGovernor.from_settings(settings, clock=clock)
    for governor in (first, second):
        governor.failure_threshold, governor.cooldown_s = 1, 30.0
    try:
        await first.record(SPEC, ERROR)
        clock.now += 31
        assert (await second.health(SPEC)).breaker == "half-open"
        assert await first.admit(SPEC) is None
        waiting = await second.admit(SPEC)
        assert waiting is not None
        assert waiting.summary == "half-open: one probe call is under way"
        assert await first.admit(SPEC) is not None

        # The probe lease lapses after cooldown_s when no outcome is recorded.
        clock.now += 31
        assert await second.admit(SPEC) is None
        await second.record(SPEC, SourceResult(status=Status.OK))
        assert (await first.health(SPEC)).breaker == "closed"
        assert await first.admit(SPEC) is None
        assert await second.admit(SPEC) is None
    finally:
        await first.aclose()
        await second.aclose()


def test_sqlite_quota_shared_across_processes(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    command = [sys.executable, "-c", ADMIT_SCRIPT, data_dir, "7", "5"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    admitted = []
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0
        admitted.append(int(out))
    assert sum(admitted) == 7


async def spend_virustotal(data_dir: Path, calls: int) -> None:
    governor = UpstreamGovernor.from_settings(Settings(data_dir=data_dir))
    try:
        for _ in range(calls):
            assert await governor.admit(VIRUSTOTAL) is None
    finally:
        await governor.aclose()


def test_sources_cli_shows_shared_quota(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(spend_virustotal(data_dir, 3))

    env = {
        **os.environ,
        "IOCSCOPE_DATA_DIR": str(data_dir),
        "IOCSCOPE_OFFLINE": "true",
    }
    code = "from iocscope.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "sources", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["virustotal"]["health"]["quota_left"] == 497


async def test_sqlite_file_setup(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "missing" / "data")
    governor = UpstreamGovernor.from_settings(settings)
    path = governor_db_path(settings)
    assert not path.exists()
    try:
        assert await governor.admit(replace(SPEC, daily_quota=5)) is None
    finally:
        await governor.aclose()
    assert path.exists()
    with sqlite3.connect(path) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_unwritable_folder_is_error_result(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    governor = UpstreamGovernor.from_settings(Settings(data_dir=blocker / "data"))
    try:
        refusal = await governor.admit(SPEC)
        assert refusal is not None
        assert refusal.status is Status.ERROR
        assert refusal.reason is not None
        assert refusal.reason.startswith("rate-limit store unavailable")
        await governor.record(SPEC, ERROR)
    finally:
        await governor.aclose()


async def test_memory_store_setting(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path, governor_store="memory")
    first = UpstreamGovernor.from_settings(settings)
    second = UpstreamGovernor.from_settings(settings)
    spec = replace(SPEC, daily_quota=1)
    assert await first.admit(spec) is None
    assert await second.admit(spec) is None
    assert not governor_db_path(settings).exists()


def test_invalid_store_setting(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path, governor_store="disk")
    with pytest.raises(ConfigError, match="governor_store 'disk'"):
        UpstreamGovernor.from_settings(settings)
