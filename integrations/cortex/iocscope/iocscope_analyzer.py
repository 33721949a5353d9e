#!/usr/bin/env python3
"""Cortex analyzer that enriches one observable through an iocscope service.

Cortex runs it as ``iocscope_analyzer.py JOB_DIR`` (process mode) or with no
argument and the job folder mounted at ``/job`` (docker mode). cortexutils reads
``input/input.json`` and writes ``output/output.json``; without a job folder it
reads the input from stdin and writes the report to stdout.

The program sends ``POST {api_url}/v1/ioc/enrich`` and reports the returned /v1
document as ``full``. It needs only cortexutils and the standard library.
"""

from __future__ import annotations

import email.utils
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from cortexutils.analyzer import Analyzer

NAMESPACE = "iocscope"
DEFAULT_API_URL = "http://127.0.0.1:8000"
# Seconds one HTTP request to iocscope may take.
DEFAULT_TIMEOUT_S = 60.0
# Cortex's own default for the jobTimeout configuration item, in minutes.
DEFAULT_JOB_TIMEOUT_MIN = 30.0
USER_AGENT = "iocscope-cortex-analyzer/1.0"

# Cortex dataType -> iocscope observable type. iocscope treats fqdn, hostname and
# domain as one family and detects the hash kind from the digest length.
SERVICE_TYPES = {
    "ip": "ip",
    "domain": "domain",
    "fqdn": "domain",
    "url": "url",
    "hash": "hash",
    "mail": "email",
}

# Taxonomy level per iocscope verdict. Cortex and TheHive accept only these four
# levels: info, safe, suspicious, malicious.
VERDICT_LEVELS = {
    "malicious": "malicious",
    "suspicious": "suspicious",
    "clean": "safe",
    "unknown": "info",
}

# Score thresholds used when the document carries no ``policy`` block; they are
# iocscope's defaults.
DEFAULT_MALICIOUS_AT = 75
DEFAULT_SUSPICIOUS_AT = 40

# Messages raised by cortexutils' TLP and PAP gates in Worker.__init__.
_TLP_GATE_MESSAGE = "TLP is higher than allowed."
_PAP_GATE_MESSAGE = "PAP is higher than allowed."


class ServiceError(Exception):
    """The iocscope call failed; the message is shown to the analyst in Cortex."""


