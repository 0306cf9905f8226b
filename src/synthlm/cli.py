"""The ``synthlm`` command line: thin by design, and fast to start.

Each command lives in its own module under :mod:`synthlm.commands`, named after the command
(``commands/train.py`` is ``synthlm train``), and exposes ``register(app)``; adding a command is
one new file. The root group imports only the module of the command being run: a command's
``--help`` or a 5M-token ``synth generate`` should not pay for importing pydantic models,
asyncio and HTTP clients of every other command (that was half of the start-up time).

Bad input (:class:`~synthlm.errors.UserError`) prints one clear ``error:`` line and exits with
status 2; usage errors exit 2 as well.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import cache
from typing import Any

import typer
from typer.core import TyperGroup

from synthlm import __version__, commands
from synthlm.errors import UserError


@cache
def command_names() -> tuple[str, ...]:
    """Every command, from the module names in :mod:`synthlm.commands`."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")))


@cache
def load_command(name: str) -> Any:
    """Import ``synthlm.commands.<name>`` and return the click command it registers."""
    module = importlib.import_module(f"{commands.__name__}.{name}")
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    module.register(holder)
    command = typer.main.get_command(holder)
    nested = getattr(command, "commands", {})
    return nested.get(name, command)


class LazyCommands(TyperGroup):
    """A root group that lists command modules and imports one only when it is invoked."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(command_names())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return load_command(cmd_name) if cmd_name in command_names() else None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synthlm {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="synthlm",
    cls=LazyCommands,
    help="Pretrain language models on natural and synthetic data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Pretrain language models on natural and synthetic data."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        app(args=argv, prog_name="synthlm")
    except UserError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
