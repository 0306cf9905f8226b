"""The ``synthlm`` command line: thin by design, and fast to start.

Each command lives in its own module under :mod:`synthlm.commands`, named after the command
(``commands/train.py`` is ``synthlm train``), and exposes ``register(app)``; adding a command is
one new file. The root group imports only the module of the command being run: a command's
``--help`` or a 5M-token ``synth generate`` should not pay for importing pydantic models,
asyncio and HTTP clients of every other command (that was half of the start-up time).

Bad input (:class:`~synthlm.errors.UserError`) prints one clear ``error:`` line and exits with
status 2; usage errors exit 2 as well. Known failures that are facts about the user's files or
machine (a full or read-only disk, an output path that is a directory, a non-UTF-8 config, a
truncated JSON/parquet/safetensors file) are turned into such a line in one place,
:func:`synthlm.errors.explain`, not by try/except in every command. ``synthlm --debug CMD`` (or
``SYNTHLM_DEBUG=1``) shows the full traceback instead. SIGTERM unwinds like Ctrl-C, so commands
remove their temporary files and worker processes on the way out. A finished command exits
through :func:`fast_exit`, which skips Python's ~1 s teardown of torch and transformers.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pkgutil
import signal
import sys
import threading
from functools import cache
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer >= 0.24 vendors click; older typer uses click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException

from synthlm import __version__, commands
from synthlm.errors import explain


@cache
def command_names() -> tuple[str, ...]:
    """Every command, from the module names in :mod:`synthlm.commands`."""
    return tuple(
        sorted(
            m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")
        )
    )


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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of any error (also: SYNTHLM_DEBUG=1)."
    ),
) -> None:
    """Pretrain language models on natural and synthetic data."""


def _debug_requested(argv: list[str]) -> bool:
    """``--debug`` before the command name, or ``SYNTHLM_DEBUG=1`` (checked before parsing, so it
    also covers errors raised while a command's options are being read)."""
    for arg in argv:
        if not arg.startswith("-"):
            break
        if arg == "--debug":
            return True
    return os.environ.get("SYNTHLM_DEBUG", "") not in ("", "0")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's kill, ``timeout``) unwinds like Ctrl-C: ``finally`` blocks run."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one ``error:`` line for every known failure, a traceback for bugs."""
    code = _run(list(sys.argv[1:] if argv is None else argv))
    if argv is None:  # the program itself (console script, ``python -m synthlm``)
        fast_exit(code)
    sys.exit(code)


def _run(args: list[str]) -> int:
    """Run one command; the exit status (known failures print their ``error:`` line first)."""
    debug = _debug_requested(args)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(args=args, prog_name="synthlm", standalone_mode=False)
    except ClickException as exc:  # usage errors: shown as typer shows them, exit 2
        _show_usage_error(exc)
        return exc.exit_code
    except typer.Abort as exc:  # click turns EOFError (a truncated .gz) into Abort
        if exc.__cause__ is None:
            typer.echo("Aborted!", err=True)
            return 1
        return _fail(exc.__cause__, debug)
    except Exception as exc:
        return _fail(exc, debug)
    if code == 130:
        typer.secho("interrupted", err=True)
    return code if isinstance(code, int) else 0


def fast_exit(code: int) -> NoReturn:
    """Exit as Python would, minus tearing down every module and object one by one.

    After torch and transformers are loaded that teardown costs ~1 s of CPU per command (a
    60-step tiny CPU run is ~8 s in all) and does no work a finished command needs. What a
    normal exit does that matters is kept, in Python's order: wait for non-daemon threads, run
    the ``atexit`` handlers (logging's flush, multiprocessing's worker clean-up, weakref
    finalizers, trackers' own), flush stdout and stderr. Multi-process launches (torchrun,
    ``accelerate launch``) exit the ordinary way, leaving their teardown to torch.distributed.
    """
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)  # CPython's; absent: exit as usual
    if run_exitfuncs is None or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        sys.exit(code)
    _wait_for_threads()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python reports it and exits 120
            code = code or 120
    os._exit(code)


def _wait_for_threads() -> None:
    """Python's own first exit step: tell thread pools to stop, then join non-daemon threads.

    Joining alone hangs on an idle ``concurrent.futures`` worker (torch's compiler leaves some
    after ``model.compile``): it waits for work until the pool's shutdown hook, registered with
    ``threading._register_atexit``, wakes it. ``threading._shutdown`` runs those hooks and the
    joins in the interpreter's order; where a Python lacks it, the hooks are run by hand.
    """
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
        return
    for hook in reversed(getattr(threading, "_threading_atexits", [])):
        hook()
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()


def _show_usage_error(exc: ClickException) -> None:
    """One ``error:`` line, as every other bad input gets (typer draws a boxed panel): the
    command, click's message, the closest command name for a typo, and where help is."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "synthlm"
    message = exc.format_message().rstrip(".")
    typer.secho(
        f"error: {path}: {message}{_closest_command(ctx, message)} (see '{path} --help')",
        err=True,
        fg=typer.colors.RED,
    )


def _closest_command(ctx: Any, message: str) -> str:
    """``; did you mean 'train'?`` for ``No such command 'trian'`` (click names none)."""
    import difflib
    import re

    typed = re.fullmatch(r"No such command '(.+)'", message)
    if typed is None or ctx is None or not hasattr(ctx.command, "list_commands"):
        return ""
    close = difflib.get_close_matches(typed.group(1), ctx.command.list_commands(ctx), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _fail(exc: BaseException, debug: bool) -> int:
    known = explain(exc)
    if known is None or debug:
        raise exc
    message, code = known
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return code
