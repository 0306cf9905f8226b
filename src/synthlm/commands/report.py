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
    equal_tokens: str = typer.Option(
        None,
        "--equal-tokens",
        help="Compare runs at equal tokens of this source (e.g. web): its eval loss vs "
        "its tokens seen.",
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
    from synthlm.report import Report, build_report, watch_report

    def summary(built: Report) -> None:
        if not quiet:
            keys = ", ".join(built.differing) or "none"
            typer.echo(
                f"wrote {built.page} ({len(built.figures)} figures, {len(built.runs)} "
                f"runs; differing keys: {keys})"
            )

    if watch is None:
        built = build_report(runs, out, title=title, progress=not quiet)
        summary(built)
        if equal_tokens:
            from synthlm.report.compare import write_equal_tokens

            typer.echo(write_equal_tokens(built, out, equal_tokens, metric, at))
        return
    watch_report(runs, out, watch, title=title, on_build=summary, progress=not quiet)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
