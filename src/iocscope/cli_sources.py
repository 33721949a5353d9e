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
from iocscope.engine import Engine
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
        return [await describe_source(engine, name) for name in engine.specs()]


async def describe_source(engine: Engine, name: str) -> dict[str, Any]:
    """Describe one source as plain data; never includes a key's value."""
    source = next(s for s in engine.sources if s.spec.name == name)
    spec = source.spec
    key_configured = (
        None
        if spec.key_setting is None
        else bool(engine.settings.secret(spec.key_setting))
    )
    row: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "types": sorted(t.value for t in spec.types),
        "network": spec.network,
        "key_setting": spec.key_setting,
        "key_env": f"IOCSCOPE_{spec.key_setting.upper()}" if spec.key_setting else None,
        "key_configured": key_configured,
        "weight": engine.weights[spec.name],
        "max_tlp": spec.max_tlp.label,
        "timeout_s": engine.settings.source_timeouts.get(spec.name, spec.timeout_s),
        "rate_limit": spec.rate_limit,
        "daily_quota": spec.daily_quota,
        "cost": spec.cost,
        "status": _status(source, key_configured),
    }
    health = getattr(engine.governor, "health", None)
    if health is not None and spec.network:
        state = await health(spec)
        row["health"] = {k: _plain(v) for k, v in vars(state).items()}
    return row


def _status(source: Any, key_configured: bool | None) -> str:
    if key_configured is False:
        return "no key"
    describe = getattr(source, "status", None)
    if callable(describe):
        return str(describe())
    return "ready"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="iocscope sources")
    for column in ("name", "types", "key", "weight", "max TLP", "limits", "status"):
        table.add_column(column)
    for row in rows:
        key = "-" if row["key_env"] is None else row["key_env"]
        limits = ", ".join(
            part
            for part in (
                row["rate_limit"] or "",
                f"{row['daily_quota']}/day" if row["daily_quota"] else "",
            )
            if part
        )
        status = row["status"]
        health = row.get("health")
        if health:
            status += f" (breaker {health.get('breaker', '?')}"
            if health.get("quota_left") is not None:
                status += f", quota left {health['quota_left']}"
            status += ")"
            if health.get("last_error"):
                status += f"; last error: {health['last_error']}"
        table.add_row(
            row["name"],
            ", ".join(row["types"]),
            key,
            f"{row['weight']:g}",
            row["max_tlp"],
            limits or "-",
            status,
        )
    return table
