"""Lookup routes: one observable, a bulk batch, and bulk job status."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from iocscope.api.auth import (
    out_of_credits,
    require_tenant,
    service,
    set_credit_headers,
)
from iocscope.api.errors import ApiError, request_id_of
from iocscope.api.metrics import Metrics
from iocscope.api.schemas import (
    BULK_MAX,
    SYNC_BULK_MAX,
    BulkRequest,
    BulkResponse,
    EnrichRequest,
    ErrorEnvelope,
    JobAccepted,
    JobResponse,
)
from iocscope.models import Credits, Report
from iocscope.service.accounting import Balance
from iocscope.service.bulk import BulkItem, BulkOutcome
from iocscope.service.keys import Principal
from iocscope.service.tables import BulkJob

router = APIRouter(prefix="/v1", tags=["lookups"])

Tenant = Annotated[Principal, Depends(require_tenant)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope} for status in (400, 401, 402, 404, 422, 429, 500)
}

# Results per page of a finished job when the request sets no ``limit``.
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


@router.post("/ioc/enrich", response_model=Report, responses=_ERRORS)
async def enrich(body: EnrichRequest, request: Request, principal: Tenant) -> Report:
    """Enrich one observable and charge its credits."""
    state = service(request)
    request_id = request_id_of(request)
    tlp = state.engine.resolve_tlp(body.tlp)
    observable = state.engine.parse(body.value, body.type)
    plan = state.book.plan(principal.plan)
    cost = state.book.cost(observable.type)
    reservation = await state.ledger.reserve(
        principal.tenant_id, cost, plan.monthly_credits
    )
    if reservation is None:
        balance = await state.ledger.balance(principal.tenant_id, plan.monthly_credits)
        raise out_of_credits(plan, cost, balance)
    try:
        report = await state.engine.enrich_observable(
            observable, tlp=tlp, refresh=body.refresh, request_id=request_id
        )
    except BaseException:
        await state.ledger.refund(reservation, reservation.cost)
        raise
    settlement = await state.ledger.settle(
        reservation, report, key_id=principal.key_id, request_id=request_id
    )
    balance = Balance(limit=plan.monthly_credits, used=settlement.used)
    set_credit_headers(request, balance)
    _metrics(request).lookup(report.verdict.value, settlement.charged)
    report.credits = Credits(charged=settlement.charged, remaining=balance.remaining)
    return report


@router.post(
    "/ioc/bulk",
    response_model=BulkResponse,
    responses={**_ERRORS, 202: {"model": JobAccepted}},
)
async def bulk(
    body: BulkRequest, request: Request, principal: Tenant
) -> BulkResponse | JSONResponse:
    """Enrich up to 100 items at once, or queue a job for up to 100,000."""
    state = service(request)
    plan = state.book.plan(principal.plan)
    balance = await state.ledger.balance(principal.tenant_id, plan.monthly_credits)
    if balance.remaining < state.book.cheapest:
        raise out_of_credits(plan, state.book.cheapest, balance)
    items = [
        BulkItem(value=i.value, type=i.type, tlp=_tlp_text(i.tlp)) for i in body.items
    ]
    if len(items) > SYNC_BULK_MAX:
        return await _queue_job(request, principal, items, body.webhook_url)
    outcome = await state.bulk.run(items, principal, request_id_of(request))
    _count_bulk(request, outcome)
    set_credit_headers(
        request, await state.ledger.balance(principal.tenant_id, plan.monthly_credits)
    )
    return BulkResponse.model_validate(
        {"results": outcome.results, "summary": outcome.summary}
    )


def _tlp_text(tlp: str | int | None) -> str | None:
    return None if tlp is None else str(tlp)


def _count_bulk(request: Request, outcome: BulkOutcome) -> None:
    metrics = _metrics(request)
    for entry in outcome.results:
        result = entry.get("result")
        if result is not None:
            charged = int((result.get("credits") or {}).get("charged") or 0)
            metrics.lookup(str(result["verdict"]), charged)


async def _queue_job(
    request: Request,
    principal: Principal,
    items: list[BulkItem],
    webhook_url: str | None,
) -> JSONResponse:
    state = service(request)
    job_id = await state.jobs.create(
        principal, items, webhook_url, request_id_of(request)
    )
    await state.dispatcher.submit(job_id)
    status_url = str(request.url_for("job_status", job_id=job_id))
    accepted = JobAccepted(job_id=job_id, status="queued", status_url=status_url)
    return JSONResponse(
        accepted.model_dump(), status_code=202, headers={"Location": status_url}
    )


@router.get(
    "/jobs/{job_id}",
    name="job_status",
    response_model=JobResponse,
    responses=_ERRORS,
)
async def job_status(
    job_id: str,
    request: Request,
    principal: Tenant,
    offset: Annotated[int, Query(ge=0, le=BULK_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> JobResponse:
    """Show a bulk job's status and progress, and its results once finished."""
    state = service(request)
    job = await state.jobs.get(job_id, principal.tenant_id)
    if job is None:
        raise ApiError(
            404,
            "job_not_found",
            f"no bulk job {job_id!r} for this tenant; use the job_id that "
            "POST /v1/ioc/bulk returned",
        )
    results = None
    next_offset = None
    if job.status == "finished":
        results = await state.jobs.results(job.id, offset, limit)
        if offset + len(results) < job.total:
            next_offset = offset + len(results)
    return _job_response(job, results, offset, limit, next_offset)


def _job_response(
    job: BulkJob,
    results: list[Any] | None,
    offset: int,
    limit: int,
    next_offset: int | None,
) -> JobResponse:
    return JobResponse.model_validate(
        {
            "job_id": job.id,
            "status": job.status,
            "progress": {"done": job.done, "total": job.total},
            "summary": json.loads(job.summary_json) if job.summary_json else None,
            "error": job.error,
            "results": results,
            "offset": offset,
            "limit": limit,
            "next_offset": next_offset,
        }
    )
