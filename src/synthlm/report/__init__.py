"""Run reports: curves, final metrics and config differences of one or many runs, as HTML + PNGs.

``synthlm report RUN [RUN...] --out DIR`` calls :func:`build_report`. The steps are separate
modules so each can be used alone: :mod:`.load` reads run directories, :mod:`.diff` names runs
after their config differences, :mod:`.plots` draws the figures, :mod:`.html` writes the page.
The report is built in a folder beside ``--out`` and moved into place whole (:mod:`.publish`),
so a stopped or killed report leaves the earlier one as it was, and a browser refreshing the
page while ``--watch`` regenerates it never sees half a report.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json
from synthlm.report.diff import differing_keys, run_labels
from synthlm.report.interrupts import interrupts_kept
from synthlm.report.load import Run, Sweep, find_sweeps, load_run, load_runs, run_names
from synthlm.report.publish import MANIFEST, PAGE, publish_report, staging_dir

if TYPE_CHECKING:
    from synthlm.report.compare import Comparison

__all__ = ["Report", "Run", "build_report", "load_run", "load_runs", "watch_report"]


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote."""

    page: Path
    figures: list[Path]
    runs: list[Run]
    labels: list[str]
    differing: list[str]
    sweeps: list[Sweep] = field(default_factory=list)  # sweep dirs given, every point listed


def build_report(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    title: str | None = None,
    refresh: int | None = None,
    dpi: int = 100,
    progress: bool = False,
    loaded: Sequence[Run] | None = None,
    comparison: Comparison | None = None,
) -> Report:
    """Read the runs at ``paths`` (sweep dirs expand to their runs) and write ``out/index.html``.

    ``refresh`` adds an HTML auto-reload every that many seconds (used by ``--watch``).
    ``loaded`` are those runs already read by the caller (``load_runs(paths)``), so a command
    that checks its flags against the runs before writing anything reads them only once.
    ``comparison`` (``--equal-tokens``) is written with the report, so it is published with it.
    The report is built beside ``out`` and moved into place whole (:mod:`.publish`): a report
    stopped or killed part-way leaves ``out`` as it was.
    """
    runs = list(loaded) if loaded is not None else load_runs(paths)
    sweeps = find_sweeps(paths)
    out = _check_out(Path(out), runs)
    staging = staging_dir(out)
    try:
        with interrupts_kept():  # an interrupt a library swallowed must not publish a report
            report = _write_report(runs, sweeps, staging, title, refresh, dpi, progress)
            if comparison is not None:
                from synthlm.report.compare import write_equal_tokens

                write_equal_tokens(comparison, runs, staging)
        publish_report(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _moved(report, staging, out)


def _write_report(
    runs: list[Run],
    sweeps: list[Sweep],
    folder: Path,
    title: str | None,
    refresh: int | None,
    dpi: int,
    progress: bool,
) -> Report:
    """Draw the figures and write the page and manifest into ``folder`` (the staging dir)."""
    from synthlm.report import html, plots
    from synthlm.report.comparable import differences as incomparable

    differing = differing_keys([r.config for r in runs if r.config]) if len(runs) > 1 else []
    labels = run_labels([r.config for r in runs], run_names(runs))
    found = incomparable(runs)
    colors = plots.run_colors(len(runs))
    drawn = plots.render_all(runs, labels, folder, dpi=dpi, progress=progress, differences=found)
    page = html.render_page(
        runs,
        labels,
        colors,
        drawn,
        differing,
        title=title or _title(runs),
        axis=plots.x_axis(runs),
        refresh=refresh,
        sweeps=sweeps,
        differences=found,
    )
    figures = [d.path for d in drawn]
    html.write_page(folder / PAGE, page)
    atomic_write_json(
        folder / MANIFEST,
        {
            "runs": [str(r.path) for r in runs],
            "labels": labels,
            "differing": differing,
            "figures": [p.name for p in figures],
            "sweeps": [sweep.to_dict() for sweep in sweeps],
            "not_comparable": [d.to_dict(run_names(runs)) for d in found],
        },
    )
    return Report(folder / PAGE, figures, runs, labels, differing, sweeps)


def _moved(report: Report, staging: Path, out: Path) -> Report:
    """``report`` with its paths in ``out``, where :func:`publish_report` moved them."""
    return replace(
        report,
        page=out / report.page.relative_to(staging),
        figures=[out / p.relative_to(staging) for p in report.figures],
    )


# folders of a run dir that hold saved models: index.html and PNGs there would be taken for
# part of the model (copied, uploaded, loaded along with it)
MODEL_DIRS = ("final", "checkpoints")


def _check_out(out: Path, runs: Sequence[Run]) -> Path:
    """Refuse an ``--out`` that is a file, a run dir or inside its saved models; nothing is
    created here (the report appears at ``out`` only when it is complete)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    target = out.resolve()
    if any(target == r.path.resolve() for r in runs):
        raise UserError(f"--out {out}: is one of the run directories; choose a separate folder")
    for run in runs:
        inside = [d for d in MODEL_DIRS if target.is_relative_to(run.path.resolve() / d)]
        if inside:
            raise UserError(
                f"--out {out}: is inside {run.path / inside[0]}, where the run saves its "
                "model; choose a separate folder"
            )
    return out


def _title(runs: Sequence[Run]) -> str:
    return (
        f"synthlm report: {runs[0].name}" if len(runs) == 1 else f"synthlm report: {len(runs)} runs"
    )


def watch_report(
    paths: Sequence[str | Path],
    out: str | Path,
    interval: float,
    *,
    title: str | None = None,
    on_build: Callable[[Report], None] | None = None,
    rounds: int | None = None,
    progress: bool = False,
) -> Report:
    """Rebuild the report every ``interval`` seconds (the page reloads itself) until interrupted.

    When watching ends (Ctrl-C, SIGTERM, or after ``rounds`` builds) the page is rewritten
    without its auto-reload: nothing updates it any more, and a page that keeps reloading
    would suggest it is still live.
    """
    if interval <= 0:
        raise UserError(f"--watch {interval}: expected a positive number of seconds")
    done = 0
    report = None
    try:
        while True:
            report = build_report(
                paths, out, title=title, refresh=max(1, round(interval)), progress=progress
            )
            if on_build:
                on_build(report)
            done += 1
            if rounds is not None and done >= rounds:
                return report
            time.sleep(interval)
    finally:
        if report is not None:
            _stop_refreshing(report.page)


def _stop_refreshing(page: Path) -> None:
    """Rewrite the last page --watch wrote without its ``<meta refresh>``."""
    from synthlm.report import html

    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        return  # removed meanwhile: nothing left to stop
    html.write_page(page, html.without_refresh(text))
