"""Regression tests for bugs found by review: key leaks through protocol errors,
boolean TLPs, bad webhook URLs, stray carriage returns in feeds, plan downgrades,
and URL hosts that browsers read differently from a naive parser.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from iocscope.cli import build_app
from iocscope.errors import FeedError, InvalidObservable, UpstreamError
from iocscope.feeds.detect import detect_format
from iocscope.models import Observable, ObservableType
from iocscope.observables import parse_observable
from iocscope.service.webhooks import check_webhook_url
from iocscope.sources.vendors.virustotal import VirusTotalSource
from tests.api.service import build_settings, run_server
from tests.loopback import LoopbackServer, Reply
from tests.vendors.test_virustotal import ThresholdSettings


def test_api_rejects_boolean_tlp(tmp_path: Path) -> None:
    settings = build_settings("sqlite", tmp_path / "data")
    with run_server(settings) as service:
        key = service.create_key("tenant-a", "team")
        response = httpx.post(
            f"{service.url}/v1/ioc/enrich",
            json={"value": "203.0.113.9", "tlp": False},
            headers={"X-API-Key": key},
        )
    # 400 (invalid_tlp) or 422 (validation_failed): either rejects the value.
    assert response.status_code in {400, 422}


async def test_vendor_key_newline_not_leaked(loopback: LoopbackServer) -> None:
    key = "vt-secret-key-5a7c9e1b\n"
    loopback.fallback = Reply(body=b"{}")
    address = Observable(
        type=ObservableType.IP,
        value="203.0.113.9",
        input="203.0.113.9",
        scope="global",
    )
    async with httpx.AsyncClient() as client:
        settings = ThresholdSettings(
            virustotal_api_key=key, source_endpoints={"virustotal": loopback.url}
        )
        source = VirusTotalSource(settings, client)
        with pytest.raises(UpstreamError) as caught:
            await source.lookup(address)
    assert "vt-secret-key-5a7c9e1b" not in caught.value.message


def test_webhook_url_rejects_bad_port() -> None:
    assert check_webhook_url("http://127.0.0.1:abc/hook") is not None
    assert check_webhook_url("http://127.0.0.1:99999/hook") is not None


def test_feed_detection_survives_bare_cr() -> None:
    # Classic Mac line ends: two addresses separated by CR only.
    try:
        detect_format("198.51.100.1\r198.51.100.2\r")
    except FeedError:
        pass


def test_keys_create_keeps_tenant_plan(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    app = build_app()
    first = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--tenant",
            "acme",
            "--plan",
            "team",
            "--data-dir",
            data_dir,
        ],
    )
    assert first.exit_code == 0
    second = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--data-dir", data_dir]
    )
    assert second.exit_code == 0
    assert "plan team" in second.stdout


def test_url_backslash_in_authority_rejected() -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable("http://evil.example\\@google.com/")
    assert "backslash" in caught.value.message


@pytest.mark.parametrize(
    "url", ["http://0x0a000005/", "http://a.0x1f/", "http://evil.example.0177/"]
)
def test_url_numeric_ipv4_host_rejected(url: str) -> None:
    with pytest.raises(InvalidObservable) as caught:
        parse_observable(url)
    assert "dotted decimal" in caught.value.message
