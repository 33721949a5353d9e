"""The credit ledger: reserve before a lookup, settle after it, record usage.

Every change to a balance is one conditional UPDATE whose row count shows whether
it applied, so concurrent requests on any number of processes can neither spend
past the plan nor lose a charge. This holds on SQLite and on PostgreSQL alike.

A lookup reserves its full cost up front. Once the report is in, the charge is
settled: a lookup that every queried source answered from the cache keeps
:data:`~iocscope.service.plans.CACHE_HIT_COST`, and a lookup that no source
answered (every one failed or was skipped) is refunded in full.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iocscope.models import ANSWERED, Report, Status
from iocscope.service.keys import now
from iocscope.service.plans import CACHE_HIT_COST
from iocscope.service.tables import CreditBalance, UsageRecord


def current_period(moment: datetime | None = None) -> str:
    """Return the billing period, a UTC calendar month such as ``2026-12``."""
    return (moment or now()).strftime("%Y-%m")


@dataclass(frozen=True)
class Reservation:
    tenant_id: int
    period: str
    cost: int
    # The period's credits used right after this reservation.
    used: int


@dataclass(frozen=True)
class Settlement:
    charged: int
    # The period's credits used right after settling.
    used: int


@dataclass(frozen=True)
class Balance:
    limit: int
    used: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def settled_cost(report: Report, full_cost: int) -> int:
    """Return what a finished lookup costs, given its full price."""
    queried = [r for r in report.enrichment.values() if r.status is not Status.SKIPPED]
    answered = [r for r in queried if r.status in ANSWERED]
    if not answered:
        return 0
    if all(r.cached for r in queried):
        return min(CACHE_HIT_COST, full_cost)
    return full_cost


class Ledger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def reserve(
        self, tenant_id: int, cost: int, limit: int, period: str | None = None
    ) -> Reservation | None:
        """Take ``cost`` credits, or return None when the plan has too few left."""
        period = period or current_period()
        statement = (
            update(CreditBalance)
            .where(
                CreditBalance.tenant_id == tenant_id,
                CreditBalance.period == period,
                CreditBalance.used + cost <= limit,
            )
            .values(used=CreditBalance.used + cost)
            .returning(CreditBalance.used)
        )
        async with self._sessions.begin() as session:
            used = (await session.execute(statement)).scalar_one_or_none()
            if used is None:
                # The row may be missing (first lookup of the month); create it
                # and try once more. A concurrent creator makes the insert a no-op.
                await self._ensure_row(session, tenant_id, period)
                used = (await session.execute(statement)).scalar_one_or_none()
        if used is None:
            return None
        return Reservation(tenant_id=tenant_id, period=period, cost=cost, used=used)

    async def refund(self, reservation: Reservation, amount: int) -> None:
        """Give back ``amount`` of a reservation's credits (never below zero)."""
        async with self._sessions.begin() as session:
            await self._refund(session, reservation, amount)

    async def _refund(
        self, session: AsyncSession, reservation: Reservation, amount: int
    ) -> int | None:
        """Refund in the caller's transaction; return the balance's new ``used``."""
        if amount <= 0:
            return None
        amount = min(amount, reservation.cost)
        statement = (
            update(CreditBalance)
            .where(
                CreditBalance.tenant_id == reservation.tenant_id,
                CreditBalance.period == reservation.period,
                CreditBalance.used >= amount,
            )
            .values(used=CreditBalance.used - amount)
            .returning(CreditBalance.used)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def settle(
        self,
        reservation: Reservation,
        report: Report,
        *,
        key_id: int | None,
        request_id: str,
    ) -> Settlement:
        """Adjust the reservation to the lookup's real cost and record its usage."""
        charged = settled_cost(report, reservation.cost)
        record = UsageRecord(
            tenant_id=reservation.tenant_id,
            key_id=key_id,
            period=reservation.period,
            created_at=now(),
            observable_type=report.observable.type.value,
            verdict=report.verdict.value,
            credits=charged,
            request_id=request_id,
        )
        async with self._sessions.begin() as session:
            used = await self._refund(session, reservation, reservation.cost - charged)
            session.add(record)
        if used is None:
            used = reservation.used
        return Settlement(charged=charged, used=used)

    async def balance(self, tenant_id: int, limit: int) -> Balance:
        query = select(CreditBalance.used).where(
            CreditBalance.tenant_id == tenant_id,
            CreditBalance.period == current_period(),
        )
        async with self._sessions() as session:
            used = await session.scalar(query)
        return Balance(limit=limit, used=used or 0)

    async def usage_by_type(self, tenant_id: int) -> dict[str, dict[str, int]]:
        """Return lookups and credits per observable type in the current period."""
        query = (
            select(
                UsageRecord.observable_type,
                func.count(),
                func.coalesce(func.sum(UsageRecord.credits), 0),
            )
            .where(
                UsageRecord.tenant_id == tenant_id,
                UsageRecord.period == current_period(),
            )
            .group_by(UsageRecord.observable_type)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {
            str(kind): {"lookups": int(count), "credits": int(credits)}
            for kind, count, credits in rows
        }

    async def verdict_counts(self, tenant_id: int) -> Counter[str]:
        query = (
            select(UsageRecord.verdict, func.count())
            .where(
                UsageRecord.tenant_id == tenant_id,
                UsageRecord.period == current_period(),
            )
            .group_by(UsageRecord.verdict)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return Counter({str(verdict): int(count) for verdict, count in rows})

    async def _ensure_row(
        self, session: AsyncSession, tenant_id: int, period: str
    ) -> None:
        """Create the period's balance row at zero unless it exists already."""
        dialect = session.bind.dialect.name if session.bind is not None else ""
        values = {"tenant_id": tenant_id, "period": period, "used": 0}
        if dialect == "postgresql":
            pg_insert = postgresql.insert(CreditBalance).values(values)
            await session.execute(pg_insert.on_conflict_do_nothing())
            return
        lite_insert = sqlite.insert(CreditBalance).values(values)
        await session.execute(lite_insert.on_conflict_do_nothing())
