"""Typed data passed between the layers, and the /v1 enrichment document.

The field names ``risk_score``, ``verdict``, ``sources_queried``, ``sources_flagged``,
``enrichment`` and ``tags`` of :class:`Report` are read by existing integrations
(Cortex, TheHive, SOAR playbooks) and must not change.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ObservableType(StrEnum):
    IP = "ip"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    EMAIL = "email"


HASH_TYPES = frozenset(
    {
        ObservableType.MD5,
        ObservableType.SHA1,
        ObservableType.SHA256,
        ObservableType.SHA512,
    }
)
ALL_TYPES = frozenset(ObservableType)


class Observable(BaseModel):
    """A parsed, canonical observable.

    ``value`` is the canonical form every source and cache key uses; ``input`` is what
    the caller sent, unchanged.
    """

    model_config = ConfigDict(frozen=True)

    type: ObservableType
    value: str
    input: str
    refanged: bool = False
    # Domain, and the host of a URL or the domain of an email address.
    registered_domain: str | None = None
    is_public_suffix: bool = False
    # URL host or email domain, canonical (A-label, no trailing dot).
    host: str | None = None
    # Address scope for ip and cidr (and URLs with an IP-literal host): "global",
    # or a special-purpose class such as "private" or "documentation".
    scope: str | None = None

    @property
    def cache_key(self) -> str:
        return f"{self.type.value}:{self.value}"

    @property
    def routable(self) -> bool:
        return self.scope is None or self.scope == "global"


class Status(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    SKIPPED = "skipped"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    ERROR = "error"


ANSWERED = frozenset({Status.OK, Status.NOT_FOUND})
FAILED = frozenset({Status.RATE_LIMITED, Status.TIMEOUT, Status.ERROR})


class Verdict(StrEnum):
    MALICIOUS = "malicious"
    SUSPICIOUS = "suspicious"
    CLEAN = "clean"
    UNKNOWN = "unknown"


FLAGGING = frozenset({Verdict.MALICIOUS, Verdict.SUSPICIOUS})


class SourceResult(BaseModel):
    """One source's answer about one observable, as it appears in ``enrichment``."""

    status: Status
    verdict: Verdict | None = None
    # The vendor's own score mapped to 0-100, where it has one.
    score: int | None = Field(default=None, ge=0, le=100)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    summary: str | None = None
    # Why a source was skipped or failed: "tlp", "non-routable", "no key", ...
    reason: str | None = None
    # True when the source lists the observable as known-benign (an allow list).
    known_benign: bool = False
    tags: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    cached: bool = False
    age_s: int | None = None
    latency_ms: int | None = None
    retry_after_s: float | None = None

    @classmethod
    def skipped(cls, reason: str) -> SourceResult:
        return cls(status=Status.SKIPPED, reason=reason)

    @classmethod
    def not_found(cls, summary: str | None = None, **data: Any) -> SourceResult:
        return cls(status=Status.NOT_FOUND, summary=summary, data=data)

    @property
    def flagged(self) -> bool:
        return self.status is Status.OK and self.verdict in FLAGGING


class Explanation(BaseModel):
    source: str
    contribution: int
    reason: str


class PolicyInfo(BaseModel):
    name: str
    version: int
    malicious_at: int
    suspicious_at: int


class Credits(BaseModel):
    charged: int
    remaining: int | None = None


class ObservableInfo(BaseModel):
    type: ObservableType
    value: str
    input: str
    refanged: bool
    registered_domain: str | None = None
    is_public_suffix: bool = False
    scope: str | None = None

    @classmethod
    def of(cls, observable: Observable) -> ObservableInfo:
        return cls(
            type=observable.type,
            value=observable.value,
            input=observable.input,
            refanged=observable.refanged,
            registered_domain=observable.registered_domain,
            is_public_suffix=observable.is_public_suffix,
            scope=observable.scope,
        )


class Report(BaseModel):
    """The /v1 enrichment document."""

    observable: ObservableInfo
    risk_score: int = Field(ge=0, le=100)
    verdict: Verdict
    # Mean confidence of the sources that contributed to the score, 0-1.
    confidence: float | None = None
    sources_queried: int
    sources_flagged: int
    sources_failed: int
    sources_skipped: int
    enrichment: dict[str, SourceResult]
    tags: list[str]
    explanation: list[Explanation]
    policy: PolicyInfo
    tlp: str
    credits: Credits | None = None
    request_id: str
    generated_at: datetime
    elapsed_ms: int
