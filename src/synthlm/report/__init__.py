"""Run reports: curves, final metrics and config differences of one or many runs, as HTML + PNGs.

``synthlm report RUN [RUN...] --out DIR`` calls :func:`build_report`. The steps are separate
modules so each can be used alone: :mod:`.load` reads run directories, :mod:`.diff` names runs
after their config differences, :mod:`.plots` draws the figures, :mod:`.html` writes the page.
Every file appears complete or not at all, so a browser refreshing the page while ``--watch``
regenerates it never sees half a report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json
from synthlm.report.diff import differing_keys, run_labels
from synthlm.report.load import Run, Sweep, find_sweeps, load_run, load_runs, run_names

__all__ = ["Report", "Run", "build_report", "load_run", "load_runs", "watch_report"]

PAGE = "index.html"
MANIFEST = "report.json"


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
) -> Report:
    """Read the runs at ``paths`` (sweep dirs expand to their runs) and write ``out/index.html``.

    ``refresh`` adds an HTML auto-reload every that many seconds (used by ``--watch``).
    ``loaded`` are those runs already read by the caller (``load_runs(paths)``), so a command
    that checks its flags against the runs before writing anything reads them only once.
    """
    runs = list(loaded) if loaded is not None else load_runs(paths)
    sweeps = find_sweeps(paths)
    out = _prepare_out(Path(out), runs)
    from synthlm.report import html, plots
    from synthlm.report.comparable import differences as incomparable

    differing = differing_keys([r.config for r in runs if r.config]) if len(runs) > 1 else []
    labels = run_labels([r.config for r in runs], run_names(runs))
    found = incomparable(runs)
    colors = plots.run_colors(len(runs))
    drawn = plots.render_all(runs, labels, out, dpi=dpi, progress=progress, differences=found)
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
    _remove_stale(out, figures)
    html.write_page(out / PAGE, page)
    atomic_write_json(
        out / MANIFEST,
        {
            "runs": [str(r.path) for r in runs],
            "labels": labels,
            "differing": differing,
            "figures": [p.name for p in figures],
            "sweeps": [sweep.to_dict() for sweep in sweeps],
            "not_comparable": [d.to_dict(run_names(runs)) for d in found],
        },
    )
    return Report(out / PAGE, figures, runs, labels, differing, sweeps)


# folders of a run dir that hold saved models: index.html and PNGs there would be taken for
# part of the model (copied, uploaded, loaded along with it)
MODEL_DIRS = ("final", "checkpoints")


def _prepare_out(out: Path, runs: Sequence[Run]) -> Path:
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
    out.mkdir(parents=True, exist_ok=True)
    return out


def _title(runs: Sequence[Run]) -> str:
    return (
        f"synthlm report: {runs[0].name}" if len(runs) == 1 else f"synthlm report: {len(runs)} runs"
    )


def _remove_stale(out: Path, figures: Sequence[Path]) -> None:
    """Delete PNGs an earlier report in ``out`` wrote that this one no longer has (only ours)."""
    manifest = out / MANIFEST
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8")).get("figures", [])
    except (OSError, ValueError, AttributeError):
        return
    keep = {p.name for p in figures}
    for name in previous:
        if (
            isinstance(name, str)
            and name not in keep
            and Path(name).name == name
            and name.endswith(".png")
        ):
            (out / name).unlink(missing_ok=True)


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