class IocscopeAnalyzer(Analyzer):  # type: ignore[misc]
    def __init__(self, job_directory: str | None = None) -> None:
        # cortexutils applies the TLP and PAP gates inside this call.
        super().__init__(job_directory)
        self.api_key = self.get_param("config.api_key")
        if not self.api_key:
            self.error(
                "Missing api_key: set the iocscope API key in the analyzer "
                "configuration (create one with `iocscope keys create`)."
            )
        api_url = self.get_param("config.api_url") or DEFAULT_API_URL
        self.api_url = str(api_url).rstrip("/")
        self.timeout_s = self._positive_number("timeout_s", DEFAULT_TIMEOUT_S)
        job_timeout_min = self._positive_number("jobTimeout", DEFAULT_JOB_TIMEOUT_MIN)
        self.deadline = time.monotonic() + job_timeout_min * 60

    def _positive_number(self, name: str, default: float) -> float:
        value = self.get_param(f"config.{name}", default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.error(f"Invalid {name} {value!r}: expected a number above 0.")
        return float(value)

    def error(self, message: str, ensure_ascii: bool = False) -> None:
        """Write the failure report (secrets redacted by cortexutils) and exit 1."""
        if message == _TLP_GATE_MESSAGE:
            message = (
                f"TLP is higher than allowed: the observable has TLP {self.tlp} and "
                f"the analyzer's max_tlp is {self.max_tlp}. Raise max_tlp in the "
                "analyzer configuration to send such observables to iocscope."
            )
        elif message == _PAP_GATE_MESSAGE:
            message = (
                f"PAP is higher than allowed: the observable has PAP {self.pap} and "
                f"the analyzer's max_pap is {self.max_pap}."
            )
        super().error(message, ensure_ascii)

    def run(self) -> None:
        service_type = SERVICE_TYPES.get(self.data_type)
        if service_type is None:
            self.error(
                f"Unsupported data type {self.data_type!r}: the iocscope analyzer "
                f"accepts {', '.join(SERVICE_TYPES)}."
            )
        request = {"type": service_type, "value": self.get_data(), "tlp": self.tlp}
        try:
            document = self.enrich(request)
        except ServiceError as exc:
            self.error(str(exc))
        self.report(document)

    def enrich(self, request: dict[str, Any]) -> dict[str, Any]:
        """Call iocscope; after a 429, wait for Retry-After once if the job has time."""
        status, headers, body = self.post(request)
        if status == 429:
            wait_s = retry_after_seconds(headers.get("Retry-After"))
            # The retry itself may take up to timeout_s, so it must fit as well.
            time_left_s = self.deadline - time.monotonic() - self.timeout_s
            if wait_s is None or wait_s > time_left_s:
                raise ServiceError(self.rate_limit_message(body, wait_s, time_left_s))
            time.sleep(wait_s)
            status, headers, body = self.post(request)
            if status == 429:
                raise ServiceError(
                    f"iocscope at {self.api_url} is still rate limiting this API key "
                    f"after a {wait_s:g} s wait (HTTP 429): "
                    f"{error_detail(body)}. Run the analyzer again later."
                )
        return self.document(status, body)

    def post(self, request: dict[str, Any]) -> tuple[int, Message, bytes]:
        """Send one enrichment request; return the status, headers and body."""
        url = f"{self.api_url}/v1/ioc/enrich"
        if not url.startswith(("http://", "https://")):
            raise ServiceError(
                f"Invalid api_url {self.api_url!r}: expected an http:// or https:// "
                "URL such as http://127.0.0.1:8000."
            )
        http_request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url,
            data=json.dumps(request).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-API-Key": str(self.api_key),
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 (scheme checked above)
                http_request, timeout=self.timeout_s
            ) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise ServiceError(self.timeout_message()) from exc
            raise ServiceError(
                f"Could not connect to iocscope at {self.api_url}: {exc.reason}. "
                "Check that `iocscope serve` is running there, that api_url names "
                "its host and port, and that Cortex can reach it."
            ) from exc
        except TimeoutError as exc:
            raise ServiceError(self.timeout_message()) from exc
        except OSError as exc:
            raise ServiceError(
                f"Connection to iocscope at {self.api_url} failed: {exc}. "
                "Check that `iocscope serve` is running there."
            ) from exc

    def document(self, status: int, body: bytes) -> dict[str, Any]:
        """Return the /v1 document of a 200 response, or raise with the reason."""
        if status == 200:
            try:
                document = json.loads(body)
            except ValueError as exc:
                raise ServiceError(
                    f"iocscope at {self.api_url} returned invalid JSON "
                    f"({exc}); check that api_url points at an iocscope service."
                ) from exc
            if not isinstance(document, dict) or "verdict" not in document:
                raise ServiceError(
                    f"iocscope at {self.api_url} returned a response that is not "
                    "an enrichment document; check that api_url points at an "
                    "iocscope service."
                )
            return document
        detail = error_detail(body)
        if status == 401:
            raise ServiceError(
                f"iocscope at {self.api_url} rejected the API key (HTTP 401): "
                f"{detail}. Check api_key in the analyzer configuration."
            )
        if status == 402:
            raise ServiceError(
                f"The iocscope account behind this API key is out of credits "
                f"(HTTP 402): {detail}. Ask the iocscope administrator for more "
                "credits or a larger plan."
            )
        if status in (400, 422):
            raise ServiceError(
                f"iocscope rejected the observable (HTTP {status}): {detail}"
            )
        raise ServiceError(
            f"iocscope at {self.api_url} failed with HTTP {status}: {detail}"
        )

    def timeout_message(self) -> str:
        return (
            f"iocscope at {self.api_url} did not answer within {self.timeout_s:g} s. "
            "Check the service's health, or raise timeout_s in the analyzer "
            "configuration."
        )

    def rate_limit_message(
        self, body: bytes, wait_s: float | None, time_left_s: float
    ) -> str:
        prefix = (
            f"iocscope at {self.api_url} is rate limiting this API key (HTTP 429): "
            f"{error_detail(body)}."
        )
        if wait_s is None:
            return f"{prefix} The response had no usable Retry-After header."
        return (
            f"{prefix} Retry-After asks for {wait_s:g} s, more than the "
            f"{max(time_left_s, 0):.0f} s left before the job timeout. "
            "Run the analyzer again later."
        )

    def summary(self, raw: dict[str, Any]) -> dict[str, Any]:
        verdict = str(raw.get("verdict", "unknown"))
        score = raw.get("risk_score")
        flagged = raw.get("sources_flagged", 0)
        queried = raw.get("sources_queried", 0)
        return {
            "taxonomies": [
                self.build_taxonomy(
                    VERDICT_LEVELS.get(verdict, "info"), NAMESPACE, "Verdict", verdict
                ),
                self.build_taxonomy(score_level(raw), NAMESPACE, "Score", score),
                self.build_taxonomy(
                    "info", NAMESPACE, "Sources", f"{flagged}/{queried}"
                ),
            ]
        }

    def operations(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        verdict = str(raw.get("verdict", "unknown"))
        return [self.build_operation("AddTagToArtifact", tag=f"iocscope:{verdict}")]

    def artifacts(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        # cortexutils extracts artifacts unless told not to; Cortex sends
        # auto_extract_artifacts=false by default, and so does this analyzer when
        # neither key is set.
        extract = self.get_param(
            "config.auto_extract", self.get_param("config.auto_extract_artifacts")
        )
        if extract is True:
            # Extract from the observable's findings only: the document's own ids
            # (request_id is 32 hex digits) would come back as a false MD5.
            findings = {key: raw.get(key) for key in ("enrichment", "tags")}
            artifacts: list[dict[str, Any]] = super().artifacts(findings)
            return artifacts
        return []


def score_level(document: dict[str, Any]) -> str:
    """Map risk_score to a taxonomy level with the policy thresholds in the document.

    Below the suspicious threshold the score is ``safe`` only when the verdict is
    ``clean`` (sources answered without detections); an ``unknown`` verdict means
    nothing answered, so the level stays ``info``.
    """
    score = document.get("risk_score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        return "info"
    policy = document.get("policy")
    if not isinstance(policy, dict):
        policy = {}
    malicious_at = policy.get("malicious_at", DEFAULT_MALICIOUS_AT)
    suspicious_at = policy.get("suspicious_at", DEFAULT_SUSPICIOUS_AT)
    if score >= malicious_at:
        return "malicious"
    if score >= suspicious_at:
        return "suspicious"
    if document.get("verdict") == "clean":
        return "safe"
    return "info"


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After as delay seconds or an HTTP date; None when unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0)


def error_detail(body: bytes) -> str:
    """Return the message of iocscope's error envelope, with its request id."""
    try:
        payload = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text[:300] or "no details in the response"
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return json.dumps(payload)[:300]
    message = str(error.get("message") or error.get("code") or "no message")
    request_id = error.get("request_id")
    return f"{message} (request_id {request_id})" if request_id else message


if __name__ == "__main__":
    IocscopeAnalyzer().run()
    sys.exit(0)
