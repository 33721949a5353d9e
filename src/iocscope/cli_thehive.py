"""``iocscope thehive``: enrich TheHive 5 observables and write the verdicts back.

``enrich-case`` enriches every supported observable of one case, tags each one and
keeps one summary comment on the case. ``watch`` polls for observables newly added
to cases and alerts and enriches them, which gives automatic analysis without
Cortex.

By default the enrichment runs in this process with the local settings and
sources. With ``--iocscope-url`` it goes to a running iocscope service instead,
so that service's keys, credits and cache apply.

Every option can also come from the environment (``IOCSCOPE_THEHIVE_URL``, ...).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from iocscope.config import Settings, load_settings
from iocscope.errors import InvalidInput, IocscopeError
from iocscope.integrations.enrichers import (
    EngineEnricher,
    Enricher,
    EnrichmentUnavailable,
    ServiceEnricher,
)
from iocscope.integrations.thehive import (
    ObservableResult,
    Outcome,
    TheHiveConnection,
    TheHiveSync,
    TheHiveUnavailable,
    connect,
)
from iocscope.logs import configure_logging
from iocscope.runtime import open_engine
from iocscope.tlp import TLP, parse_tlp

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_POLL_INTERVAL_S = 60.0
DEFAULT_MAX_TLP = "amber"

app = typer.Typer(
    help="Enrich the observables of TheHive 5 cases and alerts with iocscope "
    "verdicts (tags and a case comment).",
    no_args_is_help=True,
    add_completion=False,
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="IOCSCOPE_THEHIVE_URL",
        help="TheHive base URL, e.g. https://thehive.example.org:9000. "
        "Default: the thehive_url setting.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="IOCSCOPE_THEHIVE_API_KEY",
        help="TheHive API key, sent as a Bearer token. Prefer the environment "
        "variable, so the key stays out of the shell history.",
        show_default=False,
    ),
]
OrganisationOption = Annotated[
    str | None,
    typer.Option(
        "--organisation",
        envvar="IOCSCOPE_THEHIVE_ORGANISATION",
        help="TheHive organisation (X-Organisation header). Default: the user's "
        "default organisation.",
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Do not verify TheHive's TLS certificate. Only for tests; prefer "
        "--ca-bundle.",
    ),
]
CaBundleOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="IOCSCOPE_THEHIVE_CA_BUNDLE",
        help="PEM file of the CA that signed TheHive's certificate.",
        exists=True,
        dir_okay=False,
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        envvar="IOCSCOPE_THEHIVE_TIMEOUT_S",
        help=f"Seconds each call to TheHive may take. Default: {DEFAULT_TIMEOUT_S:g}.",
        min=0.1,
    ),
]
MaxTlpOption = Annotated[
    str | None,
    typer.Option(
        "--max-tlp",
        envvar="IOCSCOPE_THEHIVE_MAX_TLP",
        help="Highest TLP that is enriched: clear, green, amber, amber+strict or "
        f"red. Observables above it are skipped. Default: {DEFAULT_MAX_TLP}.",
    ),
]
IocscopeUrlOption = Annotated[
    str | None,
    typer.Option(
        "--iocscope-url",
        envvar="IOCSCOPE_THEHIVE_IOCSCOPE_URL",
        help="Enrich through this iocscope service (e.g. http://127.0.0.1:8000) "
        "instead of in this process.",
    ),
]
IocscopeKeyOption = Annotated[
    str | None,
    typer.Option(
        "--iocscope-api-key",
        envvar="IOCSCOPE_THEHIVE_IOCSCOPE_API_KEY",
        help="API key for --iocscope-url.",
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the feed store, settings and the watch state. Default: "
        "IOCSCOPE_DATA_DIR, else the platform's user data folder.",
        file_okay=False,
    ),
]


@dataclass(frozen=True)
class _Options:
    connection: TheHiveConnection
    max_tlp: TLP
    iocscope_url: str | None
    iocscope_api_key: str | None


def _setting(settings: Settings, name: str) -> Any:
    # NOTE: the thehive_* fields are not in Settings yet; until they are, only
    # the environment variables and options above set them.
    value = getattr(settings, name, None)
    if isinstance(value, SecretStr):
        return value.get_secret_value() or None
    return value


def _options(
    settings: Settings,
    *,
    url: str | None,
    api_key: str | None,
    organisation: str | None,
    insecure: bool,
    ca_bundle: Path | None,
    timeout_s: float | None,
    max_tlp: str | None,
    iocscope_url: str | None,
    iocscope_api_key: str | None,
) -> _Options:
    url = url or _setting(settings, "thehive_url")
    api_key = api_key or _setting(settings, "thehive_api_key")
    if not url:
        _fail("missing TheHive URL: pass --url or set IOCSCOPE_THEHIVE_URL")
    if not api_key:
        _fail("missing TheHive API key: set IOCSCOPE_THEHIVE_API_KEY or --api-key")

    verify: bool | str = True
    ca_bundle = ca_bundle or _setting(settings, "thehive_ca_bundle")
    if ca_bundle:
        verify = str(ca_bundle)
    if insecure:
        typer.echo(
            "warning: --insecure turns off TLS certificate verification for "
            f"{url}; the API key can be intercepted",
            err=True,
        )
        verify = False

    try:
        tlp_limit = parse_tlp(
            max_tlp or _setting(settings, "thehive_max_tlp") or DEFAULT_MAX_TLP
        )
    except InvalidInput as exc:
        _fail(f"invalid --max-tlp: {exc.message}")

    iocscope_url = iocscope_url or _setting(settings, "thehive_iocscope_url")
    iocscope_api_key = iocscope_api_key or _setting(
        settings, "thehive_iocscope_api_key"
    )
    if iocscope_url and not iocscope_api_key:
        _fail(
            "--iocscope-url needs an API key: pass --iocscope-api-key or set "
            "IOCSCOPE_THEHIVE_IOCSCOPE_API_KEY"
        )
    connection = TheHiveConnection(
        url=str(url),
        api_key=str(api_key),
        organisation=organisation or _setting(settings, "thehive_organisation"),
        verify_tls=verify,
        timeout_s=float(
            timeout_s or _setting(settings, "thehive_timeout_s") or DEFAULT_TIMEOUT_S
        ),
    )
    return _Options(connection, tlp_limit, iocscope_url, iocscope_api_key)


@asynccontextmanager
async def _enricher(settings: Settings, options: _Options) -> AsyncIterator[Enricher]:
    if options.iocscope_url:
        assert options.iocscope_api_key is not None
        service = ServiceEnricher(options.iocscope_url, options.iocscope_api_key)
        try:
            yield service
        finally:
            await service.aclose()
        return
    async with open_engine(settings) as engine:
        yield EngineEnricher(engine)


@app.command("enrich-case")
def enrich_case(
    case_id: Annotated[str, typer.Argument(help="Case id (~123456) or case number.")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    organisation: OrganisationOption = None,
    insecure: InsecureOption = False,
    ca_bundle: CaBundleOption = None,
    timeout_s: TimeoutOption = None,
    max_tlp: MaxTlpOption = None,
    iocscope_url: IocscopeUrlOption = None,
    iocscope_api_key: IocscopeKeyOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Enrich every supported observable of a case, tag it, and comment once.

    Tags: iocscope:<verdict> and iocscope:score=<n>, replacing older ones. The
    case comment is edited in place on later runs. Exit code 1 when TheHive or
    the enrichment failed, or any observable failed.
    """
    settings = load_settings(data_dir)
    configure_logging(settings)
    options = _options(
        settings,
        url=url,
        api_key=api_key,
        organisation=organisation,
        insecure=insecure,
        ca_bundle=ca_bundle,
        timeout_s=timeout_s,
        max_tlp=max_tlp,
        iocscope_url=iocscope_url,
        iocscope_api_key=iocscope_api_key,
    )
    try:
        code = asyncio.run(_enrich_case(settings, options, case_id))
    except IocscopeError as exc:
        _fail(exc.message)
    raise typer.Exit(code)


