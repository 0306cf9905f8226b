"""The ``synthlm`` command line: one Typer app, thin by design.

Each command group lives in its own module under :mod:`synthlm.commands` and exposes
``register(app)``; modules are discovered, so adding a command is one new file. Commands only
parse arguments and call library functions. Bad input (:class:`~synthlm.errors.UserError`)
prints one clear ``error:`` line and exits with status 2; usage errors exit 2 as well.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from synthlm import __version__, commands
from synthlm.errors import UserError

app = typer.Typer(
    name="synthlm",
    help="Pretrain language models on natural and synthetic data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synthlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Pretrain language models on natural and synthetic data."""


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


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
