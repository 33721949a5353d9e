"""Request and response bodies of the HTTP API, as they appear in /openapi.json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)

from iocscope.models import Report
from iocscope.service.webhooks import check_webhook_url

# Bulk requests up to this many items are answered in the response itself.
SYNC_BULK_MAX = 100
# Largest bulk request accepted at all.
BULK_MAX = 100_000
# Longest observable value accepted, in characters.
MAX_VALUE_CHARS = 8192

# Strict, so that JSON true/false are rejected instead of read as 1/0.
TlpValue = StrictStr | StrictInt | None


class EnrichRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=MAX_VALUE_CHARS, description="The observable.")
    type: str | None = Field(
        default=None,
        max_length=16,
        description="ip, cidr, domain, url, md5, sha1, sha256, sha512 or email; "
        "detected when left out.",
    )
    tlp: TlpValue = Field(
        default=None,
        description="TLP label (clear, green, amber, amber+strict, red) or Cortex "
        "number 0-3; the configured default when left out.",
    )
    refresh: bool = Field(default=False, description="Bypass the result cache.")


class BulkItemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=MAX_VALUE_CHARS)
    type: str | None = Field(default=None, max_length=16)
    tlp: TlpValue = None


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BulkItemRequest] = Field(min_length=1, max_length=BULK_MAX)
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Receives the finished job's summary as a signed JSON POST "
        "(jobs of more than 100 items only).",
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = check_webhook_url(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class ItemError(BaseModel):
    field: str
    value: Any = None
    message: str
    code: str


class BulkEntry(BaseModel):
    index: int
    result: Report | None = None
    error: ItemError | None = None


class BulkSummary(BaseModel):
    total: int
    succeeded: int
    failed: int
    unique: int
    by_verdict: dict[str, int]
    credits_charged: int


class BulkResponse(BaseModel):
    results: list[BulkEntry]
    summary: BulkSummary


class JobAccepted(BaseModel):
    job_id: str
    status: str
    status_url: str


class JobProgress(BaseModel):
    done: int
    total: int


class JobResponse(BaseModel):
    job_id: str
    status: Literal["queued", "running", "finished", "failed"]
    progress: JobProgress
    summary: BulkSummary | None = None
    error: str | None = None
    results: list[BulkEntry] | None = None
    offset: int
    limit: int
    next_offset: int | None = None


class SourceHealthInfo(BaseModel):
    quota_left: int | None
    breaker: str
    consecutive_failures: int
    # UNIX times.
    backoff_until: float | None
    last_error: str | None
    last_error_at: float | None


class SourceInfo(BaseModel):
    name: str
    description: str
    types: list[str]
    network: bool
    needs_key: bool
    key_configured: bool | None
    weight: float
    max_tlp: str
    timeout_s: float
    rate_limit: str | None
    daily_quota: int | None
    cost: str
    # ready, no key, offline, or a source's own state such as "feed not imported".
    status: str
    # Budget and circuit breaker of a network source; null for local sources.
    health: SourceHealthInfo | None


class SourcesResponse(BaseModel):
    sources: list[SourceInfo]


class CreditsUsage(BaseModel):
    limit: int
    used: int
    remaining: int


class TypeUsage(BaseModel):
    lookups: int
    credits: int


class UsageResponse(BaseModel):
    tenant: str
    plan: str
    period: str
    credits: CreditsUsage
    requests_per_minute: int
    lookups: int
    by_type: dict[str, TypeUsage]
    by_verdict: dict[str, int]
    costs: dict[str, int]


class HealthResponse(BaseModel):
    status: str
    database: str


class ErrorBody(BaseModel):
    type: str
    code: str
    message: str
    request_id: str
    field: str | None = None
    value: Any = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody
