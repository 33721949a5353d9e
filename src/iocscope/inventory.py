"""Describe the engine's sources as plain data, for the CLI and the API.

A description says whether a key is configured, never what it is.
"""

from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from typing import Any

from iocscope.engine import Engine
from iocscope.sources.base import Source


async def describe_sources(engine: Engine) -> list[dict[str, Any]]:
    return [await describe_source(engine, source) for source in engine.sources]


async def describe_source(engine: Engine, source: Source) -> dict[str, Any]:
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
        "needs_key": spec.needs_key,
        "key_setting": spec.key_setting,
        "key_env": f"IOCSCOPE_{spec.key_setting.upper()}" if spec.key_setting else None,
        "key_configured": key_configured,
        "weight": engine.weights[spec.name],
        "max_tlp": spec.tlp_limit.label,
        "timeout_s": engine.settings.source_timeouts.get(spec.name, spec.timeout_s),
        "rate_limit": spec.rate_limit,
        "daily_quota": spec.daily_quota,
        "cost": spec.cost,
        "status": _status(engine, source, key_configured),
        "health": None,
    }
    health = getattr(engine.governor, "health", None)
    if health is not None and spec.network:
        state = await health(spec)
        row["health"] = {key: _plain(value) for key, value in asdict(state).items()}
        row["rate_limit"] = state.rate_limit
        row["daily_quota"] = state.daily_quota
    return row


def _status(engine: Engine, source: Source, key_configured: bool | None) -> str:
    if source.spec.name in engine.disabled:
        return "disabled"
    if source.spec.network and engine.settings.offline:
        return "offline"
    if key_configured is False:
        return "no key"
    describe = getattr(source, "status", None)
    if callable(describe):
        return str(describe())
    return "ready"


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
