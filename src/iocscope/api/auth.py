"""Authentication and per-minute limits, as a FastAPI dependency.

The key comes from ``X-API-Key`` or ``Authorization: Bearer``. Messages about a
missing or rejected key never repeat the key.
"""

from __future__ import annotations

from fastapi import Request

from iocscope.api.errors import ApiError
from iocscope.api.middleware import response_headers
from iocscope.service.accounting import Balance
from iocscope.service.keys import Principal, authenticate
from iocscope.service.plans import Plan
from iocscope.service.state import ServiceState


def service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def require_tenant(request: Request) -> Principal:
    """Authenticate the request, count it against the plan's limit, set headers."""
    state = service(request)
    key = presented_key(request)
    if key is None:
        raise ApiError(
            401,
            "missing_api_key",
            "missing API key; send it in the X-API-Key header or as "
            "Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await authenticate(state.sessions, key)
    if principal is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "the API key is unknown or revoked; create one with `iocscope keys create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    plan = state.book.plan(principal.plan)
    await _count_request(request, state, principal, plan)
    return principal


async def _count_request(
    request: Request, state: ServiceState, principal: Principal, plan: Plan
) -> None:
    limit = await state.limiter.hit(principal.tenant_id, plan.requests_per_minute)
    headers = response_headers(request.scope)
    headers["X-RateLimit-Limit"] = str(limit.limit)
    headers["X-RateLimit-Remaining"] = str(limit.remaining)
    headers["X-RateLimit-Reset"] = str(limit.reset_s)
    balance = await state.ledger.balance(principal.tenant_id, plan.monthly_credits)
    set_credit_headers(request, balance)
    if not limit.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {plan.requests_per_minute} requests per minute for the "
            f"{plan.name} plan exceeded; retry after {limit.reset_s} s",
            headers={"Retry-After": str(limit.reset_s)},
        )


def set_credit_headers(request: Request, balance: Balance) -> None:
    headers = response_headers(request.scope)
    headers["X-Credits-Used"] = str(balance.used)
    headers["X-Credits-Remaining"] = str(balance.remaining)


def out_of_credits(plan: Plan, cost: int, balance: Balance) -> ApiError:
    return ApiError(
        402,
        "insufficient_credits",
        f"out of credits: this lookup costs {cost} and {balance.remaining} of the "
        f"{plan.name} plan's {plan.monthly_credits} monthly credits remain; "
        "upgrade the plan or wait for the next month",
    )
