"""Helpers for running the Cortex analyzer as Cortex does, and checking its output.

The output rules come from how Cortex 4.1 and TheHive read analyzer reports:
``full`` must be an object, taxonomy levels are info/safe/suspicious/malicious with
exactly four keys, artifacts may only carry the attributes of Cortex's artifact
entity, and operations must be of a type that TheHive executes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ANALYZER_DIR = REPO_ROOT / "integrations" / "cortex" / "iocscope"
ANALYZER = ANALYZER_DIR / "iocscope_analyzer.py"

TAXONOMY_LEVELS = {"info", "safe", "suspicious", "malicious"}
TAXONOMY_KEYS = {"level", "namespace", "predicate", "value"}
ARTIFACT_KEYS = {"dataType", "data", "tlp", "tags", "message", "file", "filename"}
# Operation types TheHive executes for analyzer reports, with their fields.
OPERATION_FIELDS = {
    "AddTagToCase": {"tag"},
    "AddTagToArtifact": {"tag"},
    "AddTagToAlert": {"tag"},
    "CreateTask": {"title", "description"},
    "AddCustomFields": {"name", "tpe", "value"},
    "CloseTask": set(),
    "MarkAlertAsRead": set(),
    "AddLogToTask": {"content", "owner"},
    "AddArtifactToCase": {
        "data",
        "dataType",
        "message",
        "tlp",
        "ioc",
        "sighted",
        "ignoreSimilarity",
        "tags",
    },
    "AssignCase": {"owner"},
}


def analyzer_env() -> dict[str, str]:
    """Environment for the analyzer: no proxy variables, so loopback stays local."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def make_job(root: Path, job_input: dict[str, Any]) -> Path:
    """Create a Cortex job folder with ``input/input.json``."""
    job = root / "cortex-job-test"
    (job / "input").mkdir(parents=True)
    (job / "output").mkdir()
    (job / "input" / "input.json").write_text(json.dumps(job_input), encoding="utf-8")
    return job


def run_job(job: Path, timeout_s: float = 60) -> tuple[dict[str, Any], int]:
    """Run the analyzer in process mode; return output.json and the exit code."""
    completed = subprocess.run(
        [sys.executable, str(ANALYZER), str(job)],
        cwd=ANALYZER_DIR.parent,
        env=analyzer_env(),
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    output_file = job / "output" / "output.json"
    assert output_file.is_file(), (
        f"no output.json; stderr: {completed.stderr.decode(errors='replace')}"
    )
    return json.loads(output_file.read_text(encoding="utf-8")), completed.returncode


def run_stdin(job_input: dict[str, Any], cwd: Path) -> tuple[dict[str, Any], int]:
    """Run the analyzer in stdin/stdout mode (no job folder argument)."""
    completed = subprocess.run(
        [sys.executable, str(ANALYZER)],
        cwd=cwd,
        env=analyzer_env(),
        input=json.dumps(job_input).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout, (
        f"nothing on stdout; stderr: {completed.stderr.decode(errors='replace')}"
    )
    return json.loads(completed.stdout), completed.returncode


def assert_cortex_success(output: dict[str, Any]) -> None:
    """Check a success report against what Cortex and TheHive accept."""
    assert output["success"] is True, output.get("errorMessage")
    assert isinstance(output["full"], dict)
    assert isinstance(output["summary"], dict)
    taxonomies = output["summary"]["taxonomies"]
    assert isinstance(taxonomies, list)
    for taxonomy in taxonomies:
        assert set(taxonomy) == TAXONOMY_KEYS, taxonomy
        assert taxonomy["level"] in TAXONOMY_LEVELS, taxonomy
    assert isinstance(output["artifacts"], list)
    for artifact in output["artifacts"]:
        assert isinstance(artifact, dict), artifact
        assert "dataType" in artifact, artifact
        assert set(artifact) <= ARTIFACT_KEYS, artifact
    assert isinstance(output["operations"], list)
    for operation in output["operations"]:
        assert isinstance(operation, dict), operation
        assert operation["type"] in OPERATION_FIELDS, operation
        assert set(operation) - {"type"} <= OPERATION_FIELDS[operation["type"]]


def assert_cortex_failure(output: dict[str, Any], exit_code: int) -> str:
    """Check a failure report; return its errorMessage."""
    assert output["success"] is False
    assert isinstance(output["errorMessage"], str)
    assert output["errorMessage"]
    assert set(output) == {"success", "errorMessage", "input"}
    config = output["input"].get("config", {})
    if "api_key" in config:
        assert config["api_key"] == "REMOVED"
    assert exit_code == 1
    message: str = output["errorMessage"]
    return message


def taxonomy(output: dict[str, Any], predicate: str) -> dict[str, Any]:
    matches = [
        t for t in output["summary"]["taxonomies"] if t["predicate"] == predicate
    ]
    assert len(matches) == 1, output["summary"]
    found: dict[str, Any] = matches[0]
    return found
