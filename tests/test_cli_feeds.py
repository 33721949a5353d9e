"""``iocscope feeds`` import, list and update through typer's CliRunner."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iocscope.cli_feeds import app, feed_rows, human_age
from iocscope.config import load_settings
from iocscope.feeds.store import FeedInfo, FeedStore
from tests.loopback import LoopbackServer, Reply

runner = CliRunner()


def feeds_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "feeds"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def stored(data_dir: Path) -> dict[str, FeedInfo]:
    with FeedStore(load_settings(data_dir).feed_db_path) as store:
        return {info.name: info for info in store.feeds()}


# -- import -------------------------------------------------------------------


def test_import_good_file(shared_fixtures: Path, tmp_path: Path) -> None:
    path = feeds_dir(shared_fixtures) / "feodo_ipblocklist.csv"
    code, out, err = run("import", path, "--data-dir", tmp_path)
    assert code == 0, err
    assert (
        f"{path}: feed feodo_tracker (feodo_csv), 6 entries imported, 0 bad lines"
        in out
    )
    assert "feodo_tracker: 6 entries stored" in out
    assert stored(tmp_path)["feodo_tracker"].entry_count == 6


def test_import_merges_files_of_one_feed(shared_fixtures: Path, tmp_path: Path) -> None:
    folder = feeds_dir(shared_fixtures)
    code, out, _ = run(
        "import",
        folder / "spamhaus_drop_v4_jsonl_excerpt.txt",
        folder / "spamhaus_drop_v6_jsonl_excerpt.txt",
        "--data-dir",
        tmp_path,
    )
    assert code == 0
    assert "spamhaus_drop: 6 entries stored" in out
    assert stored(tmp_path)["spamhaus_drop"].prefix_lengths == {
        4: (16, 20, 22),
        6: (29, 32),
    }


def test_import_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "blocklist_de_all.txt"
    lines = ["198.51.100.7", "not-an-ip", "198.51.100.8", "198.51.100.999"]
    lines += [f"bad{n}" for n in range(5)] + ["198.51.100.9"] * 10
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = run("import", path, "--format", "ip_list", "--data-dir", tmp_path)
    assert code == 0
    assert "feed blocklist_de (ip_list), 12 entries imported, 7 bad lines" in out
    assert "  line 2: " in out
    assert "'not-an-ip'" in out
    assert "  line 4: " in out
    assert "  ... and 2 more" in out
    assert stored(tmp_path)["blocklist_de"].bad_lines == 7


def test_import_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("198.51.100.7\n")
    code, out, err = run("import", path, "--format", "nope", "--data-dir", tmp_path)
    assert code == 1
    assert "error: unknown feed format 'nope'; known formats: feodo_csv," in err
    assert "ip_list" in err
    assert out == ""


def test_import_unknown_feed(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("198.51.100.7\n")
    code, _, err = run("import", path, "--feed", "nope", "--data-dir", tmp_path)
    assert code == 1
    assert "unknown feed 'nope'; known feeds: feodo_tracker," in err


def test_import_undetectable_content(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("some notes\nabout nothing\n")
    code, _, err = run("import", path, "--data-dir", tmp_path)
    assert code == 1
    assert "cannot tell the feed format from the content; pass --format" in err
    assert "misp_warninglist" in err


def test_import_unreadable_file_keeps_others(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    good = feeds_dir(shared_fixtures) / "openphish_feed.constructed.txt"
    missing = tmp_path / "missing.csv"
    code, out, err = run("import", missing, good, "--data-dir", tmp_path)
    assert code == 1
    assert f"error: {missing}: cannot read {missing}" in err
    assert "openphish: 3 entries stored" in out


def test_import_failure_in_group_keeps_previous(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    folder = feeds_dir(shared_fixtures)
    v4 = folder / "spamhaus_drop_v4_jsonl_excerpt.txt"
    assert run("import", v4, "--data-dir", tmp_path)[0] == 0
    broken = tmp_path / "drop_v6.json"
    broken.write_text("garbage that is no feed\n")
    code, _, _ = run(
        "import", v4, broken, "--feed", "spamhaus_drop", "--data-dir", tmp_path
    )
    assert code == 1
    assert stored(tmp_path)["spamhaus_drop"].entry_count == 4


def test_import_honours_data_dir_env(
    shared_fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOCSCOPE_DATA_DIR", str(tmp_path))
    path = feeds_dir(shared_fixtures) / "openphish_feed.constructed.txt"
    assert run("import", path)[0] == 0
    assert "openphish" in stored(tmp_path)


# -- list ---------------------------------------------------------------------


def test_list_table(shared_fixtures: Path, tmp_path: Path) -> None:
    path = feeds_dir(shared_fixtures) / "tor_exit_nodes_list.txt"
    run("import", path, "--data-dir", tmp_path)
    code, out, _ = run("list", "--data-dir", tmp_path)
    assert code == 0
    tor_line = next(line for line in out.splitlines() if "tor_exit" in line)
    assert "50" in tor_line
    assert "just now" in tor_line
    urlhaus_line = next(line for line in out.splitlines() if "urlhaus" in line)
    assert "never" in urlhaus_line


def test_list_json(shared_fixtures: Path, tmp_path: Path) -> None:
    path = feeds_dir(shared_fixtures) / "tor_exit_nodes_list.txt"
    run("import", path, "--data-dir", tmp_path)
    code, out, _ = run("list", "--json", "--data-dir", tmp_path)
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    tor = rows["tor_exit"]
    assert tor["imported"] is True
    assert tor["entry_count"] == 50
    assert tor["kind_counts"] == {"ip": 50}
    assert tor["bad_lines"] == 0
    assert tor["source"] == str(path)
    assert tor["age_s"] < 60
    assert rows["urlhaus"]["imported"] is False


def test_list_rows_show_parts_once(tmp_path: Path) -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    info = FeedInfo(
        name="misp_warninglists:cloudflare",
        format="misp_warninglist",
        source="cloudflare.json",
        imported_at=now - timedelta(hours=3),
        entry_count=22,
        bad_lines=0,
    )
    rows = feed_rows([info], now)
    names = [row["name"] for row in rows]
    assert "misp_warninglists" not in names
    assert rows[0]["age"] == "3 hours ago"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "just now"),
        (60, "1 minute ago"),
        (7200, "2 hours ago"),
        (86400, "1 day ago"),
    ],
)
def test_human_age(seconds: int, text: str) -> None:
    assert human_age(seconds) == text


# -- update -------------------------------------------------------------------


def test_update_from_loopback(
    loopback: LoopbackServer, shared_fixtures: Path, tmp_path: Path
) -> None:
    body = (feeds_dir(shared_fixtures) / "feodo_ipblocklist.json").read_bytes()
    loopback.route("GET", "/ipblocklist.json", Reply(body=body))
    url = f"{loopback.url}/ipblocklist.json"
    code, out, err = run(
        "update",
        "feodo_tracker",
        "--url",
        f"feodo_tracker={url}",
        "--data-dir",
        tmp_path,
    )
    assert code == 0, err
    assert f"{url}: feed feodo_tracker (feodo_json), 3 entries imported" in out
    assert stored(tmp_path)["feodo_tracker"].source == url


def test_update_unreachable_keeps_data(shared_fixtures: Path, tmp_path: Path) -> None:
    path = feeds_dir(shared_fixtures) / "feodo_ipblocklist.csv"
    run("import", path, "--data-dir", tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ipblocklist.json"
    code, _, err = run(
        "update",
        "feodo_tracker",
        "--url",
        f"feodo_tracker={url}",
        "--data-dir",
        tmp_path,
    )
    assert code == 1
    assert f"feodo_tracker: failed: could not reach 127.0.0.1:{port}: " in err
    assert "import a file with `iocscope feeds import`" in err
    assert stored(tmp_path)["feodo_tracker"].entry_count == 6


def test_update_invalid_url_option(tmp_path: Path) -> None:
    code, _, err = run(
        "update", "feodo_tracker", "--url", "no-equals", "--data-dir", tmp_path
    )
    assert code == 1
    assert "invalid --url 'no-equals': use NAME=URL" in err


def test_update_unknown_feed(tmp_path: Path) -> None:
    code, _, err = run("update", "nope", "--data-dir", tmp_path)
    assert code == 1
    assert "unknown feed 'nope'" in err


def test_update_phishtank_without_url(tmp_path: Path) -> None:
    code, _, err = run("update", "phishtank", "--data-dir", tmp_path)
    assert code == 1
    assert "phishtank: failed: PhishTank downloads need an application key" in err


def test_feed_with_one_format_implies_it(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("198.51.100.1\nnot-an-ip\n198.51.100.2\n")
    code, out, _ = run(
        "import", listing, "--feed", "blocklist_de", "--data-dir", tmp_path
    )
    assert code == 0
    assert "2 entries imported" in out
    assert stored(tmp_path)["blocklist_de"].entry_count == 2
