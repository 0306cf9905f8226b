"""The report page: one self-contained HTML file (CSS inline, PNGs embedded as data URIs).

Self-contained so that it survives being mailed, attached to an issue or copied off a cluster
on its own; the same PNGs are also written beside it for slides and papers. No JavaScript: the
page is static and renders the same in any browser, including headless ones in CI.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from collections.abc import Sequence
from pathlib import Path

from synthlm import __version__
from synthlm.report.comparable import Difference, why_not_comparable
from synthlm.report.diff import IGNORED_KEYS, flatten, value_text
from synthlm.report.load import (
    FAILED,
    FINISHED,
    GONE,
    NOT_STARTED,
    STARTED,
    Run,
    Sweep,
    SweepPoint,
    failure_list,
    run_names,
)
from synthlm.report.plots import Drawn
from synthlm.report.summary import summary_table
from synthlm.report.synthetic_tables import synthetic_section

LOWER_IS_BETTER = ("loss", "ppl", "bpb", "perplexity")
HIGHER_IS_BETTER = (
    "acc",
    "accuracy",
    "exact_match",
    "em",
    "f1",
    # fine-tuning metrics (synthlm.finetune.metrics)
    "exact_match_max",
    "rouge_l",
    "rouge_l_stemmed",
    "rouge_l_stemmed_max",
    "matthews_corr",
    "pearson",
    "spearman",
)

REFRESH = re.compile(r'<meta http-equiv="refresh" content="\d+">')

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 1800px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.diff td { background: #fff6d5; } td.best { font-weight: bold; }
.swatch { display: inline-block; width: .9em; height: .9em; border-radius: 2px;
  margin-right: .4em; vertical-align: -1px; }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid #eee; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 520px), 1fr));
  gap: 1rem; align-items: start; }
@media (min-width: 1100px) { .figures figure.wide { grid-column: span 2; } }
.scroll { overflow-x: auto; max-width: 100%; }
figcaption, .note { color: #666; font-size: 12px; } code { font-size: 12px; }
"""


