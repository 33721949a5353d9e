"""Helpers for the abuse.ch and RDAP adapter tests: settings, fixtures, lookups, logs.

Every adapter under test gets its base URL from ``Settings.source_endpoints``,
pointed at a loopback server, so no test can reach a vendor host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import structlog

from iocscope.config import Settings
from iocscope.models import Observable, ObservableType, SourceResult
from iocscope.sources.base import Source
from tests.loopback import SeenRequest

LOCAL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# An abuse.ch Auth-Key that appears nowhere else, so a leak is easy to spot.
AUTH_KEY = "k3y-7f1c9a2e-never-log-me"
# A body cut off in the middle, as a broken proxy delivers it.
TRUNCATED_JSON = b'{"query_status": "ok", "data": [{"sha256_ha'
# Latin-1 bytes inside an otherwise valid JSON string.
LATIN1 = "Soci\xe9t\xe9 Exemple".encode("latin-1")

# The adapters never touch the feed store, so loader tests pass none.
NO_STORE: Any = None

Factory = Callable[[Settings, httpx.AsyncClient], Source]


def make_settings(server_url: str, name: str, **fields: Any) -> Settings:
    """Settings that point ``name`` at ``server_url`` with a 1 s timeout and a key."""
    fields.setdefault("abusech_auth_key", AUTH_KEY)
    return Settings(
        source_endpoints={name: server_url}, source_timeouts={name: 1.0}, **fields
    )


def make_observable(kind: ObservableType, value: str, **fields: Any) -> Observable:
    """Build a canonical observable the way the parser would; IPs are global."""
    if kind is ObservableType.IP:
        fields.setdefault("scope", "global")
    if kind is ObservableType.DOMAIN:
        fields.setdefault("registered_domain", value)
    return Observable(type=kind, value=value, input=value, **fields)


def shared_body(shared_fixtures: Path, vendor: str, name: str) -> bytes:
    """Read a recorded vendor body in place from the shared fixtures."""
    return (shared_fixtures / "upstream" / vendor / name).read_bytes()


def local_body(vendor: str, name: str) -> bytes:
    """Read a body that these tests built from the vendor's documented schema."""
    return (LOCAL_FIXTURES / vendor / name).read_bytes()


def form_of(request: SeenRequest) -> dict[str, list[str]]:
    return parse_qs(request.body.decode())


async def run(factory: Factory, settings: Settings, target: Observable) -> SourceResult:
    """Build the source with a fresh client and run one lookup, 5 s at most."""
    async with httpx.AsyncClient(trust_env=False) as client:
        source = factory(settings, client)
        async with asyncio.timeout(5.0):
            return await source.lookup(target)


async def run_to_text(factory: Factory, settings: Settings, target: Observable) -> str:
    """Run one lookup and return all of its text: the result JSON or the error."""
    try:
        result = await run(factory, settings, target)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc} {exc!r} {vars(exc)!r}"
    return result.model_dump_json()


@contextmanager
def captured_output(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Collect stdlib logs at DEBUG and all structlog events into the yielded list.

    Log text is appended when the block exits; callers add their own text inside.
    """
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with structlog.testing.capture_logs() as events:
        yield texts
    texts.append(caplog.text)
    texts.extend(repr(event) for event in events)
