"""The ``iocscope`` command line.

The commands that need the web stack, the database or TheHive's client are loaded
only when they are called, so ``iocscope enrich`` starts without importing them.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer
from typer.core import TyperGroup

from iocscope import cli_enrich, cli_sources

# Command name -> (module, typer app attribute, command inside that app or None
# to mount the whole app as a group).
LAZY_COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "feeds": ("iocscope.cli_feeds", "app", None),
    "serve": ("iocscope.cli_service", "app", "serve"),
    "worker": ("iocscope.cli_service", "app", "worker"),
    "keys": ("iocscope.cli_service", "keys_app", None),
    "db": ("iocscope.cli_service", "db_app", None),
    "thehive": ("iocscope.cli_thehive", "app", None),
}


class LazyGroup(TyperGroup):
    """A click group that imports some sub-commands on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            return _load_lazy(cmd_name)
        return super().get_command(ctx, cmd_name)


def _load_lazy(name: str) -> click.Command | None:
    module_name, attribute, sub_command = LAZY_COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or module_name
        raise click.ClickException(
            f"the '{name}' command is unavailable: module {missing} could not be "
            "imported; reinstall iocscope with `pip install -e .`"
        ) from exc
    command = typer.main.get_command(getattr(module, attribute))
    if sub_command is None:
        command.name = name
        return command
    if not isinstance(command, click.Group):
        return command
    return command.get_command(click.Context(command), sub_command)


app = typer.Typer(
    cls=LazyGroup,
    help="Enrich IOCs (IP, domain, URL, hash, email) from many threat-intelligence "
    "sources into one explainable verdict.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("enrich")(cli_enrich.enrich)
app.command("sources")(cli_sources.sources)


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # An ASCII or C locale must not crash the output of non-ASCII vendor text.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    app()
