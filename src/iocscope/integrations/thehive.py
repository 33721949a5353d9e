"""Push iocscope verdicts into TheHive 5 through its v1 API (with thehive4py).

For each supported observable the sync sets two tags, ``iocscope:<verdict>`` and
``iocscope:score=<n>``, and removes the older iocscope verdict and score tags. For a
case it also writes one Markdown comment with a table of the results. The comment
ends with a marker line. A later run finds that line and edits the comment instead
of adding a second one, or leaves it alone when the text is unchanged.

``poll_new_observables`` enriches observables created since the previous poll. It
keeps its position in a JSON state file, so a restart neither repeats nor skips
work.

thehive4py is synchronous (requests), so every TheHive call runs in a worker
thread to keep the event loop free for the enrichments.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import requests
import requests.adapters
import structlog
from thehive4py.client import TheHiveApi
from thehive4py.errors import TheHiveError
from thehive4py.query.filters import Gte
from thehive4py.query.page import Paginate
from thehive4py.query.sort import Asc, Desc
from urllib3 import Retry

from iocscope.errors import InvalidInput, IocscopeError
from iocscope.integrations.enrichers import Enricher
from iocscope.models import Report, Verdict
from iocscope.tlp import TLP, parse_tlp

log = structlog.get_logger(__name__)

T = TypeVar("T")

# TheHive dataType -> iocscope type. fqdn and hostname are domains to iocscope,
# and the hash kind is detected from the digest length.
SUPPORTED_DATA_TYPES = {
    "ip": "ip",
    "domain": "domain",
    "fqdn": "domain",
    "hostname": "domain",
    "url": "url",
    "hash": "hash",
    "mail": "email",
}

TAG_PREFIX = "iocscope:"
SCORE_TAG_PREFIX = "iocscope:score="
VERDICT_TAGS = frozenset(f"{TAG_PREFIX}{verdict.value}" for verdict in Verdict)
COMMENT_HEADING = "#### iocscope enrichment"
COMMENT_MARKER = (
    "_Written by `iocscope thehive enrich-case`; running it again updates this "
    "comment._"
)
PAGE_SIZE = 200
# Explanation entries shown per observable in the case comment.
TOP_REASONS = 3

# Retry transient 5xx responses for GET and PATCH, because tag deltas and comment
# edits give the same result when repeated. POST is never retried, so a comment is
# not created twice, and a failed query (also a POST) waits for the next run.
RETRY = Retry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=[502, 503, 504],
    allowed_methods=["GET", "PATCH"],
    raise_on_status=False,
)


class TheHiveUnavailable(IocscopeError):
    """A TheHive call failed: connection, TLS, timeout or an HTTP error."""

    code = "thehive_unavailable"


@dataclass(frozen=True)
class TheHiveConnection:
    url: str
    api_key: str
    organisation: str | None = None
    # True, False, or the path of a CA bundle file.
    verify_tls: bool | str = True
    # Seconds each HTTP call to TheHive may take (connect and read).
    timeout_s: float = 30.0


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Applies a default timeout, because thehive4py passes none to requests."""

    def __init__(self, timeout_s: float, max_retries: Retry) -> None:
        super().__init__(max_retries=max_retries)
        self.timeout_s = timeout_s

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


def connect(connection: TheHiveConnection) -> TheHiveApi:
    """Create a thehive4py client with timeouts and POST-safe retries."""
    api = TheHiveApi(
        url=connection.url,
        apikey=connection.api_key,
        organisation=connection.organisation,
        verify=connection.verify_tls,
        max_retries=RETRY,
    )
    adapter = _TimeoutAdapter(connection.timeout_s, RETRY)
    api.session.mount("http://", adapter)
    api.session.mount("https://", adapter)
    return api


class Outcome(StrEnum):
    ENRICHED = "enriched"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class ObservableResult:
    observable_id: str
    data_type: str
    data: str
    outcome: Outcome
    reason: str | None = None
    report: Report | None = None
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)


class CommentAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NONE = "none"


@dataclass
class CaseResult:
    case_id: str
    observables: list[ObservableResult]
    comment: CommentAction


def observable_tlp(observable: Mapping[str, Any]) -> TLP:
    """Return an observable's TLP, preferring TheHive 5's ``tlpLabel``.

    TheHive 5.2 and later number AMBER+STRICT 3 and RED 4, but TheHive 4 numbered
    RED 3. The label removes the doubt; a bare number 3 is read as red, the
    stricter meaning.
    """
    label = observable.get("tlpLabel")
    if isinstance(label, str) and label:
        try:
            return parse_tlp(label)
        except InvalidInput:
            pass
    return parse_tlp(observable.get("tlp", 2))


