"""``iocscope enrich``: one observable, a file of them, or free text."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import Progress

from iocscope.config import Settings, load_settings
from iocscope.errors import InvalidInput, IocscopeError
from iocscope.logs import configure_logging
from iocscope.models import Observable, Report, Verdict
from iocscope.observables import extract_observables
from iocscope.render import print_table, report_json
from iocscope.runtime import open_engine

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MALICIOUS = 2
EXIT_SUSPICIOUS = 3


class OutputFormat(StrEnum):
    JSON = "json"
    TABLE = "table"


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the feed store and settings. Default: IOCSCOPE_DATA_DIR, "
        "else the platform's user data folder.",
        file_okay=False,
    ),
]


def enrich(
    value: Annotated[
        str | None,
        typer.Argument(
            help="The observable: IP, network, domain, URL, hash or email. "
            "Defanged forms such as hxxp://evil[.]example are accepted."
        ),
    ] = None,
    type_hint: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            help="Observable type, when detection is not wanted: ip, cidr, "
            "domain (fqdn, hostname), url, md5, sha1, sha256, sha512, hash, email.",
        ),
    ] = None,
    tlp: Annotated[
        str | None,
        typer.Option(
            help="TLP of the observable: clear, green, amber, amber+strict, "
            "red, white, or a number (Cortex 0-3, 4 for red as TheHive sends it). "
            "Sources cleared for a lower TLP are skipped. Default: the "
            "default_tlp setting (amber)."
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.JSON,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="Read observables from this file, one per line "
            "(blank lines and lines starting with # are skipped), or - for stdin. "
            "Writes JSON Lines, one document per input line, in input order.",
        ),
    ] = None,
    extract: Annotated[
        bool,
        typer.Option(
            "--extract",
            help="With --file: find observables in free text "
            "(an alert, an e-mail, a report) instead of reading one per line.",
        ),
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="Ignore cached source results and ask every source again."
        ),
    ] = False,
    show_skipped: Annotated[
        bool, typer.Option("--show-skipped", help="List skipped sources in tables.")
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="With --file: observables enriched at the same time."
        ),
    ] = 8,
    data_dir: DataDirOption = None,
) -> None:
    """Enrich observables and print one verdict each.

    Exit codes: 0 clean or unknown, 2 malicious, 3 suspicious, 1 error. With --file
    the most severe result decides: malicious, then suspicious, then error.
    """
    settings = load_settings(data_dir)
    configure_logging(settings)
    if file is None and extract:
        _fail("--extract needs --file: pass --file PATH or --file - for stdin")
    if file is None and value is None:
        _fail("missing VALUE: pass an observable, or --file PATH for a list")
    if file is not None and value is not None:
        _fail(f"pass either VALUE ({value!r}) or --file, not both")
    options = _Options(type_hint, tlp, output_format, refresh, show_skipped)
    try:
        if file is None:
            assert value is not None
            code = asyncio.run(_enrich_value(settings, value, options))
        else:
            text = _read_input(file)
            code = asyncio.run(
                _enrich_text(settings, text, extract, options, concurrency)
            )
    except InvalidInput as exc:
        _fail(exc.message)
    except IocscopeError as exc:
        _fail(exc.message)
    raise typer.Exit(code)


@dataclass(frozen=True)
class _Options:
    type_hint: str | None
    tlp: str | None
    output_format: OutputFormat
    refresh: bool
    show_skipped: bool


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def _read_input(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        _fail(f"cannot read --file {file}: {exc.strerror or exc}")
    return ""


async def _enrich_value(settings: Settings, value: str, options: _Options) -> int:
    async with open_engine(settings) as engine:
        level = engine.resolve_tlp(options.tlp)
        report = await engine.enrich(
            value, options.type_hint, tlp=level, refresh=options.refresh
        )
    _emit_report(report, options, sys.stdout, lines=False)
    return exit_code(report.verdict)


def exit_code(verdict: Verdict) -> int:
    if verdict is Verdict.MALICIOUS:
        return EXIT_MALICIOUS
    if verdict is Verdict.SUSPICIOUS:
        return EXIT_SUSPICIOUS
    return EXIT_OK


def _emit_report(
    report: Report, options: _Options, out: TextIO, *, lines: bool
) -> None:
    if options.output_format is OutputFormat.TABLE:
        console = Console(file=out, soft_wrap=False)
        print_table(console, report, show_skipped=options.show_skipped)
        return
    ascii_only = (out.encoding or "").lower().replace("-", "") != "utf8"
    out.write(report_json(report, ascii_only=ascii_only, indent=None if lines else 2))
    out.write("\n")
    out.flush()


@dataclass
class _Item:
    line: int
    raw: str
    observable: Observable | None = None


def _items(text: str, extract: bool) -> list[_Item]:
    if extract:
        return [
            _Item(line=0, raw=obs.input, observable=obs)
            for obs in extract_observables(text)
        ]
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            items.append(_Item(line=number, raw=line))
    return items


async def _enrich_text(
    settings: Settings, text: str, extract: bool, options: _Options, concurrency: int
) -> int:
    async with open_engine(settings) as engine:
        level = engine.resolve_tlp(options.tlp)
        items = _items(text, extract)
        if not items:
            typer.echo("warning: no observables found in the input", err=True)
            return EXIT_OK
        worst = _Worst()
        with _progress(len(items)) as advance:

            async def run(item: _Item) -> Report | InvalidInput:
                try:
                    observable = item.observable or engine.parse(
                        item.raw, options.type_hint
                    )
                    return await engine.enrich_observable(
                        observable, tlp=level, refresh=options.refresh
                    )
                except InvalidInput as exc:
                    return exc
                finally:
                    advance()

            async for item, outcome in _ordered(items, run, concurrency):
                _emit_outcome(item, outcome, options, worst)
        return worst.code


class _Worst:
    """The exit code of a batch: malicious, then suspicious, then error wins."""

    ORDER = (EXIT_MALICIOUS, EXIT_SUSPICIOUS, EXIT_ERROR, EXIT_OK)

    def __init__(self) -> None:
        self.code = EXIT_OK

    def add(self, code: int) -> None:
        if self.ORDER.index(code) < self.ORDER.index(self.code):
            self.code = code


def _emit_outcome(
    item: _Item, outcome: Report | InvalidInput, options: _Options, worst: _Worst
) -> None:
    if isinstance(outcome, Report):
        worst.add(exit_code(outcome.verdict))
        _emit_report(outcome, options, sys.stdout, lines=True)
        return
    worst.add(EXIT_ERROR)
    error: dict[str, Any] = {
        "line": item.line,
        "input": item.raw,
        "error": {
            "field": outcome.field,
            "value": str(outcome.value),
            "message": outcome.message,
        },
    }
    if options.output_format is OutputFormat.TABLE:
        typer.echo(f"line {item.line}: error: {outcome.message}", err=True)
    else:
        sys.stdout.write(json.dumps(error, ensure_ascii=False) + "\n")


async def _ordered(
    items: list[_Item],
    run: Callable[[_Item], Awaitable[Report | InvalidInput]],
    concurrency: int,
) -> AsyncIterator[tuple[_Item, Report | InvalidInput]]:
    """Run ``run`` over items, at most ``concurrency`` at once; yield in order."""
    window: deque[tuple[_Item, asyncio.Task[Report | InvalidInput]]] = deque()
    pending = iter(items)
    for item in pending:
        window.append((item, asyncio.ensure_future(run(item))))
        if len(window) >= concurrency:
            break
    while window:
        item, task = window.popleft()
        outcome = await task
        following = next(pending, None)
        if following is not None:
            window.append((following, asyncio.ensure_future(run(following))))
        yield item, outcome


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """Yield a function that advances a progress bar on stderr, if it is a terminal."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    # Without the redirect flags, rich would route stdout (the JSON Lines) to the
    # stderr console while the bar runs, and `> results.jsonl` would stay empty.
    progress = Progress(
        console=Console(file=sys.stderr),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = progress.add_task("enriching", total=total)
    with progress:
        yield lambda: progress.advance(task)
