"""The command line: enrich one value, a file, free text; exit codes; output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iocscope.cli import build_app
from iocscope.models import Verdict
from tests import sources_for_tests as plugin
from tests.plugins import registered_sources

runner = CliRunner()
ENTRY_POINTS = {"test_local": "tests.sources_for_tests:load_local"}


@pytest.fixture(autouse=True)
def plugin_sources(tmp_path: Path) -> Iterator[None]:
    plugin.LOCAL_LISTING.clear()
    plugin.LOCAL_LISTING["evil.example"] = (Verdict.MALICIOUS, "listed as C2")
    plugin.LOCAL_LISTING["198.51.100.23"] = (Verdict.SUSPICIOUS, "scanner")
    plugin.LOCAL_LISTING["203.0.113.9"] = (Verdict.SUSPICIOUS, "scanner")
    with registered_sources(tmp_path / "plugin", ENTRY_POINTS):
        yield


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_enrich_prints_document(data_dir: str) -> None:
    code, out, _ = invoke("enrich", "evil[.]example", "--data-dir", data_dir)
    document = json.loads(out)
    assert code == 2
    assert document["verdict"] == "malicious"
    assert document["observable"]["value"] == "evil.example"
    assert document["observable"]["refanged"] is True


def test_enrich_unknown_exits_zero(data_dir: str) -> None:
    code, out, _ = invoke("enrich", "nothing-here.example", "--data-dir", data_dir)
    assert code == 0
    assert json.loads(out)["verdict"] in {"unknown", "clean"}


def test_bad_value_names_value_and_fix(data_dir: str) -> None:
    code, _, err = invoke("enrich", "198.51.100.7/24", "--data-dir", data_dir)
    assert code == 1
    assert "198.51.100.7/24" in err
    assert "198.51.100.0/24" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_tlp_names_field(data_dir: str) -> None:
    code, _, err = invoke(
        "enrich", "evil.example", "--tlp", "purple", "--data-dir", data_dir
    )
    assert code == 1
    assert "tlp" in err
    assert "purple" in err


def test_missing_value_is_an_error(data_dir: str) -> None:
    code, _, err = invoke("enrich", "--data-dir", data_dir)
    assert code == 1
    assert "missing VALUE" in err


def test_table_format(data_dir: str) -> None:
    code, out, _ = invoke(
        "enrich", "evil.example", "-f", "table", "--data-dir", data_dir
    )
    assert code == 2
    assert "malicious" in out
    assert "test_local_list" in out


def test_file_keeps_order_and_errors(tmp_path: Path, data_dir: str) -> None:
    listing = tmp_path / "iocs.txt"
    listing.write_text(
        "# analyst notes\n"
        "evil.example\n"
        "\n"
        "44d88612 fea8a8f36de82e1278abb02f\n"
        "198.51.100.23\n"
    )
    code, out, _ = invoke("enrich", "--file", str(listing), "--data-dir", data_dir)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert len(lines) == 3
    assert lines[0]["observable"]["value"] == "evil.example"
    assert lines[1]["line"] == 4
    assert "error" in lines[1]
    assert lines[2]["verdict"] == "suspicious"


def test_file_from_stdin(data_dir: str) -> None:
    code, out, _ = invoke(
        "enrich", "--file", "-", "--data-dir", data_dir, stdin="198.51.100.23\n"
    )
    assert code == 3
    assert json.loads(out)["verdict"] == "suspicious"


def test_extract_from_free_text(data_dir: str) -> None:
    text = "Alert: beacon to hxxp[:]//evil[.]example/a.exe from 203.0.113.9 today."
    code, out, _ = invoke(
        "enrich", "--file", "-", "--extract", "--data-dir", data_dir, stdin=text
    )
    values = [json.loads(line)["observable"]["value"] for line in out.splitlines()]
    assert "http://evil.example/a.exe" in values
    assert "203.0.113.9" in values
    assert code == 3


def test_unreadable_file_fails(tmp_path: Path, data_dir: str) -> None:
    missing = tmp_path / "missing.txt"
    code, _, err = invoke("enrich", "--file", str(missing), "--data-dir", data_dir)
    assert code == 1
    assert str(missing) in err


def test_help_explains_units() -> None:
    code, out, _ = invoke("enrich", "--help")
    assert code == 0
    assert "--tlp" in out
    assert "Exit codes" in out


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess, offline: the in-process network guard does
    not reach a child process, so no network source may run there."""
    env = {**env, "IOCSCOPE_OFFLINE": "true"}
    return subprocess.run(
        [sys.executable, "-c", "from iocscope.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_enrich_does_not_import_web_stack(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom iocscope.cli import build_app\n"
        "build_app(['enrich'])\nimport iocscope.cli_enrich\n"
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'starlette',"
        " 'thehive4py') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_c_locale_prints_non_ascii(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONIOENCODING": "ascii",
        "IOCSCOPE_DATA_DIR": str(tmp_path / "data"),
    }
    result = run_cli("enrich", "xn--bcher-kva.example", "-f", "table", env=env)
    assert result.returncode in {0, 3}
    assert "Traceback" not in result.stderr
    assert "xn--bcher-kva.example" in result.stdout


def test_file_output_with_terminal_stderr(tmp_path: Path) -> None:
    """With stderr on a terminal (progress bar) and stdout redirected, every
    JSON line still goes to stdout."""
    import pty

    listing = tmp_path / "iocs.txt"
    listing.write_text("evil.example\n198.51.100.23\n")
    primary, secondary = pty.openpty()
    env = {
        **os.environ,
        "IOCSCOPE_DATA_DIR": str(tmp_path / "data"),
        "IOCSCOPE_OFFLINE": "true",
    }
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from iocscope.cli import main; main()",
                "enrich",
                "--file",
                str(listing),
            ],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["observable"]["value"] == "evil.example"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("IOCSCOPE_WEIGHTS", "blocklist_de=0.2", "JSON"),
        ("IOCSCOPE_DEFAULT_TLP", "purple", "IOCSCOPE_DEFAULT_TLP"),
        ("IOCSCOPE_CONFIG", "/nonexistent/iocscope.toml", "IOCSCOPE_CONFIG"),
    ],
)
def test_bad_setting_is_one_line(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    env = {**os.environ, "IOCSCOPE_DATA_DIR": str(tmp_path / "data"), name: value}
    result = run_cli("enrich", "evil.example", env=env)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("IOCSCOPE_REDIS_URL", "notaurl", "redis://"),
        ("IOCSCOPE_DNS_SERVERS", '["not-an-ip"]', "not-an-ip"),
        ("IOCSCOPE_WEIGHTS", '{"blocklist_de": -3}', "blocklist_de"),
        ("IOCSCOPE_MALICIOUS_AT", "30", "malicious_at"),
        ("IOCSCOPE_SOURCE_ENDPOINTS", '{"virustotal": "not a url"}', "virustotal"),
    ],
)
def test_invalid_setting_is_rejected(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    env = {**os.environ, "IOCSCOPE_DATA_DIR": str(tmp_path / "data"), name: value}
    result = run_cli("enrich", "evil.example", env=env)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_offline_refuses_feed_update(tmp_path: Path) -> None:
    env = {**os.environ, "IOCSCOPE_DATA_DIR": str(tmp_path / "data")}
    result = run_cli("feeds", "update", env=env)
    assert result.returncode == 1
    assert "IOCSCOPE_OFFLINE" in result.stderr
