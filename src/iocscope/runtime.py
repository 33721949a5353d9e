"""Assemble a ready engine from settings: store, HTTP client, sources, cache, governor.

With ``redis_url`` set, the result cache and the upstream governor's budgets live in
Redis, where every worker shares them. Without it, the cache stays in this process and
the budgets live in ``<data_dir>/governor.sqlite3``, shared by every process on this
machine that uses the same data folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import httpx

from iocscope.cache import RedisCache
from iocscope.config import Settings
from iocscope.engine import Engine
from iocscope.feeds.store import FeedStore
from iocscope.governor import UpstreamGovernor
from iocscope.sources.base import SourceContext, load_sources

USER_AGENT = "iocscope/0.1 (+self-hosted IOC enrichment)"


def http_client() -> httpx.AsyncClient:
    """Create the HTTP client the network sources share.

    Timeouts are set per request by each adapter; the client-wide one is a backstop.
    Redirects are not followed: a vendor API that redirects is misconfigured.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=5.0),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


@asynccontextmanager
async def open_engine(
    settings: Settings, *, only: Iterable[str] | None = None
) -> AsyncIterator[Engine]:
    """Yield an engine with every registered source; close everything after."""
    store = FeedStore(settings.feed_db_path)
    client = http_client()
    redis_url = settings.secret("redis_url")
    cache = RedisCache.from_url(redis_url) if redis_url else None
    governor = UpstreamGovernor.from_settings(settings)
    try:
        context = SourceContext(settings=settings, store=store, http=client)
        sources = load_sources(context, only=only)
        yield Engine(sources, settings, cache=cache, governor=governor)
    finally:
        await governor.aclose()
        if cache is not None:
            await cache.aclose()
        await client.aclose()
        store.close()
