"""Start a real ``iocscope serve`` on a free loopback port for integration tests.

The service gets a fresh data dir, one API key from ``iocscope keys create``, and
an extra source plugin registered through the ``iocscope.sources`` entry-point
group (a ``.dist-info`` folder on ``PYTHONPATH``, as an installed plugin would
be). Every built-in network source is disabled and DNS points at a closed
loopback port, so no lookup leaves the machine. The test is skipped when the
service command is not available yet.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from iocscope.config import Settings
from iocscope.runtime import open_engine
from tests.integrations.cortex_support import analyzer_env

IOCSCOPE = Path(sys.executable).parent / "iocscope"
PLUGIN_MODULE = "iocscope_cortex_test_source"
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def collect_network_sources(data_dir: Path) -> list[str]:
    """Return the names of the built-in sources that open network connections."""
    async with open_engine(Settings(data_dir=data_dir)) as engine:
        return sorted(n for n, spec in engine.specs().items() if spec.network)


def network_source_names(data_dir: Path) -> list[str]:
    return asyncio.run(collect_network_sources(data_dir))


def offline_env(data_dir: Path) -> dict[str, str]:
    """Settings, as environment variables, that keep every lookup on loopback."""
    return {
        "IOCSCOPE_DISABLED_SOURCES": json.dumps(network_source_names(data_dir)),
        "IOCSCOPE_DNS_SERVERS": json.dumps([f"127.0.0.1:{free_port()}"]),
    }


def _install_plugin(folder: Path, module_source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PLUGIN_MODULE}.py").write_text(module_source, encoding="utf-8")
    dist_info = folder / "iocscope_cortex_test_source-1.0.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: iocscope-cortex-test-source\nVersion: 1.0\n",
        encoding="utf-8",
    )
    (dist_info / "entry_points.txt").write_text(
        f"[iocscope.sources]\ncortex_test_external = {PLUGIN_MODULE}:load\n",
        encoding="utf-8",
    )


def _service_available() -> bool:
    try:
        import iocscope.api
        import iocscope.cli_service  # noqa: F401
    except ImportError:
        return False
    return IOCSCOPE.is_file()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (
                process.stdout.read().decode(errors="replace") if process.stdout else ""
            )
            raise AssertionError(f"iocscope serve exited early:\n{output}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # the service responds, even if it reports itself unhealthy
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"iocscope serve did not answer on {url} in time")


@contextmanager
def start_live_service(
    root: Path, plugin_source: str, *, external_url: str
) -> Iterator[dict[str, Any]]:
    """Yield ``{"url", "api_key"}`` of a running service; stop it afterwards."""
    if not _service_available():
        pytest.skip("iocscope serve is not available in this checkout yet")
    data_dir = root / "service-data"
    plugin_dir = root / "plugins"
    _install_plugin(plugin_dir, plugin_source)
    env = analyzer_env() | offline_env(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(plugin_dir), *filter(None, [env.get("PYTHONPATH")])]
    )
    env["CORTEX_TEST_EXTERNAL_URL"] = external_url
    env["IOCSCOPE_DATA_DIR"] = str(data_dir)
    created = subprocess.run(
        [
            str(IOCSCOPE),
            "keys",
            "create",
            "--tenant",
            "cortex",
            "--plan",
            "free",
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    match = re.search(r"api key: (\S+)", created.stdout)
    assert match, created.stdout
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(IOCSCOPE),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(url, process)
        yield {"url": url, "api_key": match.group(1)}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
