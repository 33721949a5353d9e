"""Service-mode commands: ``serve``, ``worker``, ``keys ...`` and ``db upgrade``.

``app`` contains ``serve`` and ``worker``; ``keys_app`` and ``db_app`` are command
groups. Every command accepts ``--data-dir``; the database is upgraded before use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iocscope.config import Settings, load_settings
from iocscope.logs import configure_logging
from iocscope.service.database import (
    create_engine,
    session_factory,
    upgrade_database,
    upgrade_database_sync,
)
from iocscope.service.keys import create_key, list_keys, revoke_key
from iocscope.service.plans import load_plan_book

app = typer.Typer(help="Run the HTTP service and its job worker.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the service database.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the SQLite databases and feeds. Default: "
        "IOCSCOPE_DATA_DIR, else the platform's user data folder.",
        file_okay=False,
    ),
]

T = TypeVar("T")
console = Console()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from iocscope.api import create_app

    settings = load_settings(data_dir)
    configure_logging(settings, level=logging.INFO)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


@app.command("worker")
def worker(data_dir: DataDir = None) -> None:
    """Run bulk jobs from the Redis queue (needs redis_url)."""
    settings = load_settings(data_dir)
    configure_logging(settings, level=logging.INFO)
    if settings.redis_url is None:
        raise typer.BadParameter(
            "redis_url is not set; set IOCSCOPE_REDIS_URL to the queue's Redis, "
            "or let `iocscope serve` run jobs in process"
        )
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from iocscope.service.queue import build_worker
    from iocscope.service.state import job_runner, open_service

    async with open_service(settings) as state:
        await build_worker(settings, job_runner(state)).async_run()


def _with_sessions(
    settings: Settings,
    action: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
) -> T:
    async def run() -> T:
        engine = create_engine(settings)
        try:
            await upgrade_database(engine)
            return await action(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant name; created if new.")],
    plan: Annotated[
        str | None,
        typer.Option(
            help="Plan: free, team, business... A new tenant without --plan starts "
            "on free; an existing tenant keeps its plan unless --plan names another."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    settings = load_settings(data_dir)
    plans = load_plan_book(settings).plans
    if plan is not None and plan not in plans:
        raise typer.BadParameter(
            f"unknown plan {plan!r}; choose one of {', '.join(sorted(plans))}",
            param_hint="--plan",
        )
    key_id, key, tenant_plan = _with_sessions(
        settings, lambda sessions: create_key(sessions, tenant, plan)
    )
    typer.echo(f"key id: {key_id}")
    typer.echo(f"tenant: {tenant} (plan {tenant_plan})")
    typer.echo(f"api key: {key}")
    typer.echo("Store the key now: it is shown only once and cannot be recovered.")


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List keys: id, tenant, plan, created, last used, revoked (never the key)."""
    settings = load_settings(data_dir)
    infos = _with_sessions(settings, list_keys)
    table = Table("id", "tenant", "plan", "created", "last used", "revoked")
    for info in infos:
        table.add_row(
            str(info.id),
            info.tenant,
            info.plan,
            _when(info.created_at),
            _when(info.last_used_at),
            _when(info.revoked_at),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="Key id from `keys list`.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    settings = load_settings(data_dir)
    revoked = _with_sessions(settings, lambda sessions: revoke_key(sessions, key_id))
    if not revoked:
        message = f"no active key with id {key_id}; see `iocscope keys list`"
        typer.echo(message, err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked key {key_id}")


@keys_app.command("webhook-secret")
def keys_webhook_secret(
    tenant: Annotated[str, typer.Option(help="Tenant name.")],
    data_dir: DataDir = None,
) -> None:
    """Print the secret that signs the tenant's webhook deliveries."""
    from iocscope.service.keys import webhook_secret

    settings = load_settings(data_dir)
    secret = _with_sessions(settings, lambda sessions: webhook_secret(sessions, tenant))
    if secret is None:
        typer.echo(f"no tenant named {tenant!r}; see `iocscope keys list`", err=True)
        raise typer.Exit(1)
    typer.echo(secret)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply pending database migrations."""
    settings = load_settings(data_dir)
    typer.echo(upgrade_database_sync(settings).describe())


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
