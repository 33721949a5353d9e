"""CIRCL Passive DNS: which names and addresses a domain or IP resolved to, and when.

Docs: https://www.circl.lu/services/passive-dns/ (``GET /pdns/query/{value}``, HTTP
basic auth with CIRCL-issued credentials). The body is newline-delimited JSON in
the Passive DNS Common Output Format; an empty body means no records. Context only.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import HttpAnswer, clean_json, fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="circl_pdns",
    types=frozenset({ObservableType.DOMAIN, ObservableType.IP}),
    description="CIRCL Passive DNS: resolution history of a domain or an IP",
    network=True,
    # The engine skips the source while the password is unset. The user name is
    # read from circl_pdns_user.
    key_setting="circl_pdns_password",
    max_tlp=TLP.AMBER,
    timeout_s=10.0,
    # NOTE: CIRCL publishes no rate limit, so this is a conservative estimate.
    rate_limit="60/minute",
    cache_ttl_hit_s=21_600,
    cache_ttl_miss_s=3_600,
    weight=0.0,
    cost="free for CSIRTs and researchers; credentials on request from CIRCL",
)
PUBLIC_URL = "https://www.circl.lu"
# Records requested per query through CIRCL's pagination header, and kept in data.
# NOTE: the header is untested against the live service. A server that ignores
# it returns every record, up to the body size cap of fetch().
PAGE_SIZE = 500
MAX_RECORDS_KEPT = 50
LATEST_EPOCH = 4_102_444_800  # 2100-01-01T00:00:00Z


class CirclPassiveDNS:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        # Settings reads these with getattr, so a Settings without the fields
        # leaves the source skipped for "no key" instead of failing to load.
        self.user = settings.secret("circl_pdns_user")
        self.password = settings.secret("circl_pdns_password")
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = f"{self.base_url} page={PAGE_SIZE}"

    async def lookup(self, observable: Observable) -> SourceResult:
        if self.user is None or self.password is None:
            raise UpstreamError(
                "CIRCL passive DNS needs both circl_pdns_user and circl_pdns_password"
            )
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/pdns/query/{observable.value}",
            timeout_s=self.timeout_s,
            headers={
                "Authorization": f"Basic {token}",
                "dribble-paginate-count": str(PAGE_SIZE),
            },
        )
        records = parse_ndjson(answer)
        if not records:
            if answer.headers.get("x-dribble-errors"):
                raise UpstreamError("CIRCL passive DNS reported a server-side error")
            return SourceResult.not_found("no passive DNS records at CIRCL")
        return _map_records(records, truncated="x-dribble-cursor" in answer.headers)


def parse_ndjson(answer: HttpAnswer) -> list[dict[str, Any]]:
    """Parse one JSON object per non-empty line, or raise UpstreamError."""
    records = []
    for number, line in enumerate(answer.text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UpstreamError(
                f"CIRCL passive DNS line {number} is not JSON", http_status=200
            ) from None
        if not isinstance(record, dict) or "rrtype" not in record:
            raise UpstreamError(
                f"CIRCL passive DNS line {number} is not a DNS record", http_status=200
            )
        records.append(clean_json(record))
    return records


def _map_records(records: list[dict[str, Any]], *, truncated: bool) -> SourceResult:
    records.sort(key=lambda r: _epoch(r.get("time_last")) or 0, reverse=True)
    firsts = [t for r in records if (t := _epoch(r.get("time_first"))) is not None]
    lasts = [t for r in records if (t := _epoch(r.get("time_last"))) is not None]
    rrtypes = Counter(str(r.get("rrtype")) for r in records)
    types_text = ", ".join(f"{name} {count}" for name, count in sorted(rrtypes.items()))
    summary = f"{len(records)} passive DNS records ({types_text})"
    if firsts and lasts:
        summary += f"; first seen {_day(min(firsts))}, last seen {_day(max(lasts))}"
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.UNKNOWN,
        summary=summary,
        data={
            "record_count": len(records),
            "truncated": truncated,
            "first_seen": _iso(min(firsts)) if firsts else None,
            "last_seen": _iso(max(lasts)) if lasts else None,
            "rrtypes": dict(sorted(rrtypes.items())),
            "records": [_record(r) for r in records[:MAX_RECORDS_KEPT]],
        },
    )


def _record(record: dict[str, Any]) -> dict[str, Any]:
    rdata = record.get("rdata")
    first, last = _epoch(record.get("time_first")), _epoch(record.get("time_last"))
    return {
        "rrname": record.get("rrname"),
        "rrtype": record.get("rrtype"),
        # Newer servers send a list of strings, older ones a single string.
        "rdata": [str(item) for item in rdata] if isinstance(rdata, list) else [rdata],
        "time_first": _iso(first) if first is not None else None,
        "time_last": _iso(last) if last is not None else None,
        "count": record.get("count"),
    }


def _epoch(value: Any) -> int | None:
    """Return epoch seconds between 1970 and 2100, or None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if 0 <= value < LATEST_EPOCH else None


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _day(epoch: int) -> str:
    return _iso(epoch)[:10]


def load(context: SourceContext) -> list[Source]:
    """Build the passive DNS source. The engine skips it while no password is set."""
    if context.http is None:
        return []
    return [CirclPassiveDNS(context.settings, context.http)]
