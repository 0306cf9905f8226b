"""``synthlm report``: curves, final metrics and config differences of runs as HTML + PNGs."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    runs: list[Path] = typer.Argument(
        ..., help="Run directories; a sweep dir (or a folder of runs) expands to its runs."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for index.html and the PNGs (created if missing)."
    ),
    title: str = typer.Option(None, "--title", help="Page title (default: from the run names)."),
    watch: float = typer.Option(
        None, "--watch", help="Rebuild every SECONDS until Ctrl-C; the page reloads itself."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Compare runs: loss vs tokens (natural and synthetic apart), eval, lr, throughput, configs.

    Works on runs still training: the latest records are read each time.
    """
    from synthlm.report import Report, build_report, watch_report

    def summary(built: Report) -> None:
        if not quiet:
            keys = ", ".join(built.differing) or "none"
            typer.echo(
                f"wrote {built.page} ({len(built.figures)} figures, {len(built.runs)} runs; differing keys: {keys})"
            )

    if watch is None:
        summary(build_report(runs, out, title=title, progress=not quiet))
        return
    watch_report(runs, out, watch, title=title, on_build=summary, progress=not quiet)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
