"""Helpers for the vendor adapter tests: settings, observables, bodies, lookups, logs.

Every HTTP adapter under test gets its base URL from ``Settings.source_endpoints``,
pointed at a loopback server, so no test can reach a vendor host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import structlog
from pydantic import SecretStr

from iocscope.config import Settings
from iocscope.models import Observable, ObservableType, SourceResult
from iocscope.sources.base import Source
from tests.conftest import LOCAL_FIXTURES
from tests.loopback import LoopbackServer, Reply, SeenRequest

# A body that is not JSON, as a proxy or a broken upstream sends it.
GARBLED = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
# A JSON body cut off in the middle, as a broken proxy delivers it.
TRUNCATED_JSON = b'{"query_status": "ok", "data": [{"sha256_ha'
# Bytes that are not UTF-8 (Latin-1 "e acute", a lone continuation byte).
NOT_UTF8 = b"Soci\xe9t\xe9 \x80"
# Latin-1 bytes to put inside an otherwise valid JSON string.
LATIN1 = "Soci\xe9t\xe9 Exemple".encode("latin-1")
REPLACEMENT = "\ufffd"

# An abuse.ch Auth-Key that appears nowhere else, so a leak is easy to spot.
AUTH_KEY = "k3y-7f1c9a2e-never-log-me"

# The vendor adapters never touch the feed store, so loader tests pass none.
NO_STORE: Any = None

SourceFactory = Callable[[Settings, httpx.AsyncClient], Source]


class PdnsSettings(Settings):
    """Settings with the two credential fields the CIRCL passive DNS adapter reads."""

    circl_pdns_user: str | None = None
    circl_pdns_password: SecretStr | None = None


def settings_for(
    server: LoopbackServer,
    name: str,
    *,
    timeout_s: float = 5.0,
    settings_type: type[Settings] = Settings,
    **fields: Any,
) -> Settings:
    """Build settings that point source ``name`` at ``server``."""
    return settings_type(
        source_endpoints={name: server.url},
        source_timeouts={name: timeout_s},
        **fields,
    )


def make_observable(kind: ObservableType, value: str, **fields: Any) -> Observable:
    """Build a canonical observable as the parser would.

    An IP address is global, and a domain is its own registered domain unless the
    caller passes ``registered_domain``.
    """
    if kind is ObservableType.IP:
        fields.setdefault("scope", "global")
    if kind is ObservableType.DOMAIN:
        fields.setdefault("registered_domain", value)
    return Observable(type=kind, value=value, input=value, **fields)


def recorded_body(shared_fixtures: Path, vendor: str, name: str) -> bytes:
    """Read a recorded vendor response in place, without copying it into the repo."""
    return (shared_fixtures / "upstream" / vendor / name).read_bytes()


def local_body(vendor: str, name: str) -> bytes:
    """Read a body that these tests built from the vendor's documented schema."""
    return (LOCAL_FIXTURES / vendor / name).read_bytes()


def form_of(request: SeenRequest) -> dict[str, list[str]]:
    """Decode the form-encoded body of a request the server received."""
    return parse_qs(request.body.decode())


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


async def _outcome_text(lookup: Awaitable[SourceResult]) -> str:
    """Run a lookup and return every text it produced: the result or the error."""
    try:
        result = await lookup
    except Exception as exc:
        return f"{type(exc).__name__}: {exc} {exc!r} {vars(exc)!r}"
    return result.model_dump_json()


async def output_of_lookups(
    caplog: pytest.LogCaptureFixture,
    server: LoopbackServer,
    route: tuple[str, str],
    replies: Sequence[Reply],
    lookup: Callable[[], Awaitable[SourceResult]],
) -> list[str]:
    """Serve each reply on ``route`` (method, path) to one lookup in turn.

    Return every text the lookups produced: each result or error, the stdlib log at
    DEBUG level and every structlog event.
    """
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with structlog.testing.capture_logs() as events:
        for reply in replies:
            server.route(*route, reply)
            texts.append(await _outcome_text(lookup()))
    texts.append(caplog.text)
    texts.extend(repr(event) for event in events)
    return texts
