"""``iocscope sources``: every registered source with its spec and state."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from iocscope.cli_enrich import DataDirOption
from iocscope.config import Settings, load_settings
from iocscope.inventory import describe_sources
from iocscope.logs import configure_logging
from iocscope.runtime import open_engine


def sources(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array instead of a table.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """List every source: types, key needed, weight, limits and current state."""
    settings = load_settings(data_dir)
    configure_logging(settings)
    rows = asyncio.run(_describe_all(settings))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    Console().print(_table(rows))


async def _describe_all(settings: Settings) -> list[dict[str, Any]]:
    async with open_engine(settings) as engine:
        return await describe_sources(engine)


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title="iocscope sources",
        caption="Keys are set as environment variables; --json names each one.",
    )
    table.add_column("name", no_wrap=True)
    for column in ("types", "key", "weight", "TLP", "limits", "status"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: (r["network"], r["name"])):
        table.add_row(
            row["name"],
            ", ".join(row["types"]),
            _key_state(row),
            f"{row['weight']:g}",
            row["max_tlp"],
            _limits(row),
            _state(row),
        )
    return table


def _key_state(row: dict[str, Any]) -> str:
    if row["key_configured"] is None:
        return "-"
    return "set" if row["key_configured"] else "missing"


def _limits(row: dict[str, Any]) -> str:
    parts = [row["rate_limit"] or ""]
    if row["daily_quota"]:
        parts.append(f"{row['daily_quota']}/day")
    return ", ".join(part for part in parts if part) or "-"


def _state(row: dict[str, Any]) -> str:
    """Combine the status with the parts of the health that need attention."""
    text = str(row["status"])
    health = row.get("health") or {}
    if health.get("breaker") not in (None, "closed"):
        text += f"; breaker {health['breaker']}"
    quota_left = health.get("quota_left")
    if quota_left is not None and row["daily_quota"]:
        text += f"; {quota_left} left today"
    if health.get("last_error"):
        text += f"; last error: {health['last_error']}"
    return text
