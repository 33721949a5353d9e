"""Fixtures that start the service over SQLite, or PostgreSQL with Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.api.service import (
    PG_ADMIN_DSN,
    REDIS_URL,
    RunningService,
    ServiceSettings,
    build_settings,
    run_server,
)

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis]),
]

StartService = Callable[..., RunningService]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_service(backend: str, tmp_path: Path) -> Iterator[StartService]:
    """Return a function that starts a service with the given setting overrides."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> RunningService:
            if backend == "postgres":
                overrides["database_url"] = stack.enter_context(_postgres_db())
            data_dir = tmp_path / uuid.uuid4().hex[:8]
            settings = build_settings(backend, data_dir, **overrides)
            if backend == "postgres":
                stack.callback(_clear_redis, settings.redis_key_prefix)
            return stack.enter_context(run_server(settings))

        yield start


@pytest.fixture
def database_settings(backend: str, tmp_path: Path) -> Iterator[ServiceSettings]:
    """Settings for an empty database on the backend, with no server running."""
    with ExitStack() as stack:
        overrides: dict[str, Any] = {}
        if backend == "postgres":
            overrides["database_url"] = stack.enter_context(_postgres_db())
        yield build_settings(backend, tmp_path / "data", **overrides)


@pytest.fixture
def service(start_service: StartService) -> RunningService:
    """A service on the default plans."""
    return start_service()


class _postgres_db:
    """Create a throwaway database on the local PostgreSQL and drop it after."""

    def __init__(self) -> None:
        self.name = f"iocscope_test_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.name}"

    def __exit__(self, *exc_info: object) -> None:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _clear_redis(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
