"""The feed store: one SQLite file (WAL) holding every imported feed.

Table ``feeds`` has one row per stored feed, and table ``entries`` one row per
listed value, keyed by canonical text and indexed on ``(feed, key)``. Exact
kinds match by key. Networks match by containment through a per-prefix-length
probe (:mod:`iocscope.feeds.ranges`). ``docs/feeds.md`` explains why the probe
was chosen over an in-memory radix tree.

Lookups run synchronously on the caller's thread. They are index probes that
take tens to hundreds of microseconds, so async sources call them inline.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from iocscope.feeds import ranges
from iocscope.feeds.records import EntryKind, FeedEntry, ParseReport

SCHEMA_VERSION = 1
_INSERT_BATCH = 10_000
_MMAP_BYTES = 256 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    format TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    entry_count INTEGER NOT NULL,
    bad_lines INTEGER NOT NULL,
    kind_counts TEXT NOT NULL,
    prefix_lengths TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    feed TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    context TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_key ON entries (feed, key);
"""


@dataclass(frozen=True)
class FeedInfo:
    """One stored feed, as listed in table ``feeds``."""

    name: str
    format: str
    source: str
    imported_at: datetime
    entry_count: int
    bad_lines: int
    kind_counts: dict[str, int] = field(default_factory=dict)
    # Prefix lengths of the networks held, by IP version (4 or 6).
    prefix_lengths: dict[int, tuple[int, ...]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """A stored entry that matched a lookup.

    ``via`` is how it matched: ``exact`` (same key), ``range`` (a listed network
    contains the query), ``host`` (the host of a queried URL), ``suffix`` (a
    listed hostname covers the queried domain) or ``substring``.
    """

    feed: str
    kind: EntryKind
    key: str
    context: dict[str, Any]
    via: str = "exact"

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "kind": self.kind.value,
            "key": self.key,
            "via": self.via,
            "context": self.context,
        }


class FeedStore:
    """Imported feeds in one SQLite file, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Lookups are random index probes: memory-mapped reads skip a read()
        # call per page. This reserves address space, not memory.
        self._db.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._feeds: dict[str, FeedInfo] | None = None
        self._data_version = -1

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing --------------------------------------------------------------

    def replace_feed(
        self,
        name: str,
        *,
        format: str,
        source: str,
        entries: Iterable[FeedEntry],
        reports: Sequence[ParseReport] = (),
    ) -> FeedInfo:
        """Replace every entry of feed ``name`` in one transaction.

        ``entries`` may be a lazy parser. The bad-line counts and metadata of
        ``reports`` are read after it is consumed, so they may be the reports
        that the parser fills. Readers see the old entries until the commit.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM entries WHERE feed = ?", (name,))
                kinds, lengths = self._insert(name, entries)
                info = FeedInfo(
                    name=name,
                    format=format,
                    source=source,
                    imported_at=datetime.now(UTC).replace(microsecond=0),
                    entry_count=sum(kinds.values()),
                    bad_lines=sum(report.bad_count for report in reports),
                    kind_counts=dict(kinds),
                    prefix_lengths=lengths,
                    meta=_merged_meta(reports),
                )
                self._write_feed_row(info)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._feeds = None
        return info

    def delete_feed(self, name: str) -> bool:
        """Delete a feed and its entries, returning False if it was not stored."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM entries WHERE feed = ?", (name,))
                cursor = self._db.execute("DELETE FROM feeds WHERE name = ?", (name,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._feeds = None
        return cursor.rowcount > 0

    def _insert(
        self, name: str, entries: Iterable[FeedEntry]
    ) -> tuple[Counter[str], dict[int, tuple[int, ...]]]:
        kinds: Counter[str] = Counter()
        lengths: dict[int, set[int]] = {4: set(), 6: set()}
        batch: list[tuple[str, str, str, str]] = []
        for entry in entries:
            kinds[entry.kind.value] += 1
            if entry.kind is EntryKind.CIDR:
                version, length = ranges.network_version_and_length(entry.key)
                lengths[version].add(length)
            context = json.dumps(entry.context) if entry.context else "{}"
            batch.append((name, entry.kind.value, entry.key, context))
            if len(batch) >= _INSERT_BATCH:
                self._db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", batch)
                batch.clear()
        self._db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", batch)
        held = {version: tuple(sorted(found)) for version, found in lengths.items()}
        return kinds, {version: found for version, found in held.items() if found}

    def _write_feed_row(self, info: FeedInfo) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.name,
                info.format,
                info.source,
                info.imported_at.isoformat(),
                info.entry_count,
                info.bad_lines,
                json.dumps(info.kind_counts),
                json.dumps(info.prefix_lengths),
                json.dumps(info.meta, default=str),
            ),
        )

    # -- feed metadata --------------------------------------------------------

    def feeds(self) -> list[FeedInfo]:
        """Return every stored feed, sorted by name."""
        return sorted(self._feed_table().values(), key=lambda info: info.name)

    def feed(self, name: str) -> FeedInfo | None:
        return self._feed_table().get(name)

    def feed_family(self, base: str, separator: str = ":") -> list[FeedInfo]:
        """Return the stored feeds named ``base`` or ``base<separator>part``."""
        prefix = base + separator
        return [
            info
            for name, info in sorted(self._feed_table().items())
            if name == base or name.startswith(prefix)
        ]

    def _feed_table(self) -> dict[str, FeedInfo]:
        """Return the cached feeds table, reloaded when another connection
        has committed since (``PRAGMA data_version`` changes then)."""
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if self._feeds is None or version != self._data_version:
                rows = self._db.execute("SELECT * FROM feeds").fetchall()
                self._feeds = {row[0]: _feed_info(row) for row in rows}
                self._data_version = version
            return self._feeds

    # -- lookups --------------------------------------------------------------

    def match_keys(
        self,
        feeds: Sequence[str],
        kinds: Collection[EntryKind],
        keys: Sequence[str],
        via: str = "exact",
    ) -> list[Match]:
        """Return the entries of ``feeds`` whose kind is in ``kinds`` and whose
        key is one of ``keys``."""
        if not feeds or not keys:
            return []
        wanted = {kind.value for kind in kinds}
        return [
            Match(feed, EntryKind(kind), key, _context(context), via)
            for feed, kind, key, context in self._select(feeds, keys)
            if kind in wanted
        ]

    def match_address(
        self, feeds: Sequence[str], address: ranges.IPAddress
    ) -> list[Match]:
        """Return listed addresses equal to ``address`` and listed networks
        that contain it."""
        found = self.match_keys(feeds, (EntryKind.IP,), [str(address)])
        range_feeds, lengths = self._prefix_lengths(feeds, address.version)
        probes = ranges.containing_keys(address, lengths)
        kinds = (EntryKind.CIDR,)
        return found + self.match_keys(range_feeds, kinds, probes, via="range")

    def match_network(
        self, feeds: Sequence[str], network: ranges.IPNetwork
    ) -> list[Match]:
        """Return listed networks that contain ``network`` or equal it."""
        range_feeds, lengths = self._prefix_lengths(feeds, network.version)
        probes = ranges.network_containing_keys(network, lengths)
        kinds = (EntryKind.CIDR,)
        return self.match_keys(range_feeds, kinds, probes, via="range")

    def match_substrings(self, feeds: Sequence[str], text: str) -> list[Match]:
        """Return ``substring`` entries of ``feeds`` that occur in ``text``."""
        if not feeds:
            return []
        marks = ", ".join("?" * len(feeds))
        query = (
            "SELECT feed, kind, key, context FROM entries "  # noqa: S608 (placeholders only)
            f"WHERE feed IN ({marks}) AND kind = 'substring' AND instr(?, key) > 0"
        )
        with self._lock:
            rows = self._db.execute(query, (*feeds, text)).fetchall()
        return [
            Match(feed, EntryKind(kind), key, json.loads(context), "substring")
            for feed, kind, key, context in rows
        ]

    def _prefix_lengths(
        self, feeds: Sequence[str], version: int
    ) -> tuple[list[str], set[int]]:
        """Return the feeds that list networks of IP ``version``, and the
        union of their prefix lengths. Feeds without such networks get no
        probes."""
        table = self._feed_table()
        holding: list[str] = []
        lengths: set[int] = set()
        for name in feeds:
            info = table.get(name)
            held = info.prefix_lengths.get(version, ()) if info else ()
            if held:
                holding.append(name)
                lengths.update(held)
        return holding, lengths

    def _select(
        self, feeds: Sequence[str], keys: Sequence[str]
    ) -> Iterator[tuple[str, str, str, str]]:
        feed_marks = ", ".join("?" * len(feeds))
        key_marks = ", ".join("?" * len(keys))
        query = (
            "SELECT feed, kind, key, context FROM entries "  # noqa: S608 (placeholders only)
            f"WHERE feed IN ({feed_marks}) AND key IN ({key_marks})"
        )
        with self._lock:
            rows = self._db.execute(query, (*feeds, *keys)).fetchall()
        yield from rows


def _context(text: str) -> dict[str, Any]:
    return {} if text == "{}" else dict(json.loads(text))


def _merged_meta(reports: Sequence[ParseReport]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for report in reports:
        meta.update(report.meta)
    return meta


def _feed_info(row: tuple[Any, ...]) -> FeedInfo:
    name, fmt, source, imported_at, count, bad, kinds, lengths, meta = row
    return FeedInfo(
        name=name,
        format=fmt,
        source=source,
        imported_at=datetime.fromisoformat(imported_at),
        entry_count=count,
        bad_lines=bad,
        kind_counts=json.loads(kinds),
        prefix_lengths={
            int(v): tuple(found) for v, found in json.loads(lengths).items()
        },
        meta=json.loads(meta),
    )
