"""Property-based API tests with schemathesis against the running server.

The schemathesis pytest plugin (4.32) fails under pytest 9 with "'Function'
object has no attribute '_nodeid'", so each operation's hypothesis strategy is
driven by hand here.

Requests are generated from /openapi.json; every response must be free of 5xx,
use a documented status code and content type, and match its documented schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks

from tests.api.service import RunningService, build_settings, run_server

FUZZ_PLAN = {"monthly_credits": 10_000_000, "requests_per_minute": 1_000_000}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    service_settings = build_settings(
        "sqlite", data_dir, service_plans={"fuzz": FUZZ_PLAN}
    )
    with run_server(service_settings) as service:
        service.extra["key"] = service.create_key("fuzz-tenant", "fuzz")
        yield service


@pytest.fixture(scope="module")
def api_schema(fuzz_service: RunningService) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_service.url}/openapi.json")


def test_api_conforms_to_schema(
    fuzz_service: RunningService, api_schema: schemathesis.BaseSchema
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:
        _fuzz(operation, fuzz_service.extra["key"])
    metrics = httpx.get(f"{fuzz_service.url}/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("iocscope_http_requests_total{")
    )
    assert served >= 50


def _fuzz(operation: schemathesis.APIOperation, key: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS, timeout=30)

    check()
