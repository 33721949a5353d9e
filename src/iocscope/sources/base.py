"""Source contract: a spec declared as data, and one async lookup.

Built-in sources and third-party ones register the same way: an entry point in the
``iocscope.sources`` group names a loader, a callable that takes a
:class:`SourceContext` and returns the sources it provides (a feed loader returns one
source per feed). A lookup returns a :class:`SourceResult` with status ``ok`` or
``not_found``, and raises a :class:`~iocscope.errors.SourceFailure` for anything
else. The engine turns failures, timeouts and skips into statuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import structlog

from iocscope.models import Observable, ObservableType, SourceResult
from iocscope.tlp import TLP

if TYPE_CHECKING:
    import httpx

    from iocscope.config import Settings
    from iocscope.feeds.store import FeedStore

ENTRY_POINT_GROUP = "iocscope.sources"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SourceSpec:
    """Everything the engine needs to know about a source, declared once."""

    name: str
    types: frozenset[ObservableType]
    description: str
    # False for sources that read only local data and never open a connection.
    network: bool = False
    # Settings field holding the API key, for sources that need one.
    key_setting: str | None = None
    # Highest TLP an observable may carry and still be sent to this source.
    # Unset means amber for a network source and red for a local one; read it
    # through ``tlp_limit``.
    max_tlp: TLP | None = None
    # Seconds the engine waits for one lookup before reporting ``timeout``.
    timeout_s: float = 10.0
    # Requests allowed per window, in the ``limits`` library's notation ("4/minute").
    rate_limit: str | None = None
    # Requests allowed per UTC day, or None for no quota.
    daily_quota: int | None = None
    # Seconds a hit and a miss stay cached; 0 disables caching for that kind.
    cache_ttl_hit_s: int = 0
    cache_ttl_miss_s: int = 0
    # How much one flag from this source moves the score, relative to 1.0.
    weight: float = 1.0
    # What using it costs, for `iocscope sources` and the README.
    cost: str = "free"
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tlp_limit(self) -> TLP:
        if self.max_tlp is not None:
            return self.max_tlp
        return TLP.AMBER if self.network else TLP.RED

    @property
    def needs_key(self) -> bool:
        return self.key_setting is not None


@runtime_checkable
class Source(Protocol):
    spec: SourceSpec

    async def lookup(self, observable: Observable) -> SourceResult: ...


@dataclass
class SourceContext:
    """Settings and shared resources handed to every loader."""

    settings: Settings
    store: FeedStore
    http: httpx.AsyncClient | None = None


SourceLoader = Callable[[SourceContext], Iterable[Source]]


def load_sources(
    context: SourceContext, *, only: Iterable[str] | None = None
) -> list[Source]:
    """Load every source registered in the entry-point group.

    A loader that fails to import or raises is logged and left out, so one broken
    plugin never takes the others down. ``only`` keeps the sources with those names.
    """
    wanted = set(only) if only is not None else None
    sources: list[Source] = []
    seen: set[str] = set()
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            loader: SourceLoader = entry.load()
            provided = list(loader(context))
        except Exception as exc:  # a broken plugin must not stop the others
            log.error("source.load.failed", entry_point=entry.name, error=str(exc))
            continue
        for source in provided:
            name = source.spec.name
            if name in seen:
                log.error("source.load.duplicate", source=name, entry_point=entry.name)
                continue
            if wanted is not None and name not in wanted:
                continue
            seen.add(name)
            sources.append(source)
    return sources
