"""Routes about the service itself: sources, usage, health and metrics."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from iocscope.api.auth import require_tenant, service
from iocscope.api.errors import ApiError
from iocscope.api.schemas import (
    ErrorEnvelope,
    HealthResponse,
    SourceInfo,
    SourcesResponse,
    UsageResponse,
)
from iocscope.inventory import describe_sources
from iocscope.service.accounting import current_period
from iocscope.service.keys import Principal
from iocscope.service.state import option

log = structlog.get_logger(__name__)

router = APIRouter(tags=["service"])

Tenant = Annotated[Principal, Depends(require_tenant)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope} for status in (401, 429, 500)
}


@router.get("/v1/sources", response_model=SourcesResponse, responses=_ERRORS)
async def sources(request: Request, principal: Tenant) -> SourcesResponse:
    """List the enabled sources with their budgets and state; never a key."""
    rows = await describe_sources(service(request).engine)
    infos = [SourceInfo.model_validate(row) for row in rows]
    return SourcesResponse(sources=sorted(infos, key=lambda info: info.name))


@router.get("/v1/usage", response_model=UsageResponse, responses=_ERRORS)
async def usage(request: Request, principal: Tenant) -> UsageResponse:
    """Show the tenant's plan and spending in the current month."""
    state = service(request)
    plan = state.book.plan(principal.plan)
    balance = await state.ledger.balance(principal.tenant_id, plan.monthly_credits)
    by_type = await state.ledger.usage_by_type(principal.tenant_id)
    verdicts = await state.ledger.verdict_counts(principal.tenant_id)
    return UsageResponse.model_validate(
        {
            "tenant": principal.tenant_name,
            "plan": plan.name,
            "period": current_period(),
            "credits": {
                "limit": plan.monthly_credits,
                "used": balance.used,
                "remaining": balance.remaining,
            },
            "requests_per_minute": plan.requests_per_minute,
            "lookups": sum(entry["lookups"] for entry in by_type.values()),
            "by_type": by_type,
            "by_verdict": dict(verdicts),
            "costs": {kind.value: cost for kind, cost in state.book.costs.items()},
        }
    )


@router.get(
    "/healthz",
    response_model=HealthResponse,
    responses={503: {"model": ErrorEnvelope}},
)
async def healthz(request: Request) -> HealthResponse:
    """Check that the database answers; no authentication."""
    state = service(request)
    try:
        async with state.database.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        log.error("healthz.database.failed", error=type(exc).__name__)
        raise ApiError(
            503,
            "database_unavailable",
            "the database did not answer; check database_url and the server",
        ) from exc
    return HealthResponse(status="ok", database=state.database.dialect.name)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics; needs ``metrics_token`` as a Bearer token when it is set."""
    token = option(service(request).settings, "metrics_token", None)
    if token is not None:
        _check_metrics_token(request, str(_plain(token)))
    body = generate_latest(request.app.state.metrics.registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


def _plain(token: object) -> str:
    getter = getattr(token, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(token)


def _check_metrics_token(request: Request, expected: str) -> None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise ApiError(
            401,
            "invalid_metrics_token",
            "/metrics needs the configured metrics token as Authorization: Bearer",
        )
