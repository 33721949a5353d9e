"""Shared test fixtures: paths to the recorded data beside the repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer
from tests.netguard import guard_network

REPO_ROOT = Path(__file__).resolve().parents[1]
# Recorded vendor responses, feed snapshots and contracts live beside the checkout,
# in ../shared/fixtures; they are read in place and never copied into the repo.
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[None]:
    """Refuse every connection this test process tries to open off 127.0.0.0/8 or ::1.

    Built-in network sources have public default endpoints; a test that forgets
    to point one at a loopback server gets a connection error instead of reaching
    a real vendor or resolver.
    """
    with guard_network():
        yield


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not SHARED_FIXTURES.is_dir():
        pytest.fail(f"recorded fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A fresh HTTP server on 127.0.0.1 for one test."""
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()