async def _enrich_case(settings: Settings, options: _Options, case_id: str) -> int:
    api = connect(options.connection)
    async with _enricher(settings, options) as enricher:
        sync = TheHiveSync(api, enricher, max_tlp=options.max_tlp)
        result = await sync.enrich_case(case_id)
    _print_results(result.observables)
    typer.echo(f"case {case_id}: comment {result.comment.value}")
    failed = any(r.outcome is Outcome.FAILED for r in result.observables)
    return EXIT_ERROR if failed else EXIT_OK


@app.command("watch")
def watch(
    interval_s: Annotated[
        float,
        typer.Option(
            "--interval",
            envvar="IOCSCOPE_THEHIVE_POLL_INTERVAL_S",
            help="Seconds between two polls.",
            min=1.0,
        ),
    ] = DEFAULT_POLL_INTERVAL_S,
    once: Annotated[
        bool, typer.Option("--once", help="Poll one time and exit.")
    ] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    organisation: OrganisationOption = None,
    insecure: InsecureOption = False,
    ca_bundle: CaBundleOption = None,
    timeout_s: TimeoutOption = None,
    max_tlp: MaxTlpOption = None,
    iocscope_url: IocscopeUrlOption = None,
    iocscope_api_key: IocscopeKeyOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Poll for observables added to cases and alerts, and enrich each one once.

    The first poll only records the newest existing observable; later polls
    enrich what was created after it. The position is kept in the data dir, one
    file per TheHive URL and organisation. Stop with Ctrl-C.
    """
    settings = load_settings(data_dir)
    configure_logging(settings, level=logging.INFO)
    options = _options(
        settings,
        url=url,
        api_key=api_key,
        organisation=organisation,
        insecure=insecure,
        ca_bundle=ca_bundle,
        timeout_s=timeout_s,
        max_tlp=max_tlp,
        iocscope_url=iocscope_url,
        iocscope_api_key=iocscope_api_key,
    )
    state_file = watch_state_file(settings.data_dir, options.connection)
    try:
        code = asyncio.run(_watch(settings, options, state_file, interval_s, once))
    except KeyboardInterrupt:
        log.info("thehive.watch.stopped", reason="interrupted")
        code = EXIT_OK
    except IocscopeError as exc:
        _fail(exc.message)
    raise typer.Exit(code)


def watch_state_file(data_dir: Path, connection: TheHiveConnection) -> Path:
    """Return the state file for one TheHive URL and organisation."""
    identity = f"{connection.url.rstrip('/')}\0{connection.organisation or ''}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return data_dir / f"thehive-watch-{digest}.json"


async def _watch(
    settings: Settings,
    options: _Options,
    state_file: Path,
    interval_s: float,
    once: bool,
) -> int:
    api = connect(options.connection)
    log.info(
        "thehive.watch.started",
        thehive_url=options.connection.url,
        interval_s=interval_s,
        state_file=str(state_file),
    )
    async with _enricher(settings, options) as enricher:
        sync = TheHiveSync(api, enricher, max_tlp=options.max_tlp)
        while True:
            try:
                results = await sync.poll_new_observables(state_file)
            except (TheHiveUnavailable, EnrichmentUnavailable) as exc:
                # The next poll retries from the saved position.
                log.error("thehive.watch.poll_failed", error=exc.message)
                if once:
                    return EXIT_ERROR
            else:
                for result in results:
                    _log_result(result)
            if once:
                return EXIT_OK
            await asyncio.sleep(interval_s)


def _log_result(result: ObservableResult) -> None:
    report = result.report
    log.info(
        "thehive.watch.observable",
        observable_id=result.observable_id,
        data_type=result.data_type,
        outcome=result.outcome.value,
        verdict=report.verdict.value if report else None,
        risk_score=report.risk_score if report else None,
        reason=result.reason,
    )


def _print_results(results: list[ObservableResult]) -> None:
    table = Table(title="iocscope enrichment")
    for column in ("observable", "type", "outcome", "verdict", "score", "reason"):
        table.add_column(column)
    for result in results:
        report = result.report
        table.add_row(
            result.data,
            result.data_type,
            result.outcome.value,
            report.verdict.value if report else "",
            str(report.risk_score) if report else "",
            result.reason or "",
        )
    Console().print(table)


def _fail(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)