def tag_changes(current: Iterable[str], report: Report) -> tuple[list[str], list[str]]:
    """Return the tags to add and to remove so iocscope's tags match ``report``."""
    existing = list(current)
    expected = [
        f"{TAG_PREFIX}{report.verdict.value}",
        f"{SCORE_TAG_PREFIX}{report.risk_score}",
    ]
    stale = [
        tag
        for tag in existing
        if (tag in VERDICT_TAGS or tag.startswith(SCORE_TAG_PREFIX))
        and tag not in expected
    ]
    missing = [tag for tag in expected if tag not in existing]
    return missing, stale


class TheHiveSync:
    def __init__(
        self, api: TheHiveApi, enricher: Enricher, *, max_tlp: TLP = TLP.AMBER
    ) -> None:
        self.api = api
        self.enricher = enricher
        self.max_tlp = max_tlp

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run one thehive4py call in a thread; raise TheHiveUnavailable on error."""
        try:
            return await asyncio.to_thread(function, *args)
        except TheHiveError as exc:
            raise TheHiveUnavailable(f"TheHive request failed: {exc}") from exc
        except requests.RequestException as exc:
            raise TheHiveUnavailable(
                f"could not reach TheHive at {self.api.session.hive_url}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def enrich_case(self, case_id: str) -> CaseResult:
        """Enrich and tag every observable of a case, then write the comment."""
        observables = await self._case_observables(case_id)
        results = [await self.enrich_observable(o) for o in observables]
        comment = await self._write_comment(case_id, results)
        return CaseResult(case_id=case_id, observables=results, comment=comment)

    async def _case_observables(self, case_id: str) -> list[Mapping[str, Any]]:
        observables: list[Mapping[str, Any]] = []
        while True:
            page = await self._call(
                lambda: self.api.case.find_observables(
                    case_id,
                    sortby=Asc("_createdAt"),
                    paginate=Paginate(len(observables), len(observables) + PAGE_SIZE),
                )
            )
            observables.extend(page)
            if len(page) < PAGE_SIZE:
                return observables

    async def enrich_observable(
        self, observable: Mapping[str, Any]
    ) -> ObservableResult:
        """Enrich one observable and set its tags; skip what must not be sent."""
        result = ObservableResult(
            observable_id=str(observable["_id"]),
            data_type=str(observable.get("dataType", "")),
            data=str(observable.get("data", "")),
            outcome=Outcome.SKIPPED,
        )

        type_hint = SUPPORTED_DATA_TYPES.get(result.data_type)
        if type_hint is None:
            result.reason = f"data type {result.data_type!r} is not supported"
            return result
        if not result.data:
            result.reason = "the observable has no data (an attachment)"
            return result
        try:
            tlp = observable_tlp(observable)
        except InvalidInput as exc:
            result.outcome, result.reason = Outcome.FAILED, exc.message
            return result
        if tlp > self.max_tlp:
            result.reason = (
                f"TLP:{tlp.label.upper()} is above the configured maximum "
                f"TLP:{self.max_tlp.label.upper()}"
            )
            return result

        try:
            report = await self.enricher.enrich(result.data, type_hint, tlp)
        except InvalidInput as exc:
            result.outcome, result.reason = Outcome.FAILED, exc.message
            return result
        result.report = report
        result.outcome = Outcome.ENRICHED

        added, removed = tag_changes(observable.get("tags") or [], report)
        if added or removed:
            fields: dict[str, Any] = {}
            if added:
                fields["addTags"] = added
            if removed:
                fields["removeTags"] = removed
            await self._call(self.api.observable.update, result.observable_id, fields)
            result.tags_added, result.tags_removed = added, removed
        return result

    async def _write_comment(
        self, case_id: str, results: list[ObservableResult]
    ) -> CommentAction:
        if not results:
            return CommentAction.NONE
        message = render_comment(results)
        comments = await self._call(self.api.case.find_comments, case_id)
        previous = [c for c in comments if COMMENT_MARKER in str(c.get("message", ""))]
        if not previous:
            await self._call(
                self.api.comment.create_in_case, case_id, {"message": message}
            )
            return CommentAction.CREATED
        # Should several marked comments exist (edited by hand), the oldest is kept
        # current and the others are left as they are.
        oldest = min(previous, key=lambda c: int(c.get("createdAt", 0)))
        if str(oldest.get("message", "")).strip() == message.strip():
            return CommentAction.UNCHANGED
        await self._call(
            self.api.comment.update, str(oldest["_id"]), {"message": message}
        )
        return CommentAction.UPDATED

    async def poll_new_observables(self, state_file: Path) -> list[ObservableResult]:
        """Enrich observables of cases and alerts created since the previous poll.

        The first poll of a state file only records the newest existing
        observable, so existing observables are not enriched. When the enricher
        is unavailable (EnrichmentUnavailable), the poll stops before that
        observable, which is retried next time. Watch mode tags observables
        but writes no case comment.

        NOTE: that ``listObservable`` returns alert observables as well as case
        observables is taken from TheHive 5's documentation and checked only
        against the test emulator, not a live TheHive.
        """
        state = WatchState.load(state_file)
        if state is None:
            state = await self._initial_state()
            state.save(state_file)
            log.info("thehive.watch.started_from", since_ms=state.since_ms)
            return []
        results: list[ObservableResult] = []
        while True:
            batch = await self._call(
                lambda: self.api.observable.find(
                    filters=Gte("_createdAt", state.since_ms),
                    sortby=Asc("_createdAt"),
                    paginate=Paginate(0, PAGE_SIZE),
                )
            )
            fresh = [o for o in batch if str(o["_id"]) not in state.seen_ids]
            try:
                for observable in fresh:
                    results.append(await self.enrich_observable(observable))
                    state.advance(int(observable["_createdAt"]), str(observable["_id"]))
            finally:
                # Progress made before an EnrichmentUnavailable or a TheHive error
                # is kept; the observable that failed is retried next time.
                state.save(state_file)
            if len(batch) < PAGE_SIZE or not fresh:
                return results

    async def _initial_state(self) -> WatchState:
        newest = await self._call(
            lambda: self.api.observable.find(
                sortby=Desc("_createdAt"), paginate=Paginate(0, 1)
            )
        )
        if not newest:
            return WatchState(since_ms=0, seen_ids=[])
        latest = newest[0]
        return WatchState(
            since_ms=int(latest["_createdAt"]), seen_ids=[str(latest["_id"])]
        )


@dataclass
class WatchState:
    """Polling position: the newest ``_createdAt`` handled, in epoch ms.

    ``seen_ids`` lists the observables created at exactly that millisecond that
    were already handled, because the next query filters on
    ``_createdAt >= since``.
    """

    since_ms: int
    seen_ids: list[str]

    def advance(self, created_at_ms: int, observable_id: str) -> None:
        if created_at_ms > self.since_ms:
            self.since_ms, self.seen_ids = created_at_ms, []
        if observable_id not in self.seen_ids:
            self.seen_ids.append(observable_id)

    @classmethod
    def load(cls, path: Path) -> WatchState | None:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                since_ms=int(payload["since_ms"]),
                seen_ids=[str(i) for i in payload["seen_ids"]],
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IocscopeError(
                f"cannot read the watch state file {path}: {exc!r}; delete it to "
                "start again from the newest observable"
            ) from exc

    def save(self, path: Path) -> None:
        """Write the state atomically (a temporary file, then a rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        payload = {"since_ms": self.since_ms, "seen_ids": self.seen_ids}
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(temporary, path)


def render_comment(results: Iterable[ObservableResult]) -> str:
    """Render the case comment: one table row per observable, then the marker."""
    ordered = sorted(results, key=lambda r: (r.outcome != Outcome.ENRICHED, r.data))
    lines = [
        COMMENT_HEADING,
        "",
        "| Observable | Type | Verdict | Score | Flagged/queried | Top reasons |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in ordered:
        lines.append(_comment_row(result))
    lines += ["", COMMENT_MARKER]
    return "\n".join(lines)


def _comment_row(result: ObservableResult) -> str:
    value = f"`{_cell(result.data).replace('`', '')}`"
    report = result.report
    if report is None:
        status = "not enriched" if result.outcome == Outcome.SKIPPED else "failed"
        cells = [value, _cell(result.data_type), status, "", "", _cell(result.reason)]
    else:
        top = sorted(report.explanation, key=lambda e: e.contribution, reverse=True)
        reasons = "; ".join(
            f"{e.source}: {e.reason} ({e.contribution:+d})" for e in top[:TOP_REASONS]
        )
        cells = [
            value,
            _cell(result.data_type),
            report.verdict.value,
            str(report.risk_score),
            f"{report.sources_flagged}/{report.sources_queried}",
            _cell(reasons) or "no source flagged it",
        ]
    return "| " + " | ".join(cells) + " |"


def _cell(text: str | None) -> str:
    """Make text safe for one Markdown table cell."""
    if not text:
        return ""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
