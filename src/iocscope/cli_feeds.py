"""``iocscope feeds``: import feed files, list stored feeds, update from URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Column, Table

from iocscope.cli_enrich import DataDirOption
from iocscope.config import Settings, load_settings
from iocscope.errors import FeedError
from iocscope.feeds.catalog import CATALOG, base_name
from iocscope.feeds.download import ProgressCallback, UpdateStatus, update_feeds
from iocscope.feeds.formats import FORMATS, get_format
from iocscope.feeds.importer import FeedFile, import_paths
from iocscope.feeds.store import FeedInfo, FeedStore

# Bad lines printed per file. The import report counts all of them.
SHOWN_BAD_LINES = 5

app = typer.Typer(
    help="Import, list and update the local threat feeds.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("import")
def import_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Feed files, plain or gzip, bzip2 or zip.")
    ],
    format_name: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"Format of every file, detected when left out. One of: "
            f"{', '.join(FORMATS)}.",
        ),
    ] = None,
    feed: Annotated[
        str | None,
        typer.Option(
            "--feed",
            help=f"Feed to store the files as, detected when left out. One of: "
            f"{', '.join(CATALOG)}.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import feed files, replacing each feed's previous entries.

    Files that belong to the same feed are imported together, so pass every
    file of a feed (Spamhaus DROP v4 and v6) in one command.
    """
    _check_names(format_name, feed)
    with _open_store(load_settings(data_dir)) as store:
        result = import_paths(store, paths, format_name=format_name, feed=feed)
    for item in result.files:
        _print_file(item)
    for info in result.feeds:
        typer.echo(
            f"{info.name}: {_count(info.entry_count, 'entry', 'entries')} stored"
        )
    for failure in result.failures:
        typer.echo(f"error: {failure.source}: {failure.message}", err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("list")
def list_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array instead of a table.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """List every feed: entries, bad lines, age of the import and source."""
    with _open_store(load_settings(data_dir)) as store:
        rows = feed_rows(store.feeds(), datetime.now(UTC))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    Console().print(_feed_table(rows))


@app.command("update")
def update_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Feeds to update. Default: every feed with a URL."),
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            metavar="NAME=URL",
            help="Download feed NAME from URL instead of the catalog URL. "
            "Repeatable, and wins over the feed_urls setting.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Download even when the provider's minimum interval between "
            "downloads (one hour for Spamhaus) has not passed.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Download feeds and import them. A failed feed keeps its previous data."""
    settings = load_settings(data_dir)
    if settings.offline:
        typer.echo(
            "error: IOCSCOPE_OFFLINE is set, so no feed is downloaded; unset it, "
            "or import downloaded files with `iocscope feeds import`",
            err=True,
        )
        raise typer.Exit(1)
    urls = dict(settings.feed_urls)
    urls.update(_parse_url_options(url or []))
    console = Console(stderr=True)
    with _open_store(settings) as store, _progress(console) as progress:
        try:
            outcomes = update_feeds(
                store, names or [], urls=urls, progress=progress, force=force
            )
        except FeedError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from None
    for outcome in outcomes:
        if outcome.status is UpdateStatus.UPDATED:
            for item in outcome.files:
                _print_file(item)
        else:
            stream_is_err = outcome.status is UpdateStatus.FAILED
            message = f"{outcome.feed}: {outcome.status.value}: {outcome.message}"
            typer.echo(message, err=stream_is_err)
    if any(outcome.status is UpdateStatus.FAILED for outcome in outcomes):
        raise typer.Exit(1)


def feed_rows(feeds: Sequence[FeedInfo], now: datetime) -> list[dict[str, Any]]:
    """Describe stored feeds, then catalog feeds never imported, as data."""
    rows = [_stored_row(info, now) for info in feeds]
    imported = {base_name(info.name) for info in feeds}
    rows += [
        {"name": name, "imported": False, "description": definition.description}
        for name, definition in CATALOG.items()
        if name not in imported
    ]
    return rows


def _stored_row(info: FeedInfo, now: datetime) -> dict[str, Any]:
    age_s = max(0, int((now - info.imported_at).total_seconds()))
    return {
        "name": info.name,
        "imported": True,
        "entry_count": info.entry_count,
        "kind_counts": info.kind_counts,
        "bad_lines": info.bad_lines,
        "format": info.format,
        "source": info.source,
        "imported_at": info.imported_at.isoformat(),
        "age_s": age_s,
        "age": human_age(age_s),
    }


def human_age(seconds: int) -> str:
    """Return an age such as "12 minutes ago" or "3 days ago"."""
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def _feed_table(rows: list[dict[str, Any]]) -> Table:
    # The feed name stays whole; a long source path wraps instead of being cut.
    table = Table(
        Column("feed", no_wrap=True),
        "entries",
        "bad lines",
        "imported",
        Column("source", overflow="fold"),
    )
    for row in rows:
        if not row["imported"]:
            table.add_row(row["name"], "-", "-", "never", "")
            continue
        table.add_row(
            row["name"],
            str(row["entry_count"]),
            str(row["bad_lines"]),
            row["age"],
            row["source"],
        )
    return table


def _print_file(item: FeedFile) -> None:
    report = item.report
    typer.echo(
        f"{item.source}: feed {item.feed} ({item.format}), "
        f"{_count(item.entry_count, 'entry', 'entries')} imported, "
        f"{_count(report.bad_count, 'bad line', 'bad lines')}"
    )
    for bad in report.bad_lines[:SHOWN_BAD_LINES]:
        typer.echo(f"  {bad}")
    if report.bad_count > SHOWN_BAD_LINES:
        typer.echo(f"  ... and {report.bad_count - SHOWN_BAD_LINES} more")
    beyond = report.meta.get("beyond_max_rank")
    if beyond:
        typer.echo(f"  {beyond} lines ranked beyond the top-sites limit left out")


def _check_names(format_name: str | None, feed: str | None) -> None:
    try:
        if format_name is not None:
            get_format(format_name)
        if feed is not None and base_name(feed) not in CATALOG:
            raise FeedError(f"unknown feed {feed!r}; known feeds: {', '.join(CATALOG)}")
    except FeedError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _parse_url_options(values: list[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for value in values:
        name, equals, url = value.partition("=")
        if not equals or not name or not url:
            typer.echo(f"error: invalid --url {value!r}: use NAME=URL", err=True)
            raise typer.Exit(1)
        urls[name.strip()] = url.strip()
    return urls


@contextmanager
def _open_store(settings: Settings) -> Iterator[FeedStore]:
    store = FeedStore(settings.feed_db_path)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress(console: Console) -> Iterator[ProgressCallback | None]:
    """Yield a callback that draws download progress bars on a terminal, or
    None elsewhere."""
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def report(label: str, received: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=received, total=total)

        yield report


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number:,} {singular if number == 1 else plural}"