def render_page(
    runs: Sequence[Run],
    labels: Sequence[str],
    colors: Sequence[str],
    figures: Sequence[Drawn],
    differing: Sequence[str],
    *,
    title: str,
    axis: str,
    refresh: int | None = None,
    sweeps: Sequence[Sweep] = (),
    differences: Sequence[Difference] = (),
) -> str:
    """The whole page as a string (the caller writes it atomically).

    ``differences`` (:func:`synthlm.report.comparable.differences`) are stated at the top, and
    no best is marked for a metric they make incomparable.
    """
    now = dt.datetime.now().astimezone()
    head = f'<meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style>'
    if refresh:
        head += f'<meta http-equiv="refresh" content="{int(refresh)}">'  # REFRESH matches it
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">{len(runs)} run(s){_e(_unstarted_note(sweeps))}; generated '
        f"{now:%Y-%m-%d %H:%M:%S %Z} by synthlm {__version__}; x axis: {axis}.</p>",
        _section("Summary", summary_table(runs, labels, colors)),
        _section("Runs", _runs_table(runs, labels, colors, now.timestamp())),
        _sweep_section(sweeps),
        _comparability_section(runs, differences),
        _section(
            "Differing config keys",
            _diff_table(runs, labels, colors, differing, _unstarted(sweeps)),
        ),
        _section(
            "Curves",
            _figures(figures),
        ),
        _section("Final metrics", _final_table(runs, labels, colors, differences)),
        synthetic_section(runs, labels),  # "" unless synthlm eval wrote synthetic tables
        _section("Resolved configs", _configs_table(runs, labels, colors, differing)),
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head><body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _section(title: str, content: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return (
        f'<section id="{anchor}"><h2>{_e(title)}</h2><div class="scroll">{content}</div></section>'
    )


def _run_head(labels: Sequence[str], colors: Sequence[str], first: str) -> str:
    cells = "".join(
        f'<th><span class="swatch" style="background:{c}"></span>{_e(label)}</th>'
        for label, c in zip(labels, colors)
    )
    return f"<tr><th>{_e(first)}</th>{cells}</tr>"


def _runs_table(
    runs: Sequence[Run], labels: Sequence[str], colors: Sequence[str], now: float
) -> str:
    rows = [
        "<tr><th>run</th><th>directory</th><th>status</th><th>step</th><th>tokens</th><th>notes</th></tr>"
    ]
    for run, label, color in zip(runs, labels, colors):
        step, tokens = _position(run)
        target = run.max_steps()
        step_text = (
            ""
            if step is None
            else f"{step:,}" + (f" / {target:,} ({100 * step / target:.0f}%)" if target else "")
        )
        notes = (
            [f"{run.bad_lines} unreadable line(s) in metrics.jsonl skipped"]
            if run.bad_lines
            else []
        )
        notes += [] if run.config else ["no config.yaml yet"]
        rows.append(
            f'<tr><td><span class="swatch" style="background:{color}"></span>{_e(label)}</td>'
            f"<td><code>{_e(run.path)}</code></td><td>{_e(run.status(now))}</td>"
            f'<td class="num">{_e(step_text)}</td><td '
            f'class="num">{"" if tokens is None else f"{tokens:,}"}</td>'
            f"<td>{_e('; '.join(notes))}</td></tr>"
        )
    return f'<table class="runs">{"".join(rows)}</table>'


def _position(run: Run) -> tuple[int | None, int | None]:
    """Latest step and token count logged by any metric."""
    steps = [float(c.steps[-1]) for c in run.columns.values() if len(c.steps)]
    tokens = [
        float(c.tokens[-1])
        for c in run.columns.values()
        if len(c.tokens) and math.isfinite(c.tokens[-1])
    ]
    return (int(max(steps)) if steps else None), (int(max(tokens)) if tokens else None)


def _unstarted(sweeps: Sequence[Sweep]) -> int:
    """Points of the sweeps given that have no run to show (not started, run dir gone, or
    failed before writing one)."""
    return sum(not p.has_run for sweep in sweeps for p in sweep.points)


def _unstarted_note(sweeps: Sequence[Sweep]) -> str:
    """`` of 3 sweep points (2 not started yet)`` where a sweep has points without a run or
    failed ones: a report that counted only the runs would look like the whole, healthy sweep."""
    states = {p.state for sweep in sweeps for p in sweep.points}
    return f" {unstarted_text(sweeps)}" if states - {STARTED, FINISHED} else ""


def unstarted_text(sweeps: Sequence[Sweep]) -> str:
    """``of 3 sweep points (1 not started yet, 1 failed: 000_lr-1e-3 (exit 3))`` (also said
    by the command's summary line)."""
    total = sum(len(sweep.points) for sweep in sweeps)
    states = [p.state for sweep in sweeps for p in sweep.points]
    parts = [
        f"{states.count(state)} {text}"
        for state, text in ((NOT_STARTED, "not started yet"), (GONE, "with the run dir missing"))
        if state in states
    ]
    failed = [p for sweep in sweeps for p in sweep.named(FAILED)]
    parts += [f"{len(failed)} failed: {failure_list(failed)}"] if failed else []
    return f"of {total} sweep points ({', '.join(parts)})"


def _sweep_section(sweeps: Sequence[Sweep]) -> str:
    """Every point of each sweep given and how far it got; "" when no sweep dir was given."""
    if not sweeps:
        return ""
    blocks = []
    for sweep in sweeps:
        counts = ", ".join(
            f"{len(sweep.named(state))} {state}"
            for state in dict.fromkeys([FINISHED, STARTED, NOT_STARTED, *_states(sweep)])
        )
        rows = [
            "<tr><th>point</th><th>state</th><th>last attempt</th><th>config</th>"
            "<th>run directory</th></tr>"
        ]
        for point in sweep.points:
            css = "" if point.state in (STARTED, FINISHED) else ' class="diff"'
            rows.append(
                f"<tr{css}><td>{_e(point.name)}</td><td>{_e(point.state)}</td>"
                f"<td>{_e(_attempt(point))}</td>"
                f"<td><code>{_e(point.config or '')}</code></td>"
                f"<td><code>{_e(point.run_dir)}</code></td></tr>"
            )
        blocks.append(
            f'<p class="note"><code>{_e(sweep.path)}</code>: {len(sweep.points)} points '
            f"({_e(counts)}). Points without a run are not in the tables or curves. A point "
            "has finished when its run dir holds final/; a failed one's last attempt exited "
            "non-zero (recorded in the sweep's failed/ folder; running the sweep again retries "
            "it); a started one is still training, or was stopped and resumes when the sweep "
            "runs again (see its status under Runs).</p>"
            f'<table class="sweep">{"".join(rows)}</table>'
        )
    return _section("Sweep points", "".join(blocks))


def _attempt(point: SweepPoint) -> str:
    """``exit 3 at 2026-12-03T10:00:00+00:00`` for a failed point, else ""."""
    if point.state != FAILED:
        return ""
    return point.outcome() + (f" at {point.failed_at}" if point.failed_at else "")


def _comparability_section(runs: Sequence[Run], differences: Sequence[Difference]) -> str:
    """What makes some of the runs' numbers incomparable; "" when nothing does."""
    if not differences:
        return ""
    names = run_names(runs)
    items = "".join(f"<li>{_e(d.note(names))}</li>" for d in differences)
    return _section(
        "Comparability",
        f'<p class="note">Not every number below compares across these runs:</p>'
        f'<ul class="comparability">{items}</ul>',
    )


def _states(sweep: Sweep) -> list[str]:
    return [p.state for p in sweep.points]


def _diff_table(
    runs: Sequence[Run],
    labels: Sequence[str],
    colors: Sequence[str],
    differing: Sequence[str],
    unstarted: int = 0,
) -> str:
    if len(runs) < 2:
        later = f" yet ({unstarted} sweep point(s) without a run)" if unstarted else ""
        return f'<p class="note">One run: nothing to compare{later}.</p>'
    if not differing:
        return (
            '<p class="note">The runs\' configs do not differ (outside run_dir and log paths).</p>'
        )
    flat = [flatten(run.config) for run in runs]
    rows = [_run_head(labels, colors, "key")]
    for key in differing:
        cells = "".join(f"<td><code>{_e(value_text(f, key))}</code></td>" for f in flat)
        rows.append(f'<tr class="diff"><td><code>{_e(key)}</code></td>{cells}</tr>')
    return f'<table class="differences">{"".join(rows)}</table>'


def _figures(figures: Sequence[Drawn]) -> str:
    if not figures:
        return '<p class="note">No metrics logged more than once yet.</p>'
    note = (
        '<p class="note">Faint lines: raw values; solid: smoothed (debiased EMA). Metrics logged '
        "once (end-of-run evaluations) are in Final metrics.</p>"
    )
    return f'{note}<div class="figures">{"".join(_figure(f) for f in figures)}</div>'


def _figure(drawn: Drawn) -> str:
    data = base64.b64encode(drawn.path.read_bytes()).decode("ascii")
    name = drawn.path.name
    caption = " ".join(filter(None, [drawn.spec.caption, *drawn.notes]))
    wide = ' class="wide"' if len(drawn.spec.panels) >= 3 else ""
    return (
        f'<figure id="fig-{_e(drawn.spec.slug)}"{wide}><img '
        f'src="data:image/png;base64,{data}" alt="{_e(drawn.spec.title)}">'
        f"<figcaption>{_e(drawn.spec.title)} (<a "
        f'href="{_e(name)}">{_e(name)}</a>){". " + _e(caption) if caption else ""}</figcaption></figure>'
    )


# ---------------------------------------------------------------------------------------------
# Tables of numbers


def final_metrics(runs: Sequence[Run]) -> dict[str, list[float | None]]:
    """Metric name -> last value per run: every logged numeric key and every eval file entry."""
    names = list(dict.fromkeys(k for run in runs for k in run.columns))
    names.sort(key=_metric_order)
    table = {name: [run.last(name) for run in runs] for name in names}
    for stem in dict.fromkeys(s for run in runs for s in run.results):
        for metric in dict.fromkeys(m for run in runs for m in run.results.get(stem, {})):
            table[f"{stem}/{metric}"] = [run.results.get(stem, {}).get(metric) for run in runs]
    return table


def _metric_order(name: str) -> tuple[int, str]:
    """Loss first, then per-source losses, then eval metrics, then the rest (alphabetical)."""
    if name == "loss":
        return (0, name)
    if name.startswith("loss/"):
        return (1, name)
    if name.startswith("eval/"):
        return (2, name)
    return (3, name)


def direction(name: str) -> int:
    """-1 when lower is better, +1 when higher is better, 0 when we cannot tell."""
    segments = name.rstrip("/").split("/")
    # the last two segments name the metric, or eval/<set>/<metric>/... when it is broken
    # down (per domain, per task category, per task)
    named = segments[-2:] + (segments[2:3] if segments[0] == "eval" else [])
    # an objective's token groups: <group>_loss, <group>_accuracy (DEPTH's sentence_accuracy)
    parts = {p.split(",")[0].lower().rsplit("_", 1)[-1] for p in named} | {
        p.split(",")[0].lower() for p in named
    }
    if parts & set(LOWER_IS_BETTER) and not name.endswith("stderr"):
        return -1
    if parts & set(HIGHER_IS_BETTER) and not name.endswith("stderr"):
        return 1
    return 0


def _final_table(
    runs: Sequence[Run],
    labels: Sequence[str],
    colors: Sequence[str],
    differences: Sequence[Difference] = (),
) -> str:
    table = final_metrics(runs)
    if not table:
        return '<p class="note">No numeric metrics yet.</p>'
    rows = [_run_head(labels, colors, "metric")]
    for name, values in table.items():
        sign = direction(name)
        logged = any(name in run.columns for run in runs)
        ranked = sign != 0 and len(runs) > 1  # only a ranked metric could mislead
        why = why_not_comparable(name, runs, differences, logged) if ranked else None
        best = None if why else _best(values, sign)
        cells = "".join(
            f"<td "
            f'class="num{" best" if i == best else ""}">{"" if v is None else _e(_number(v))}</td>'
            for i, v in enumerate(values)
        )
        flag = f' <span class="note">(not comparable: {_e(why)})</span>' if why else ""
        rows.append(f"<tr><td><code>{_e(name)}</code>{flag}</td>{cells}</tr>")
    note = (
        '<p class="note">Last logged value of each metric; bold: best of the runs where the '
        "direction is known (loss, ppl, bpb lower; accuracy higher) and the values compare "
        "(see Comparability).</p>"
    )
    return f'{note}<table class="final">{"".join(rows)}</table>'


def _best(values: Sequence[float | None], sign: int) -> int | None:
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if sign == 0 or len(present) < 2 or len({v for v, _ in present}) < 2:
        return None
    return (min(present) if sign < 0 else max(present))[1]


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _configs_table(
    runs: Sequence[Run], labels: Sequence[str], colors: Sequence[str], differing: Sequence[str]
) -> str:
    flat = [flatten(run.config) for run in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    if not keys:
        return '<p class="note">No config.yaml in any run yet.</p>'
    marked = set(differing)
    rows = [_run_head(labels, colors, "key")]
    for key in keys:
        css = (
            ' class="diff"'
            if key in marked
            else (' class="ignored"' if IGNORED_KEYS.search(key) else "")
        )
        cells = "".join(f"<td><code>{_e(value_text(f, key))}</code></td>" for f in flat)
        rows.append(f"<tr{css}><td><code>{_e(key)}</code></td>{cells}</tr>")
    summary = f"{len(keys)} keys, {len(marked)} differing (highlighted)"
    return f'<details open><summary>{summary}</summary><table class="configs">{"".join(rows)}</table></details>'


def without_refresh(page: str) -> str:
    """``page`` without the auto-reload :func:`render_page` adds for ``--watch``."""
    return REFRESH.sub("", page, count=1)


def write_page(path: Path, page: str) -> Path:
    from synthlm.fileio import atomic_write_text

    return atomic_write_text(path, page)
