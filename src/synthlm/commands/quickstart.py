"""``synthlm quickstart``: the whole pipeline on shipped data, in about a minute on a CPU."""

from __future__ import annotations

from pathlib import Path

import typer


def quickstart_command(
    out: Path = typer.Option(
        Path("quickstart"), "--out", "-o", help="Directory for everything the quickstart makes."
    ),
    steps: int = typer.Option(
        None, "--steps", min=1, help="Training steps (default: the packaged config's 400)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train a tokenizer, tokenize tinyshakespeare, generate synthetic data, train, evaluate, report."""
    from synthlm.fileio import check_output
    from synthlm.quickstart import quickstart, summary

    check_output(out, kind="dir")

    result = quickstart(out, steps=steps, quiet=quiet, echo=typer.echo)
    typer.echo(summary(result))


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart_command)
