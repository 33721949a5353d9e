"""Local feed sources: one per block or context feed in the feed catalog.

Each source looks observables up in the feed store, without network access. A listing
gives the feed's verdict (malicious, suspicious, or ``unknown`` for context
feeds such as Tor exits) with a summary and tags built from the matched
entry. A feed that was never imported is ``skipped``. Spamhaus ASN-DROP has
no source, because no observable type carries an AS number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iocscope.feeds.catalog import FEEDS, FeedDefinition, FeedRole
from iocscope.feeds.lookup import find_matches
from iocscope.feeds.store import FeedInfo, FeedStore, Match
from iocscope.feeds.templates import render_summary, render_tags
from iocscope.models import Observable, SourceResult, Status
from iocscope.sources.base import Source, SourceContext, SourceSpec

NOT_IMPORTED = (
    "feed not imported; run `iocscope feeds import` or `iocscope feeds update`"
)
# Matches listed in ``data``. The total is always given as ``match_count``.
MAX_REPORTED_MATCHES = 20
_TIMEOUT_S = 2.0


class FeedSource:
    """Source for one catalog feed, querying all its stored parts."""

    def __init__(self, definition: FeedDefinition, store: FeedStore) -> None:
        self.definition = definition
        self.spec = SourceSpec(
            name=definition.name,
            types=definition.types,
            description=definition.description,
            network=False,
            timeout_s=_TIMEOUT_S,
            weight=definition.weight,
            tags=("feed", definition.role.value),
        )
        self._store = store

    async def lookup(self, observable: Observable) -> SourceResult:
        feeds = self._store.feed_family(self.definition.name)
        if not feeds:
            return SourceResult.skipped(NOT_IMPORTED)
        matches = find_matches(self._store, [info.name for info in feeds], observable)
        if not matches:
            return SourceResult.not_found()
        return feed_result(self.definition, feeds, matches)

    def status(self) -> str:
        """Describe the feed's state for `iocscope sources` and GET /v1/sources."""
        feeds = self._store.feed_family(self.definition.name)
        if not feeds:
            return "not imported"
        entries = sum(info.entry_count for info in feeds)
        return f"ready ({entries:,} entries)"


def feed_result(
    definition: FeedDefinition, feeds: Sequence[FeedInfo], matches: Sequence[Match]
) -> SourceResult:
    """Build the ``ok`` result for a listing in ``definition``'s feed."""
    first = matches[0]
    return SourceResult(
        status=Status.OK,
        verdict=definition.verdict,
        confidence=_confidence(definition, matches),
        summary=describe(definition, feeds, first),
        tags=render_tags(definition.tags, [match.context for match in matches]),
        data=match_data(matches),
    )


def describe(
    definition: FeedDefinition, feeds: Sequence[FeedInfo], match: Match
) -> str:
    """Render the feed's summary for one match, naming the URL host when the
    match came through it."""
    meta = next((info.meta for info in feeds if info.name == match.feed), {})
    fields = {**meta, **match.context, "title": definition.title, "matched": match.key}
    summary = render_summary(definition.summaries, fields)
    if match.via == "host":
        summary += f" (matched the URL host {match.key})"
    return summary


def match_data(matches: Sequence[Match]) -> dict[str, Any]:
    return {
        "match_count": len(matches),
        "matches": [match.as_dict() for match in matches[:MAX_REPORTED_MATCHES]],
    }


def _confidence(definition: FeedDefinition, matches: Sequence[Match]) -> float:
    """Return the feed's confidence, or the highest 0-100 confidence the
    matched entries carry in ``confidence_field``, scaled to 0-1."""
    field = definition.confidence_field
    values: list[int] = [
        match.context[field]
        for match in matches
        if field and isinstance(match.context.get(field), int)
    ]
    if not values:
        return definition.confidence
    return max(0.0, min(1.0, max(values) / 100))


def load(context: SourceContext) -> list[Source]:
    """Return one source for every block or context feed that serves at
    least one observable type."""
    return [
        FeedSource(definition, context.store)
        for definition in FEEDS
        if definition.role is not FeedRole.ALLOW and definition.types
    ]
