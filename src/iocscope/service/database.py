"""The service database: engine creation, SQLite tuning and Alembic upgrades.

SQLite (WAL mode, in ``<data_dir>/iocscope.sqlite3``) is the embedded default;
``settings.database_url`` selects PostgreSQL (``postgresql+asyncpg://...``) or
another SQLite file. Plain ``postgresql://`` URLs are switched to asyncpg.
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
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


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("iocscope") / "migrations"))
    return config


def _upgrade(connection: Connection) -> None:
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_database(engine: AsyncEngine) -> None:
    """Apply every pending Alembic migration to the engine's database."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def upgrade_database_sync(settings: Settings) -> None:
    """Upgrade the database named by ``settings``; for the CLI."""

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
