"""Sources used by engine tests, loaded through the entry-point group.

They are configured through module-level tables that each test sets, because an
entry point names a loader, not an instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from iocscope.errors import UpstreamError
from iocscope.models import (
    ALL_TYPES,
    Observable,
    ObservableType,
    SourceResult,
    Status,
    Verdict,
)
from iocscope.sources.base import Source, SourceContext, SourceSpec
from iocscope.sources.categories import classify_categories
from iocscope.sources.http import fetch
from iocscope.tlp import TLP

# value -> (verdict, summary) for the local list source.
LOCAL_LISTING: dict[str, tuple[Verdict, str]] = {}
# value -> answer for the "engines" source: (malicious engines, total engines).
ENGINE_COUNTS: dict[str, tuple[int, int]] = {}
# value -> vendor category for the "categories" source.
CATEGORIES: dict[str, str] = {}
# Base URL of the loopback server the external source calls.
EXTERNAL_URL: list[str] = []


class LocalListSource:
    spec = SourceSpec(
        name="test_local_list",
        types=ALL_TYPES,
        description="A local list for tests; never opens a connection.",
        weight=1.0,
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        listing = LOCAL_LISTING.get(observable.value)
        if listing is None:
            return SourceResult.not_found()
        verdict, summary = listing
        return SourceResult(status=Status.OK, verdict=verdict, summary=summary)


class ExternalSource:
    """Calls a loopback HTTP server, so tests can count outbound requests."""

    spec = SourceSpec(
        name="test_external",
        types=ALL_TYPES,
        description="An external vendor for tests, cleared up to TLP:AMBER.",
        network=True,
        max_tlp=TLP.AMBER,
        timeout_s=2.0,
    )

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def lookup(self, observable: Observable) -> SourceResult:
        answer = await fetch(
            self._client,
            "GET",
            f"{EXTERNAL_URL[0]}/lookup/{observable.value}",
            timeout_s=self.spec.timeout_s,
        )
        body = answer.json()
        return SourceResult(status=Status.OK, verdict=Verdict(body["verdict"]))


class EngineCountSource:
    """Reports how many scanning engines flag a URL, like a multi-AV service."""

    spec = SourceSpec(
        name="test_engines",
        types=frozenset({ObservableType.URL}),
        description="Multi-engine counts for tests.",
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        counts = ENGINE_COUNTS.get(observable.value)
        if counts is None:
            return SourceResult.not_found()
        flagged, total = counts
        if flagged == 0:
            verdict, confidence = Verdict.CLEAN, 0.6
        elif flagged < 3:
            verdict, confidence = Verdict.SUSPICIOUS, 0.2
        else:
            verdict, confidence = Verdict.MALICIOUS, 0.9
        return SourceResult(
            status=Status.OK,
            verdict=verdict,
            confidence=confidence,
            summary=f"{flagged}/{total} engines flag it",
            data={"detections": f"{flagged}/{total}"},
        )


class CategorySource:
    """Reports a vendor category, mapped through the shared category table."""

    spec = SourceSpec(
        name="test_categories",
        types=frozenset({ObservableType.URL, ObservableType.DOMAIN}),
        description="Vendor categories for tests.",
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        category = CATEGORIES.get(observable.value)
        if category is None:
            return SourceResult.not_found()
        matches = classify_categories([category])
        verdict = matches[0].verdict if matches else Verdict.UNKNOWN
        return SourceResult(
            status=Status.OK,
            verdict=verdict,
            summary=f"category {category}",
            data={"categories": [category]},
        )


class BrokenSource:
    spec = SourceSpec(
        name="test_broken",
        types=ALL_TYPES,
        description="Raises a bug-like exception on every lookup.",
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        raise ZeroDivisionError("a bug in a plugin")


class SlowSource:
    spec = SourceSpec(
        name="test_slow",
        types=ALL_TYPES,
        description="Answers after 30 seconds.",
        timeout_s=0.3,
    )

    async def lookup(self, observable: Observable) -> SourceResult:
        await asyncio.sleep(30)
        raise UpstreamError("unreachable")


def load_local(context: SourceContext) -> Iterable[Source]:
    return [LocalListSource()]


def load_external(context: SourceContext) -> Iterable[Source]:
    if context.http is None:
        return []
    return [ExternalSource(context.http)]


def load_scoring(context: SourceContext) -> Iterable[Source]:
    return [EngineCountSource(), CategorySource()]


def load_faulty(context: SourceContext) -> Iterable[Source]:
    return [BrokenSource(), SlowSource()]


def load_crashing_loader(context: SourceContext) -> Iterable[Source]:
    raise RuntimeError("this plugin cannot load")
