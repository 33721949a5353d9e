"""Bulk enrichment: parse every item, collapse duplicates, look up each once.

Items are parsed first. Items whose canonical type, value and TLP agree (after
refanging, case folding and trimming) form one group and share one engine call.
Its report is reused for each of them, and only the first is charged. Credits are
reserved per unique observable right before its engine call and settled right
after it, so a tenant that runs out mid-batch gets per-item errors for the rest
and pays only for what ran. A fixed pool of workers bounds how many engine calls
run at once, and so how many concurrent requests any one source sees.

Each group's outcome goes to a sink as soon as it is known, and the summary is
counted along the way. A bulk job's sink writes outcomes to the database, so a
job holds at most a few reports in memory whatever its size. The synchronous
path (at most 100 items) collects its entries in memory.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from iocscope.errors import InvalidInput
from iocscope.models import Credits, Observable
from iocscope.service.accounting import Ledger
from iocscope.service.keys import Principal
from iocscope.service.plans import Plan, PlanBook
from iocscope.tlp import TLP

if TYPE_CHECKING:
    from iocscope.engine import Engine

log = structlog.get_logger(__name__)

ProgressCallback = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class BulkItem:
    value: str
    type: str | None = None
    tlp: str | None = None


@dataclass
class _Unique:
    observable: Observable
    tlp: TLP
    indexes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class GroupOutcome:
    """The outcome shared by a group of items, in input order within the group.

    A group is one invalid item, or every item with one canonical observable.
    ``report`` is the report as JSON, with ``credits`` as charged to the first
    item, and the other items get the same report with 0 charged. ``error`` is
    an error body (``field``, ``value``, ``message``, ``code``). Exactly one of
    the two is set.
    """

    indexes: Sequence[int]
    report: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    charged: int = 0

    def entries(self) -> Iterator[dict[str, Any]]:
        """Yield one entry per item: a result or an error, with its index."""
        for position, index in enumerate(self.indexes):
            yield item_entry(index, self.report, self.error, first=position == 0)


OutcomeSink = Callable[[GroupOutcome], Awaitable[None]]


@dataclass
class BulkOutcome:
    # One entry per item, in input order: {"index", "result"} or {"index", "error"}.
    results: list[dict[str, Any]]
    summary: dict[str, Any]


def item_entry(
    index: int,
    report: dict[str, Any] | None,
    error: dict[str, Any] | None,
    *,
    first: bool,
) -> dict[str, Any]:
    """Build one item's entry from its group's report or error.

    Only the first item of a group keeps the report's charge, and its entry
    contains the given dict itself. The other items get shallow copies that
    charged 0 credits.
    """
    if report is None:
        return {"index": index, "error": error}
    if first:
        return {"index": index, "result": report}
    duplicate = dict(report)
    duplicate["credits"] = {"charged": 0, "remaining": None}
    return {"index": index, "result": duplicate}


def error_body(
    field_name: str, value: object, message: str, code: str
) -> dict[str, Any]:
    echoed_value = value if isinstance(value, str | int | float | bool) else None
    return {
        "field": field_name,
        "value": echoed_value,
        "message": message,
        "code": code,
    }


class SummaryTally:
    """The summary of a batch, counted one group outcome at a time."""

    def __init__(self) -> None:
        self.total = 0
        self.succeeded = 0
        self.unique = 0
        self.credits_charged = 0
        self.verdicts: Counter[str] = Counter()

    def add(self, outcome: GroupOutcome) -> None:
        count = len(outcome.indexes)
        self.total += count
        if outcome.report is None:
            return
        self.succeeded += count
        self.verdicts[str(outcome.report["verdict"])] += count
        self.credits_charged += outcome.charged

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.total - self.succeeded,
            "unique": self.unique,
            "by_verdict": dict(sorted(self.verdicts.items())),
            "credits_charged": self.credits_charged,
        }


class BulkRunner:
    def __init__(
        self, engine: Engine, ledger: Ledger, book: PlanBook, concurrency: int
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._book = book
        self._concurrency = max(1, concurrency)

    async def run(
        self, items: Sequence[BulkItem], principal: Principal, request_id: str
    ) -> BulkOutcome:
        """Run a batch and return every item's entry, in input order.

        All entries stay in memory, so this suits the synchronous path only.
        """
        entries: list[dict[str, Any] | None] = [None] * len(items)

        async def keep(outcome: GroupOutcome) -> None:
            for entry in outcome.entries():
                entries[entry["index"]] = entry

        summary = await self.stream(items, principal, request_id, keep)
        results = [entry for entry in entries if entry is not None]
        return BulkOutcome(results=results, summary=summary)

    async def stream(
        self,
        items: Sequence[BulkItem],
        principal: Principal,
        request_id: str,
        sink: OutcomeSink,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Run a batch, pass each group's outcome to ``sink`` and return the summary.

        ``sink`` is awaited once per group, from several workers at once, as
        soon as the group's outcome is known. Groups arrive in no fixed order.
        If a worker raises, the others are cancelled and the error is raised
        inside an ``ExceptionGroup``.
        """
        tally = SummaryTally()

        async def count_and_pass(outcome: GroupOutcome) -> None:
            tally.add(outcome)
            await sink(outcome)

        uniques = await self._parse_all(items, count_and_pass)
        tally.unique = len(uniques)
        progress = _Progress(tally.total, on_progress)
        queue: asyncio.Queue[_Unique] = asyncio.Queue()
        for unique in uniques:
            queue.put_nowait(unique)
        plan = self._book.plan(principal.plan)
        async with asyncio.TaskGroup() as workers:
            for _ in range(min(self._concurrency, max(1, len(uniques)))):
                workers.create_task(
                    self._work(
                        queue, count_and_pass, principal, plan, request_id, progress
                    )
                )
        return tally.as_dict()

    async def _parse_all(
        self, items: Sequence[BulkItem], sink: OutcomeSink
    ) -> list[_Unique]:
        """Group the valid items by canonical observable, and send invalid ones on."""
        uniques: dict[tuple[str, str, str], _Unique] = {}
        for index, item in enumerate(items):
            try:
                tlp = self._engine.resolve_tlp(item.tlp)
                observable = self._engine.parse(item.value, item.type)
            except InvalidInput as exc:
                error = error_body(exc.field, exc.value, exc.message, exc.code)
                await sink(GroupOutcome(indexes=[index], error=error))
                continue
            key = (observable.type.value, observable.value, tlp.label)
            unique = uniques.setdefault(key, _Unique(observable, tlp))
            unique.indexes.append(index)
        return list(uniques.values())

    async def _work(
        self,
        queue: asyncio.Queue[_Unique],
        sink: OutcomeSink,
        principal: Principal,
        plan: Plan,
        request_id: str,
        progress: _Progress,
    ) -> None:
        while not queue.empty():
            unique = queue.get_nowait()
            await sink(await self._lookup(unique, principal, plan, request_id))
            await progress.add(len(unique.indexes))

    async def _lookup(
        self, unique: _Unique, principal: Principal, plan: Plan, request_id: str
    ) -> GroupOutcome:
        """Look up one unique observable, charging its first item only."""
        cost = self._book.cost(unique.observable.type)
        reservation = await self._ledger.reserve(
            principal.tenant_id, cost, plan.monthly_credits
        )
        if reservation is None:
            error = error_body(
                "credits",
                None,
                f"out of credits: the {plan.name} plan's {plan.monthly_credits} "
                "credits for this month are spent; upgrade the plan or wait for "
                "the next month",
                "insufficient_credits",
            )
            return GroupOutcome(indexes=unique.indexes, error=error)
        try:
            report = await self._engine.enrich_observable(
                unique.observable, tlp=unique.tlp, request_id=request_id
            )
        except Exception:
            await self._ledger.refund(reservation, reservation.cost)
            log.exception(
                "bulk.lookup.failed",
                request_id=request_id,
                observable_type=unique.observable.type.value,
            )
            error = error_body(
                "value",
                unique.observable.input,
                "lookup failed with an internal error; retry later",
                "internal_error",
            )
            return GroupOutcome(indexes=unique.indexes, error=error)
        except BaseException:
            # Cancelled, for example because another worker failed: nothing ran
            # to the end, so nothing is charged.
            await self._ledger.refund(reservation, reservation.cost)
            raise
        settlement = await self._ledger.settle(
            reservation, report, key_id=principal.key_id, request_id=request_id
        )
        report.credits = Credits(charged=settlement.charged)
        return GroupOutcome(
            indexes=unique.indexes,
            report=report.model_dump(mode="json"),
            charged=settlement.charged,
        )


class _Progress:
    def __init__(self, done: int, callback: ProgressCallback | None) -> None:
        self.done = done
        self._callback = callback

    async def add(self, count: int) -> None:
        self.done += count
        if self._callback is not None:
            await self._callback(self.done)
