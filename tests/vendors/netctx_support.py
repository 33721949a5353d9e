"""Helpers for the network adapter tests: settings, observables, lookups, log capture.

Every adapter under test is pointed at a loopback server through
``Settings.source_endpoints``, so no test can reach a vendor host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from iocscope.config import Settings
from iocscope.models import Observable, ObservableType, SourceResult
from iocscope.sources.base import Source
from tests.loopback import LoopbackServer

LOCAL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# A body that is not JSON, as a proxy or a broken upstream sends it.
GARBLED = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
# Bytes that are not UTF-8 (Latin-1 "e acute", a lone continuation byte).
NOT_UTF8 = b"Soci\xe9t\xe9 \x80"
REPLACEMENT = "\ufffd"

SourceFactory = Callable[[Settings, httpx.AsyncClient], Source]


def settings_for(
    server: LoopbackServer, name: str, *, timeout_s: float = 5.0, **fields: Any
) -> Settings:
    """Settings that send source ``name`` to ``server`` with a short timeout."""
    return Settings(
        source_endpoints={name: server.url},
        source_timeouts={name: timeout_s},
        **fields,
    )


def observable(kind: ObservableType, value: str, **fields: Any) -> Observable:
    """A canonical observable as the parser would build it, with IPs global."""
    if kind is ObservableType.IP:
        fields.setdefault("scope", "global")
    return Observable(type=kind, value=value, input=value, **fields)


def upstream(shared_fixtures: Path, vendor: str, name: str) -> bytes:
    """Read a recorded vendor response in place under ../shared/fixtures."""
    return (shared_fixtures / "upstream" / vendor / name).read_bytes()


def local(vendor: str, name: str) -> bytes:
    """Read a fixture built from the vendor's documented schema."""
    return (LOCAL_FIXTURES / vendor / name).read_bytes()


async def run_lookup(
    factory: SourceFactory,
    settings: Settings,
    target: Observable,
    *,
    limit_s: float = 5.0,
) -> SourceResult:
    """Build the source with a fresh client and run one lookup under ``limit_s``."""
    async with httpx.AsyncClient(trust_env=False) as client:
        source = factory(settings, client)
        async with asyncio.timeout(limit_s):
            return await source.lookup(target)


async def outcome_text(lookup: Awaitable[SourceResult]) -> str:
    """Run a lookup and return every text it produced: the result or the error."""
    try:
        result = await lookup
    except Exception as exc:
        return f"{type(exc).__name__} {exc} {exc!r} {vars(exc)!r}"
    return result.model_dump_json()


@contextmanager
def all_output(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Collect stdlib logging at DEBUG and every structlog event into a list.

    The list is filled when the block ends; add the run's own text to it inside.
    """
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with structlog.testing.capture_logs() as events:
        yield texts
    texts.append(caplog.text)
    texts.extend(repr(event) for event in events)
