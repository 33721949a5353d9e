"""Governor state in one SQLite file, shared by every process on the same data folder.

Without ``redis_url`` the CLI runs, ``serve`` and workers on one machine still need one
budget per source, so the rate-limit windows, daily-quota counters, 429 backoff and
breaker state live in ``<data_dir>/governor.sqlite3``. The file runs in WAL mode with a
busy timeout, and every update runs in one ``BEGIN IMMEDIATE`` transaction, so a check
and the write that depends on it are atomic across processes.

The sqlite3 calls are quick local file operations, so the async methods run them
directly on the event loop. No method awaits while a transaction is open.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from limits.aio.storage import MovingWindowSupport, Storage

from iocscope.governor import GovernorState

# How long a write waits for another process's transaction before it fails.
BUSY_TIMEOUT_MS = 5_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS limit_counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS limit_counters_expiry ON limit_counters (expires_at);
CREATE TABLE IF NOT EXISTS limit_entries (
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS limit_entries_key_at ON limit_entries (key, at);
CREATE TABLE IF NOT EXISTS governor_state (
    source TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    opened_at REAL,
    backoff_until REAL,
    last_error TEXT,
    last_error_at REAL,
    probe_until REAL
);
"""


class GovernorDatabase:
    """One connection to the governor's SQLite file, opened on first use.

    Opening lazily means that building a governor never touches the disk, so a
    run that calls no network source never creates the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        # The service may call the governor from more than one thread, so a lock
        # keeps each transaction on the shared connection whole.
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                # Raised as a sqlite3 error so the governor reports it like any
                # other failure of its store.
                raise sqlite3.OperationalError(
                    f"failed to create the governor folder {self.path.parent}: {exc}; "
                    "check the data_dir setting"
                ) from exc
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.executescript(_SCHEMA)
            except sqlite3.Error:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Yield the connection for single-statement reads, outside a transaction."""
        with self._lock:
            yield self._connect()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction, else roll back."""
        with self._lock:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class SQLiteStorage(Storage, MovingWindowSupport):
    """A ``limits`` async storage in SQLite, for the fixed and moving window strategies.

    Times come from ``time.time()``, as in the ``limits`` strategies themselves.
    """

    # Not registered under a URI scheme: the governor builds it directly.
    STORAGE_SCHEME = None

    def __init__(self, database: GovernorDatabase, wrap_exceptions: bool = True):
        super().__init__(wrap_exceptions=wrap_exceptions)
        self._db = database

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._db.transaction() as connection:
            connection.execute(
                "DELETE FROM limit_counters WHERE expires_at <= ?", (now,)
            )
            rows = connection.execute(
                "INSERT INTO limit_counters (key, count, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET count = count + excluded.count "
                "RETURNING count",
                (key, amount, now + expiry),
            ).fetchall()
        return int(rows[0][0])

    async def get(self, key: str) -> int:
        with self._db.read() as connection:
            row = connection.execute(
                "SELECT count FROM limit_counters WHERE key = ? AND expires_at > ?",
                (key, time.time()),
            ).fetchone()
        return int(row[0]) if row else 0

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._db.read() as connection:
            row = connection.execute(
                "SELECT expires_at FROM limit_counters "
                "WHERE key = ? AND expires_at > ?",
                (key, now),
            ).fetchone()
        return float(row[0]) if row else now

    async def check(self) -> bool:
        with self._db.read() as connection:
            connection.execute("SELECT 1").fetchone()
        return True

    async def reset(self) -> int | None:
        with self._db.transaction() as connection:
            counters = connection.execute("DELETE FROM limit_counters").rowcount
            entries = connection.execute(
                "SELECT COUNT(DISTINCT key) FROM limit_entries"
            ).fetchone()[0]
            connection.execute("DELETE FROM limit_entries")
        return max(counters, int(entries))

    async def clear(self, key: str) -> None:
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM limit_counters WHERE key = ?", (key,))
            connection.execute("DELETE FROM limit_entries WHERE key = ?", (key,))

    async def acquire_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        start = now - expiry
        with self._db.transaction() as connection:
            # A key always belongs to one limit item, so its expiry never changes
            # and entries older than the window can go.
            connection.execute(
                "DELETE FROM limit_entries WHERE key = ? AND at < ?", (key, start)
            )
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM limit_entries WHERE key = ?", (key,)
            ).fetchone()
            if count + amount > limit:
                return False
            connection.executemany(
                "INSERT INTO limit_entries (key, at) VALUES (?, ?)",
                [(key, now)] * amount,
            )
        return True

    async def get_moving_window(
        self, key: str, limit: int, expiry: int
    ) -> tuple[float, int]:
        now = time.time()
        with self._db.read() as connection:
            oldest, count = connection.execute(
                "SELECT MIN(at), COUNT(*) FROM limit_entries WHERE key = ? AND at >= ?",
                (key, now - expiry),
            ).fetchone()
        if not count:
            return now, 0
        return float(oldest), int(count)


class SQLiteStateStore:
    """Governor state in SQLite: one row per source, with the probe lease in it.

    Unlike the Redis store, the probe lease expires by the governor's clock.
    """

    def __init__(self, database: GovernorDatabase) -> None:
        self._db = database

    async def load(self, name: str) -> GovernorState:
        with self._db.read() as connection:
            return _load(connection, name)

    async def add_failure(self, name: str, at: float, error: str) -> GovernorState:
        with self._db.transaction() as connection:
            connection.execute(
                "INSERT INTO governor_state (source, failures, last_error, "
                "last_error_at) VALUES (?, 1, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                "failures = failures + 1, last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at",
                (name, error, at),
            )
            return _load(connection, name)

    async def note_error(self, name: str, at: float, error: str) -> None:
        with self._db.transaction() as connection:
            _ensure_row(connection, name)
            connection.execute(
                "UPDATE governor_state SET last_error = ?, last_error_at = ? "
                "WHERE source = ?",
                (error, at, name),
            )

    async def set_backoff(self, name: str, until: float) -> None:
        with self._db.transaction() as connection:
            _ensure_row(connection, name)
            connection.execute(
                "UPDATE governor_state SET backoff_until = ? WHERE source = ?",
                (until, name),
            )

    async def open_breaker(self, name: str, at: float) -> None:
        with self._db.transaction() as connection:
            _ensure_row(connection, name)
            connection.execute(
                "UPDATE governor_state SET opened_at = ?, probe_until = NULL "
                "WHERE source = ?",
                (at, name),
            )

    async def close_breaker(self, name: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE governor_state SET failures = 0, opened_at = NULL, "
                "probe_until = NULL WHERE source = ?",
                (name,),
            )

    async def claim_probe(self, name: str, at: float, lease_s: float) -> bool:
        with self._db.transaction() as connection:
            _ensure_row(connection, name)
            cursor = connection.execute(
                "UPDATE governor_state SET probe_until = ? WHERE source = ? "
                "AND (probe_until IS NULL OR probe_until <= ?)",
                (at + lease_s, name, at),
            )
            return cursor.rowcount == 1

    async def release_probe(self, name: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE governor_state SET probe_until = NULL WHERE source = ?",
                (name,),
            )

    async def aclose(self) -> None:
        self._db.close()


def _ensure_row(connection: sqlite3.Connection, name: str) -> None:
    connection.execute(
        "INSERT OR IGNORE INTO governor_state (source) VALUES (?)", (name,)
    )


def _load(connection: sqlite3.Connection, name: str) -> GovernorState:
    row = connection.execute(
        "SELECT failures, opened_at, backoff_until, last_error, last_error_at "
        "FROM governor_state WHERE source = ?",
        (name,),
    ).fetchone()
    if row is None:
        return GovernorState()
    failures, opened_at, backoff_until, last_error, last_error_at = row
    return GovernorState(
        failures=int(failures),
        opened_at=opened_at,
        backoff_until=backoff_until,
        last_error=last_error,
        last_error_at=last_error_at,
    )
