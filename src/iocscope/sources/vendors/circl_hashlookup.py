"""CIRCL hashlookup: is an MD5, SHA-1 or SHA-256 a known file (NSRL, OS packages)?

Docs: https://hashlookup.circl.lu/ (``GET /lookup/{md5|sha1|sha256}/{hash}``), no
key. A 200 means a known-files database lists the hash, which is a clean signal
unless the response also carries ``KnownMalicious``. A 404 means an unknown hash.
"""

from __future__ import annotations

from typing import Any

import httpx

from iocscope.config import Settings
from iocscope.errors import UpstreamError
from iocscope.models import Observable, ObservableType, SourceResult, Status, Verdict
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

SPEC = SourceSpec(
    name="circl_hashlookup",
    types=frozenset({ObservableType.MD5, ObservableType.SHA1, ObservableType.SHA256}),
    description="CIRCL hashlookup: known files (NSRL, OS packages) by hash",
    network=True,
    max_tlp=TLP.AMBER,
    timeout_s=5.0,
    # NOTE: CIRCL publishes no quota, so this is a polite estimate.
    rate_limit="60/minute",
    cache_ttl_hit_s=86_400,
    cache_ttl_miss_s=86_400,
    weight=1.0,
    cost="free, no account",
)
PUBLIC_URL = "https://hashlookup.circl.lu"
MAX_PARENTS = 5


class CirclHashlookup:
    spec = SPEC

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.base_url = settings.source_endpoints.get(SPEC.name, PUBLIC_URL).rstrip("/")
        self.timeout_s = settings.source_timeouts.get(SPEC.name, SPEC.timeout_s)
        self.fingerprint = self.base_url

    async def lookup(self, observable: Observable) -> SourceResult:
        answer = await fetch(
            self.client,
            "GET",
            f"{self.base_url}/lookup/{observable.type.value}/{observable.value}",
            timeout_s=self.timeout_s,
            ok_statuses=frozenset({200, 400, 404}),
        )
        body = answer.json()
        if not isinstance(body, dict):
            raise UpstreamError("hashlookup returned JSON that is not an object")
        message = str(body.get("message") or "")[:200]
        if answer.status_code == 404 and message.startswith("Non existing"):
            return SourceResult.not_found("not in CIRCL hashlookup")
        if answer.status_code != 200:
            raise UpstreamError(
                f"hashlookup rejected the hash (HTTP {answer.status_code}): "
                f"{message or 'no message'}",
                http_status=answer.status_code,
            )
        return _map_known(body)


def _map_known(body: dict[str, Any]) -> SourceResult:
    # A 200 without a named set still means hashlookup's own known-files data.
    databases = _databases(body)
    known_sets = databases or ["hashlookup"]
    flagged_by = _flagged_by(body.get("KnownMalicious"))
    trust = body.get("hashlookup:trust")
    malicious_tags = [f"known-malicious:{name.lower()}" for name in flagged_by]
    name = body.get("FileName") or "unnamed file"
    data = {
        "file_name": body.get("FileName"),
        "file_size": body.get("FileSize"),
        "md5": body.get("MD5"),
        "sha1": body.get("SHA-1"),
        "sha256": body.get("SHA-256"),
        "databases": known_sets,
        "known_malicious": flagged_by,
        "trust": trust,
        "parent_total": body.get("hashlookup:parent-total"),
        "parents": _parents(body.get("parents")),
        "product": _product(body.get("ProductCode")),
    }
    if flagged_by:
        return SourceResult(
            status=Status.OK,
            verdict=Verdict.MALICIOUS,
            score=80,
            # Lower when a known-files database lists the same hash.
            confidence=0.6 if databases else 0.8,
            summary=f"known malicious ({', '.join(flagged_by)}): {name}",
            tags=[f"known-file:{db}" for db in databases] + malicious_tags,
            data=data,
        )
    return SourceResult(
        status=Status.OK,
        verdict=Verdict.CLEAN,
        score=0,
        # hashlookup:trust is 0-100, where 50 is neutral and more sources raise it.
        confidence=trust / 100 if isinstance(trust, int) and 0 <= trust <= 100 else 0.7,
        known_benign=True,
        summary=f"known file in {', '.join(known_sets)}: {name}",
        tags=[f"known-file:{db}" for db in known_sets],
        data=data,
    )


def _databases(body: dict[str, Any]) -> list[str]:
    """Name the known-file sets behind a hit: NSRL, OS packages or the ``db`` field."""
    names: list[str] = []
    db = str(body.get("db") or "").lower()
    nsrl_fields = ("ProductCode", "OpSystemCode", "RDS:package_id")
    if db.startswith("nsrl") or any(field in body for field in nsrl_fields):
        names.append("nsrl")
    elif db:
        names.append(db)
    parents = body.get("parents")
    if isinstance(parents, list) and any(
        isinstance(p, dict) and p.get("PackageName") for p in parents
    ):
        names.append("os-package")
    return names


def _flagged_by(value: Any) -> list[str]:
    """Return the sources in ``KnownMalicious``: a string or a list of strings."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [str(item) for item in value if item]
    return []


def _parents(parents: Any) -> list[dict[str, Any]]:
    if not isinstance(parents, list):
        return []
    return [
        {
            "package": parent.get("PackageName"),
            "version": parent.get("PackageVersion"),
            "sha1": parent.get("SHA-1"),
        }
        for parent in parents[:MAX_PARENTS]
        if isinstance(parent, dict)
    ]


def _product(product: Any) -> dict[str, Any] | None:
    """Return the NSRL product when the response nests it, or None."""
    if not isinstance(product, dict):
        return None
    return {
        "name": product.get("ProductName"),
        "version": product.get("ProductVersion"),
        "application_type": product.get("ApplicationType"),
    }


def load(context: SourceContext) -> list[Source]:
    """Build the hashlookup source, which needs the shared HTTP client and no key."""
    if context.http is None:
        return []
    return [CirclHashlookup(context.settings, context.http)]
