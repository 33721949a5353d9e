"""The test network guard itself: off-loopback connections fail, loopback works."""

from __future__ import annotations

import socket

import pytest

from tests.loopback import LoopbackServer
from tests.netguard import OffLoopbackError


def test_guard_refuses_public_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OffLoopbackError):
            sock.connect(("192.0.2.1", 80))


def test_guard_refuses_udp_to_resolver() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(OffLoopbackError):
            sock.sendto(b"query", ("192.0.2.53", 53))


def test_guard_refuses_public_name() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("www.virustotal.com", 443)


def test_guard_allows_loopback(loopback: LoopbackServer) -> None:
    host, port = loopback.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=1):
        pass
