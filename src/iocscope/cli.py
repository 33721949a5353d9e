"""The ``iocscope`` command line.

The commands that need the web stack, the database or TheHive's client live in
their own modules, imported only when the command line names them (or asks for the
full help), so ``iocscope enrich`` starts without importing them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from iocscope import cli_enrich, cli_sources
from iocscope.errors import IocscopeError

# Command name -> (module, attribute, kind). A "group" attribute is a typer app
# mounted under the name; a "command" attribute is a function.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "feeds": ("iocscope.cli_feeds", "app", "group"),
    "serve": ("iocscope.cli_service", "serve", "command"),
    "worker": ("iocscope.cli_service", "worker", "command"),
    "keys": ("iocscope.cli_service", "keys_app", "group"),
    "db": ("iocscope.cli_service", "db_app", "group"),
    "thehive": ("iocscope.cli_thehive", "app", "group"),
}
CORE_COMMANDS = ("enrich", "sources")


def build_app(args: Sequence[str] | None = None) -> typer.Typer:
    """Build the CLI, mounting only the lazy commands that ``args`` may need.

    ``None`` mounts every command, as the full ``--help`` and the tests need.
    """
    app = typer.Typer(
        help="Enrich IOCs (IP, network, domain, URL, hash, email) from many "
        "threat-intelligence sources into one explainable verdict.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.command("enrich")(cli_enrich.enrich)
    app.command("sources")(cli_sources.sources)
    for name in _lazy_names(args):
        _mount(app, name)
    return app


def _lazy_names(args: Sequence[str] | None) -> list[str]:
    command = (
        None if args is None else next((a for a in args if not a.startswith("-")), None)
    )
    if command in CORE_COMMANDS:
        return []
    if command in LAZY_COMMANDS:
        return [command]
    return list(LAZY_COMMANDS)


def _mount(app: typer.Typer, name: str) -> None:
    module_name, attribute, kind = LAZY_COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or module_name
        message = (
            f"the '{name}' command is unavailable: module {missing} could not be "
            "imported; reinstall iocscope with `pip install -e .`"
        )

        def unavailable() -> None:
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1)

        app.command(name, help=f"(unavailable: {missing} missing)")(unavailable)
        return
    target = getattr(module, attribute)
    if kind == "group":
        app.add_typer(target, name=name)
    else:
        app.command(name)(target)


# Errors from these libraries mean a database or Redis server that cannot be
# reached or used. They are reported in one line instead of a traceback.
SERVER_ERROR_MODULES = (
    "sqlalchemy",
    "asyncpg",
    "psycopg",
    "redis",
    "aiosqlite",
    "sqlite3",
)


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # An ASCII or C locale must not crash the output of non-ASCII vendor text.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    try:
        build_app(sys.argv[1:])()
    except IocscopeError as exc:
        _exit_with(exc.message)
    except Exception as exc:
        # A refused connection surfaces as the built-in ConnectionError.
        server_error = isinstance(exc, ConnectionError | TimeoutError)
        if not server_error and type(exc).__module__.split(".")[0] not in (
            SERVER_ERROR_MODULES
        ):
            raise
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        detail = lines[0] if lines else type(exc).__name__
        _exit_with(
            f"the database or Redis failed: {detail}; check IOCSCOPE_DATABASE_URL "
            "and IOCSCOPE_REDIS_URL, and that the role and database exist"
        )


def _exit_with(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)
