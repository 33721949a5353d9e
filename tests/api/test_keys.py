"""Keys: the CLI shows a key once, only hashes are stored, logs never show a key."""

from __future__ import annotations

import hmac
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from typer.testing import CliRunner

from iocscope.logs import configure_logging
from iocscope.service import keys as keys_module
from iocscope.service.keys import hash_key
from tests.api.service import RunningService, build_settings, run_server

KEY_PATTERN = re.compile(r"api key: (ioc_[A-Za-z0-9_-]{43})")


@pytest.fixture
def reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def cli(*args: str) -> str:
    from iocscope.cli_service import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def create_via_cli(data_dir: Path, tenant: str, plan: str) -> str:
    output = cli(
        "keys",
        "create",
        "--tenant",
        tenant,
        "--plan",
        plan,
        "--data-dir",
        str(data_dir),
    )
    match = KEY_PATTERN.search(output)
    assert match is not None, output
    return match.group(1)


def test_cli_creates_lists_revokes(tmp_path: Path) -> None:
    key = create_via_cli(tmp_path, "acme", "team")
    listing = cli("keys", "list", "--data-dir", str(tmp_path))
    assert "acme" in listing
    assert "team" in listing
    assert key not in listing
    assert "revoked key 1" in cli("keys", "revoke", "1", "--data-dir", str(tmp_path))


def test_cli_rejects_unknown_plan(tmp_path: Path) -> None:
    from iocscope.cli_service import app

    result = CliRunner().invoke(
        app,
        [
            "keys",
            "create",
            "--tenant",
            "a",
            "--plan",
            "platinum",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code != 0
    assert "platinum" in result.output


def test_database_stores_only_hash(tmp_path: Path) -> None:
    key = create_via_cli(tmp_path, "acme", "team")
    with sqlite3.connect(tmp_path / "iocscope.sqlite3") as connection:
        dump = "\n".join(connection.iterdump())
    assert key not in dump
    assert hash_key(key) in dump


def test_logs_never_show_keys(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], reset_logging: None
) -> None:
    settings = build_settings("sqlite", tmp_path)
    configure_logging(settings, level=logging.DEBUG)
    keys = [create_via_cli(tmp_path, "acme", "team") for _ in range(2)]
    revoked = create_via_cli(tmp_path, "other", "free")
    cli("keys", "revoke", "3", "--data-dir", str(tmp_path))
    with run_server(settings, log_level="debug") as service:
        for key in keys:
            _exercise(service, key)
        _exercise(service, revoked)
        httpx.post(
            f"{service.url}/v1/ioc/enrich",
            json={"value": "a.example"},
            headers={"X-API-Key": keys[0] + "x"},
        )
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "request" in logs or "service.started" in logs
    for key in [*keys, revoked]:
        assert key not in logs
        assert key[4:20] not in logs


def _exercise(service: RunningService, key: str) -> None:
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        httpx.post(
            f"{service.url}/v1/ioc/enrich",
            json={"value": "evil.example"},
            headers=headers,
        )
        httpx.post(
            f"{service.url}/v1/ioc/enrich", json={"value": "bad..x"}, headers=headers
        )
        httpx.get(f"{service.url}/v1/usage", headers=headers)


def test_lookup_uses_compare_digest(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = service.create_key("acme", "team")
    calls: list[tuple[str, str]] = []
    real_compare = hmac.compare_digest

    def spy(left: str, right: str) -> bool:
        calls.append((left, right))
        return real_compare(left, right)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    response = httpx.get(f"{service.url}/v1/usage", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert calls == [(hash_key(key), hash_key(key))]


def test_db_upgrade_reports_what_it_did(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from iocscope.cli import build_app

    runner = CliRunner()
    args = ["db", "upgrade", "--data-dir", str(tmp_path / "data")]
    first = runner.invoke(build_app(), args)
    second = runner.invoke(build_app(), args)
    assert first.exit_code == 0
    assert "created" in first.stdout
    assert "already at revision" in second.stdout
