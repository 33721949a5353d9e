"""Bulk enrichment: parse every item, collapse duplicates, look up each once.

Items are parsed first. Items whose canonical type, value and TLP agree (after
refanging, case folding and trimming) share one engine call. Its report is
reused for each of them, and only the first is charged. Credits are reserved per
unique observable right before its engine call and settled right after it, so a
tenant that runs out mid-batch gets per-item errors for the rest and pays only
for what ran. A fixed pool of workers bounds how many engine calls run at once,
and so how many concurrent requests any one source sees.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
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


@dataclass
class BulkOutcome:
    # One entry per item, in input order: {"index", "result"} or {"index", "error"}.
    results: list[dict[str, Any]]
    summary: dict[str, Any]


def error_entry(
    index: int, field_name: str, value: object, message: str, code: str
) -> dict[str, Any]:
    echoed_value = value if isinstance(value, str | int | float | bool) else None
    return {
        "index": index,
        "error": {
            "field": field_name,
            "value": echoed_value,
            "message": message,
            "code": code,
        },
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
        self,
        items: Sequence[BulkItem],
        principal: Principal,
        request_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> BulkOutcome:
        # NOTE: every report stays in memory until the batch ends (about 36 KB
        # each, measured), so a 100,000-item job can need several GB. Writing
        # results to the database as items finish would bound this.
        entries: list[dict[str, Any] | None] = [None] * len(items)
        uniques = self._parse_all(items, entries)
        progress = _Progress(sum(e is not None for e in entries), on_progress)
        queue: asyncio.Queue[_Unique] = asyncio.Queue()
        for unique in uniques:
            queue.put_nowait(unique)
        plan = self._book.plan(principal.plan)
        workers = [
            self._work(queue, entries, principal, plan, request_id, progress)
            for _ in range(min(self._concurrency, max(1, len(uniques))))
        ]
        await asyncio.gather(*workers)
        results = [entry for entry in entries if entry is not None]
        return BulkOutcome(results=results, summary=summarize(results, len(uniques)))

    def _parse_all(
        self, items: Sequence[BulkItem], entries: list[dict[str, Any] | None]
    ) -> list[_Unique]:
        uniques: dict[tuple[str, str, str], _Unique] = {}
        for index, item in enumerate(items):
            try:
                tlp = self._engine.resolve_tlp(item.tlp)
                observable = self._engine.parse(item.value, item.type)
            except InvalidInput as exc:
                entries[index] = error_entry(
                    index, exc.field, exc.value, exc.message, exc.code
                )
                continue
            key = (observable.type.value, observable.value, tlp.label)
            unique = uniques.setdefault(key, _Unique(observable, tlp))
            unique.indexes.append(index)
        return list(uniques.values())

    async def _work(
        self,
        queue: asyncio.Queue[_Unique],
        entries: list[dict[str, Any] | None],
        principal: Principal,
        plan: Plan,
        request_id: str,
        progress: _Progress,
    ) -> None:
        while not queue.empty():
            unique = queue.get_nowait()
            for index, entry in self._lookup_entries(
                unique, await self._lookup(unique, principal, plan, request_id)
            ):
                entries[index] = entry
            await progress.add(len(unique.indexes))

    async def _lookup(
        self, unique: _Unique, principal: Principal, plan: Plan, request_id: str
    ) -> dict[str, Any]:
        """Look up one unique observable; return its first item's entry."""
        cost = self._book.cost(unique.observable.type)
        reservation = await self._ledger.reserve(
            principal.tenant_id, cost, plan.monthly_credits
        )
        if reservation is None:
            return error_entry(
                unique.indexes[0],
                "credits",
                None,
                f"out of credits: the {plan.name} plan's {plan.monthly_credits} "
                "credits for this month are spent; upgrade the plan or wait for "
                "the next month",
                "insufficient_credits",
            )
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
            return error_entry(
                unique.indexes[0],
                "value",
                unique.observable.input,
                "lookup failed with an internal error; retry later",
                "internal_error",
            )
        settlement = await self._ledger.settle(
            reservation, report, key_id=principal.key_id, request_id=request_id
        )
        report.credits = Credits(charged=settlement.charged)
        return {"index": unique.indexes[0], "result": report.model_dump(mode="json")}

    @staticmethod
    def _lookup_entries(
        unique: _Unique, first: dict[str, Any]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Copy the first item's entry to its duplicates; they are not charged."""
        pairs = [(unique.indexes[0], first)]
        for index in unique.indexes[1:]:
            if "result" in first:
                result = dict(first["result"])
                result["credits"] = {"charged": 0, "remaining": None}
                pairs.append((index, {"index": index, "result": result}))
            else:
                pairs.append((index, {"index": index, "error": first["error"]}))
        return pairs


class _Progress:
    def __init__(self, done: int, callback: ProgressCallback | None) -> None:
        self.done = done
        self._callback = callback

    async def add(self, count: int) -> None:
        self.done += count
        if self._callback is not None:
            await self._callback(self.done)


def summarize(results: Sequence[dict[str, Any]], unique: int) -> dict[str, Any]:
    verdicts: Counter[str] = Counter()
    credits = 0
    for entry in results:
        result = entry.get("result")
        if result is None:
            continue
        verdicts[str(result["verdict"])] += 1
        credits += int((result.get("credits") or {}).get("charged") or 0)
    succeeded = sum(verdicts.values())
    return {
        "total": len(results),
        "succeeded": succeeded,
        "failed": len(results) - succeeded,
        "unique": unique,
        "by_verdict": dict(sorted(verdicts.items())),
        "credits_charged": credits,
    }
