"""``synthlm report``: curves, final metrics and config differences of runs as HTML + PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from synthlm.report import Report


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
    equal_tokens: str = typer.Option(
        None,
        "--equal-tokens",
        help="Compare runs at equal tokens of this source (e.g. web): its eval loss vs "
        "its tokens seen (not with --watch).",
    ),
    metric: str = typer.Option(
        None, "--metric", help="With --equal-tokens: the metric (default: eval/SOURCE/loss)."
    ),
    at: str = typer.Option(
        None, "--at", help="With --equal-tokens: token budgets of the source, e.g. 1M,2M,4M."
    ),
) -> None:
    """Compare runs: loss vs tokens (natural and synthetic apart), eval, lr, throughput, configs.

    Works on runs still training: the latest records are read each time.
    """
    from synthlm.report import build_report, load_runs, watch_report

    def summary(built: Report) -> None:
        if not quiet:
            typer.echo(summary_line(built))

    check_flags(watch, equal_tokens, metric, at)
    if watch is not None:
        watch_report(runs, out, watch, title=title, on_build=summary, progress=not quiet)
        return
    loaded = load_runs(runs)
    comparison = None
    if equal_tokens is not None:
        from synthlm.report.compare import equal_tokens_comparison

        # computed first: a bad source, metric, budget or masking stops before any file is written
        comparison = equal_tokens_comparison(loaded, equal_tokens, metric, at)
    built = build_report(
        runs, out, title=title, progress=not quiet, loaded=loaded, comparison=comparison
    )
    summary(built)
    if comparison is not None:
        from synthlm.report.compare import equal_tokens_text

        typer.echo(equal_tokens_text(comparison, out))


def summary_line(built: Report) -> str:
    """``wrote PAGE (N figures, M runs; differing keys: ...)``; with no figure a second line
    says why, so a short run's report does not look broken."""
    from synthlm.report.html import unstarted_text
    from synthlm.report.load import FINISHED, STARTED
    from synthlm.report.plots import why_no_figures

    figures, runs = plural(len(built.figures), "figure"), plural(len(built.runs), "run")
    points = [p for sweep in built.sweeps for p in sweep.points]
    if any(p.state not in (STARTED, FINISHED) for p in points):
        runs += f" {unstarted_text(built.sweeps)}"
    keys = ", ".join(built.differing) or "none"
    line = f"wrote {built.page} ({figures}, {runs}; differing keys: {keys})"
    return line if built.figures else f"{line}\nno figures: {why_no_figures(built.runs)}"


def plural(count: int, noun: str) -> str:
    """``1 run``, ``2 runs``, ``0 figures``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def check_flags(
    watch: float | None, equal_tokens: str | None, metric: str | None, at: str | None
) -> None:
    """Refuse flags that would otherwise be silently ignored: --metric and --at only mean
    something with --equal-tokens, and --watch rebuilds the page but not the comparison."""
    from synthlm.errors import UserError

    if equal_tokens is None:
        given = [flag for flag, value in (("--metric", metric), ("--at", at)) if value is not None]
        if given:
            flags = " and ".join(given)
            raise UserError(
                f"{flags}: only used with --equal-tokens SOURCE (e.g. --equal-tokens web "
                f"--at 1M,2M); add --equal-tokens or drop {flags}"
            )
    elif watch is not None:
        raise UserError(
            "--watch cannot be combined with --equal-tokens: the comparison is written once; "
            "run the report with --equal-tokens and without --watch (or drop --equal-tokens)"
        )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
