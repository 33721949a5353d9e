"""Render reports for a terminal: JSON and a readable table."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from iocscope.models import Report, SourceResult, Status, Verdict

VERDICT_STYLES = {
    Verdict.MALICIOUS: "bold red",
    Verdict.SUSPICIOUS: "bold yellow",
    Verdict.CLEAN: "green",
    Verdict.UNKNOWN: "dim",
}


def report_json(
    report: Report, *, ascii_only: bool = False, indent: int | None = 2
) -> str:
    """Serialize a report; ``ascii_only`` escapes non-ASCII for non-UTF-8 outputs."""
    document: dict[str, Any] = report.model_dump(mode="json")
    return json.dumps(document, ensure_ascii=ascii_only, indent=indent)


def report_table(report: Report, *, show_skipped: bool = False) -> Group:
    """Build a rich renderable: a header, the per-source table and the explanation."""
    verdict = Text(report.verdict.value, style=VERDICT_STYLES[report.verdict])
    observable = report.observable
    header = Text.assemble(
        (f"{observable.type.value} ", "bold"),
        observable.value,
        "  ",
        verdict,
        f"  risk {report.risk_score}/100",
        f"  flagged {report.sources_flagged}/{report.sources_queried}",
        f"  tlp:{report.tlp}",
    )
    parts: list[Any] = [header]
    if observable.registered_domain:
        parts.append(Text(f"registered domain: {observable.registered_domain}"))
    if observable.scope and observable.scope != "global":
        parts.append(Text(f"address scope: {observable.scope}"))
    parts.append(_sources_table(report.enrichment, show_skipped=show_skipped))
    if report.explanation:
        parts.append(Text("Why this score:", style="bold"))
        for line in report.explanation:
            parts.append(
                Text(f"  {line.contribution:+d}  {line.source}: {line.reason}")
            )
    if report.tags:
        parts.append(Text("tags: " + ", ".join(report.tags)))
    return Group(*parts)


def _sources_table(results: dict[str, SourceResult], *, show_skipped: bool) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("source", "status", "verdict", "score", "latency", "details"):
        table.add_column(column)
    hidden = 0
    for name, result in results.items():
        if result.status is Status.SKIPPED and not show_skipped:
            hidden += 1
            continue
        verdict = result.verdict.value if result.verdict else ""
        style = VERDICT_STYLES.get(result.verdict, "") if result.verdict else ""
        table.add_row(
            name,
            result.status.value,
            Text(verdict, style=style),
            "" if result.score is None else str(result.score),
            "" if result.latency_ms is None else f"{result.latency_ms} ms",
            result.summary or result.reason or "",
        )
    if hidden:
        table.caption = f"{hidden} skipped sources hidden (--show-skipped lists them)"
    return table


def print_table(
    console: Console, report: Report, *, show_skipped: bool = False
) -> None:
    console.print(report_table(report, show_skipped=show_skipped))
