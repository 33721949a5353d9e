"""A real iocscope service on 127.0.0.1 for tests, with sources defined here.

The server is uvicorn in a thread, serving ``create_app`` with an engine built
from :class:`RecordingSource` instances, which count their calls per observable
and never open a connection.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import Field, SecretStr

from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.errors import SourceFailure
from iocscope.models import (
    ALL_TYPES,
    Observable,
    ObservableType,
    SourceResult,
    Status,
    Verdict,
)
from iocscope.service.database import create_engine, session_factory, upgrade_database
from iocscope.service.keys import create_key
from iocscope.sources.base import SourceSpec
from iocscope.tlp import TLP

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/14"

# Values the local test source reports as malicious.
BAD_VALUES = frozenset({"198.51.100.66", "evil.example", "http://evil.example/x"})
# Any observable whose value contains this makes every test source fail.
FAILING_MARK = "failing"


class ServiceSettings(Settings):
    """Settings with the service fields that config.Settings does not declare."""

    service_plans: dict[str, dict[str, int]] = Field(default_factory=dict)
    service_credit_costs: dict[str, int] = Field(default_factory=dict)
    service_bulk_concurrency: int = 4
    redis_key_prefix: str = "iocscope"
    metrics_token: SecretStr | None = None
    webhook_timeout_s: float = 2.0
    webhook_max_attempts: int = 3
    service_embedded_worker: bool = True


class RecordingSource:
    """A test source that counts calls per canonical value.

    ``padding_chars`` adds a string of that length to each result's ``data``, so
    reports can be made as large as those of real vendors.
    """

    def __init__(
        self,
        name: str,
        *,
        network: bool,
        max_tlp: TLP = TLP.RED,
        cache_s: int = 300,
        padding_chars: int = 0,
    ) -> None:
        self.spec = SourceSpec(
            name=name,
            types=frozenset(ALL_TYPES),
            description=f"test source {name}",
            network=network,
            max_tlp=max_tlp,
            cache_ttl_hit_s=cache_s,
            cache_ttl_miss_s=cache_s,
        )
        self.calls: Counter[str] = Counter()
        self.seen_types: Counter[ObservableType] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.padding_chars = padding_chars

    async def lookup(self, observable: Observable) -> SourceResult:
        self.calls[observable.value] += 1
        self.seen_types[observable.type] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.002)
        finally:
            self.in_flight -= 1
        if FAILING_MARK in observable.value:
            raise SourceFailure("test source failure")
        data = {"padding": "x" * self.padding_chars} if self.padding_chars else {}
        if observable.value in BAD_VALUES:
            return SourceResult(
                status=Status.OK, verdict=Verdict.MALICIOUS, score=100, data=data
            )
        return SourceResult.not_found(**data)


@dataclass
class RunningService:
    url: str
    settings: ServiceSettings
    local: RecordingSource
    remote: RecordingSource
    extra: dict[str, Any] = field(default_factory=dict)

    def create_key(self, tenant: str, plan: str = "free") -> str:
        return asyncio.run(_create_key(self.settings, tenant, plan))[1]

    @property
    def total_calls(self) -> int:
        return sum(self.local.calls.values()) + sum(self.remote.calls.values())


async def _create_key(
    settings: Settings, tenant: str, plan: str
) -> tuple[int, str, str]:
    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        return await create_key(session_factory(engine), tenant, plan)
    finally:
        await engine.dispose()


def build_settings(backend: str, data_dir: Path, **overrides: Any) -> ServiceSettings:
    fields: dict[str, Any] = {"data_dir": data_dir, "overall_timeout_s": 10.0}
    if backend == "postgres":
        fields["database_url"] = overrides.pop("database_url")
        fields["redis_url"] = REDIS_URL
        fields["redis_key_prefix"] = f"iocscope-test-{uuid.uuid4().hex[:12]}"
    fields.update(overrides)
    return ServiceSettings(**fields)


def build_engine(
    settings: Settings, *, padding_chars: int = 0
) -> tuple[Engine, RecordingSource, RecordingSource]:
    """Build an engine on two recording sources.

    With ``padding_chars`` the sources pad their results and are not cached, so
    that the engine's in-memory cache does not grow with the observables seen.
    """
    cache_s = 0 if padding_chars else 300
    local = RecordingSource(
        "local_intel", network=False, cache_s=cache_s, padding_chars=padding_chars
    )
    remote = RecordingSource(
        "remote_intel",
        network=True,
        max_tlp=TLP.AMBER,
        cache_s=cache_s,
        padding_chars=padding_chars,
    )
    return Engine([local, remote], settings), local, remote


@contextmanager
def run_server(
    settings: ServiceSettings, *, log_level: str = "warning", padding_chars: int = 0
) -> Iterator[RunningService]:
    """Serve the app on a free loopback port until the block ends."""
    from iocscope.api import create_app

    engine, local, remote = build_engine(settings, padding_chars=padding_chars)
    app = create_app(settings, engine=engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level=log_level, log_config=None, lifespan="on", limit_concurrency=1000
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    _wait_started(server, thread)
    try:
        yield RunningService(
            f"http://127.0.0.1:{port}", settings, local, remote, extra={"app": app}
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server exited during startup")
        if time.monotonic() > deadline:
            raise TimeoutError("the test server did not start within 30 s")
        time.sleep(0.02)
