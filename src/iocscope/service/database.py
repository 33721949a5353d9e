"""The service database: engine creation, SQLite tuning and Alembic upgrades.

SQLite (WAL mode, in ``<data_dir>/iocscope.sqlite3``) is the embedded default;
``settings.database_url`` selects PostgreSQL (``postgresql+asyncpg://...``) or
another SQLite file. Plain ``postgresql://`` URLs are switched to asyncpg.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from iocscope.config import Settings

# Milliseconds SQLite waits for another writer before raising "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(settings: Settings) -> str:
    """Return the async SQLAlchemy URL the service uses."""
    url = settings.database_url
    if not url:
        path = Path(settings.data_dir) / "iocscope.sqlite3"
        return f"sqlite+aiosqlite:///{path}"
    for plain in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine; for SQLite, make the folder and enable WAL."""
    url = database_url(settings)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _sqlite_engine(url: str) -> AsyncEngine:
    path = url.split(":///", 1)[1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class UpgradeResult:
    """The Alembic revisions of a database before and after an upgrade."""

    # None when the database had no service tables yet.
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        """Return a one-line account of the upgrade for the CLI and logs."""
        if not self.changed:
            return f"database already at revision {self.after}; nothing to upgrade"
        if self.before is None:
            return f"database schema created at revision {self.after}"
        return f"database upgraded from revision {self.before} to {self.after}"


def alembic_config(connection: Connection) -> Config:
    """Return an Alembic config that runs the service migrations on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(files("iocscope") / "migrations"))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """Return the database's Alembic revision, or None before the first migration."""
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> UpgradeResult:
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), revision)
    return UpgradeResult(before=before, after=current_revision(connection))


async def upgrade_database(
    engine: AsyncEngine, revision: str = "head"
) -> UpgradeResult:
    """Apply the pending Alembic migrations up to ``revision``, in one transaction."""
    async with engine.begin() as connection:
        return await connection.run_sync(_upgrade, revision)


def upgrade_database_sync(settings: Settings) -> UpgradeResult:
    """Upgrade the database named by ``settings`` to the latest revision."""

    async def run() -> UpgradeResult:
        engine = create_engine(settings)
        try:
            return await upgrade_database(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())
