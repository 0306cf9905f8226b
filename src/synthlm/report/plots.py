"""Figures for a run report: which metrics go together, and drawing them as small PNGs.

Two steps, kept apart so each stays simple: *panel builders* (a registry, one function per
family of metrics) look at the metric names the runs logged and describe figures as plain data;
:func:`render` draws any such description. Adding a new family of plots is one decorated
function. Metric names no builder claims are not plotted (they still reach the final table).

Colour always means run (the same colour in every figure and in the HTML tables); line style
means train (solid) or eval (dashed with dots). Curves that do not compare (another objective,
tokenizer, eval set or eval scoring: :mod:`.comparable`) never share axes: such a panel is
drawn once per group of runs that compare, titled by what sets the group apart, so a figure
cannot invite the comparison the final table refuses (a legend mark would still overlay them).

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas and never through
``pyplot``: no GUI backend, no global figure registry to leak, and no change to the backend of
a notebook that calls us.
"""

from __future__ import annotations

import hashlib
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from synthlm.fileio import atomic_path
from synthlm.registry import Registry
from synthlm.report.comparable import Difference, curve_groups
from synthlm.report.load import Run

MAX_BARS = 40  # metrics per bar chart; every value is in the final-metrics table anyway
MARKER_LIMIT = 200  # points per curve up to which each point gets a marker
SMOOTH_FROM = 20  # train curves with at least this many points are drawn raw (faint) + smoothed
LEGEND_CHARS_PER_INCH = 14  # legend text at 8 pt, with margin: decides one row vs one per line
LEGEND_LINES_PER_RUN = 3  # a longer label is shortened in the legend (the page's tables have it)
LEGEND_ENTRY_INCHES = 0.2  # height of a one-line legend entry at 8 pt, spacing included
LEGEND_LINE_INCHES = 0.13  # each further line of a wrapped label


@dataclass(frozen=True)
class Curve:
    key: str
    style: str = "train"  # "train" (solid) or "eval" (dashed, dots)
    smooth: bool = True  # noisy train metrics; not a schedule (lr), not eval points


@dataclass(frozen=True)
class Panel:
    """One set of axes: its curves (one line per run and curve) or, for bars, a results file."""

    title: str
    curves: tuple[Curve, ...] = ()
    ylabel: str = ""
    log: bool = False
    unit_range: bool = False  # accuracies: y from 0 to 1
    results: str = ""  # bar chart of RUN/eval/<results>.json ...
    metrics: tuple[str, ...] = ()  # ... restricted to these entries
    runs: tuple[int, ...] | None = None  # only these runs' curves (a comparable group); None: all


@dataclass(frozen=True)
class FigureSpec:
    slug: str  # file name without .png
    title: str
    panels: tuple[Panel, ...]
    caption: str = ""


@dataclass
class Drawn:
    """A rendered figure: where the PNG went and what it shows."""

    spec: FigureSpec
    path: Path
    notes: list[str] = field(default_factory=list)


Builder = Callable[[Sequence[Run]], list[FigureSpec]]
PANEL_BUILDERS: Registry[Builder] = Registry("report panel")


def panel_builder(name: str) -> Callable[[Builder], Builder]:
    """Register a function that turns the runs' metric names into figure descriptions."""
    return PANEL_BUILDERS.register(name)


def figure_specs(runs: Sequence[Run], differences: Sequence[Difference] = ()) -> list[FigureSpec]:
    """Every figure the registered builders want for these runs, in registration order.

    Curves no run logged at two or more points (metrics evaluated once, at the end) are left
    out: a panel with one dot says nothing a table does not say better, and every value is in
    the final-metrics table. A panel whose curves do not compare across the runs
    (``differences``) becomes one panel per group of runs that do.
    """
    specs = (
        plottable(split_incomparable(spec, runs, differences), runs)
        for build in PANEL_BUILDERS.values()
        for spec in build(runs)
    )
    return [spec for spec in specs if spec.panels]


def split_incomparable(
    spec: FigureSpec, runs: Sequence[Run], differences: Sequence[Difference]
) -> FigureSpec:
    """``spec`` with each line panel whose runs fall into several comparable groups drawn
    once per group; the caption says so and why."""
    if not differences:
        return spec
    panels: list[Panel] = []
    why: list[str] = []
    for panel in spec.panels:
        groups = (
            [] if panel.results else curve_groups([c.key for c in panel.curves], runs, differences)
        )
        if len(groups) < 2:
            panels.append(panel)
            continue
        why.append(panel.title)
        panels += [
            replace(panel, title=f"{panel.title}\n{_shorten(g.label)}", runs=g.runs) for g in groups
        ]
    if not why:
        return spec
    note = (
        f"Runs whose curves do not compare (see Comparability) are in separate panels: "
        f"{', '.join(dict.fromkeys(why))}."
    )
    return replace(spec, panels=tuple(panels), caption=" ".join(filter(None, [spec.caption, note])))


def _shorten(label: str) -> str:
    """A group's label on at most two lines of a panel title (the page lists every value)."""
    return textwrap.fill(label, 48, max_lines=2, placeholder=" ...")


def plottable(spec: FigureSpec, runs: Sequence[Run]) -> FigureSpec:
    """``spec`` without the curves that are a single point in every run of their panel (bar
    panels stay)."""
    panels = []
    for panel in spec.panels:
        if panel.results:
            panels.append(panel)
            continue
        members = runs if panel.runs is None else [runs[i] for i in panel.runs]
        curves = tuple(c for c in panel.curves if any(_points(run, c.key) >= 2 for run in members))
        if curves:
            panels.append(replace(panel, curves=curves))
    return replace(spec, panels=tuple(panels))


def _points(run: Run, key: str) -> int:
    column = run.columns.get(key)
    return 0 if column is None else len(column.values)


def why_no_figures(runs: Sequence[Run]) -> str:
    """Why :func:`figure_specs` found nothing to draw, for a summary that would else just say
    "0 figures" and leave a user of a short run wondering whether the report is broken."""
    if any(len(column.values) for run in runs for column in run.columns.values()):
        return "no metric logged more than once yet; single values are in the Final metrics table"
    return "no metrics logged yet"


# ---------------------------------------------------------------------------------------------
# Panel builders


def _keys(runs: Sequence[Run]) -> list[str]:
    return list(dict.fromkeys(k for run in runs for k in run.columns))


def _kind(runs: Sequence[Run], name: str, keys: Iterable[str]) -> str:
    """A source's kind from any run's config; otherwise accuracy metrics mean a synthetic task."""
    for run in runs:
        if name in run.source_kinds:
            return run.kind_of(name)
    return "synthetic" if any(k.startswith(f"eval/{name}/acc") for k in keys) else "natural"


def _single(
    slug: str,
    title: str,
    key: str,
    keys: list[str],
    ylabel: str = "",
    log: bool = False,
    smooth: bool = True,
) -> list[FigureSpec]:
    if key not in keys:
        return []
    return [
        FigureSpec(slug, title, (Panel(title, (Curve(key, smooth=smooth),), ylabel or key, log),))
    ]


@panel_builder("train_loss")
def _train_loss(runs: Sequence[Run]) -> list[FigureSpec]:
    return _single("loss", "Training loss", "loss", _keys(runs), "loss (nats/token)")


@panel_builder("source_loss")
def _source_loss(runs: Sequence[Run]) -> list[FigureSpec]:
    """Train loss per source and eval loss per eval set, natural and synthetic in separate figures."""
    keys = _keys(runs)
    names = _loss_names(keys)
    specs = []
    for kind in ("natural", "synthetic"):
        panels = tuple(_loss_panel(name, keys) for name in names if _kind(runs, name, keys) == kind)
        caption = (
            "solid: training loss on the source; dashed: eval loss on the eval set of that name"
        )
        specs.append(FigureSpec(f"loss_{kind}", f"Loss on {kind} data", panels, caption))
    return specs


def _loss_names(keys: list[str]) -> list[str]:
    names = []
    for key in keys:
        match = re.fullmatch(r"loss/(.+)", key) or re.fullmatch(r"eval/(.+)/loss", key)
        if match:
            names.append(match.group(1))
    return list(dict.fromkeys(names))


def _loss_panel(name: str, keys: list[str]) -> Panel:
    curves = [
        Curve(k, style)
        for k, style in ((f"loss/{name}", "train"), (f"eval/{name}/loss", "eval"))
        if k in keys
    ]
    return Panel(name, tuple(curves), "loss (nats/token)")


@panel_builder("perplexity")
def _perplexity(runs: Sequence[Run]) -> list[FigureSpec]:
    keys = _keys(runs)
    panels = tuple(
        Panel(m.group(1), (Curve(k, "eval"),), "perplexity", log=True)
        for k in keys
        if (m := re.fullmatch(r"eval/(.+)/ppl", k))
    )
    return [FigureSpec("perplexity", "Eval perplexity", panels)]


@panel_builder("accuracy")
def _accuracy(runs: Sequence[Run]) -> list[FigureSpec]:
    """Synthetic-task exact match: one figure per eval set, one panel overall plus one per domain."""
    keys = _keys(runs)
    sets = list(
        dict.fromkeys(m.group(1) for k in keys if (m := re.fullmatch(r"eval/([^/]+)/acc(/.+)?", k)))
    )
    specs = []
    for name in sets:
        acc_keys = [k for k in keys if k == f"eval/{name}/acc" or k.startswith(f"eval/{name}/acc/")]
        panels = tuple(
            Panel(_domain_title(k, name), (Curve(k, "eval"),), "accuracy", unit_range=True)
            for k in acc_keys
        )
        specs.append(
            FigureSpec(
                f"accuracy_{_slug(name)}",
                f"Synthetic-task accuracy: {name}",
                panels,
                "exact match per domain",
            )
        )
    return specs


# eval/<set>/<metric> that have figures of their own (losses, perplexity, synthetic accuracy)
OWN_FIGURES = frozenset({"loss", "ppl", "acc"})


@panel_builder("eval_metrics")
def _eval_metrics(runs: Sequence[Run]) -> list[FigureSpec]:
    """Every other metric of an eval set over training: fine-tuning scores (accuracy, ROUGE-L,
    exact match, correlations), an objective's token-group losses and accuracies (DEPTH), bits
    per byte. One figure per set, a panel per metric; breakdowns below a metric (per task,
    per category) stay in the final-metrics table, where a hundred of them fit."""
    keys = _keys(runs)
    by_set: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "eval" and parts[2] not in OWN_FIGURES:
            by_set.setdefault(parts[1], []).append(key)
    return [
        FigureSpec(
            f"eval_metrics_{_slug(name)}",
            f"Eval metrics: {name}",
            tuple(
                Panel(
                    key.rsplit("/", 1)[-1],
                    (Curve(key, "eval"),),
                    key.rsplit("/", 1)[-1],
                    unit_range=_within_unit(runs, key),
                )
                for key in metric_keys
            ),
        )
        for name, metric_keys in by_set.items()
    ]


def _domain_title(key: str, name: str) -> str:
    domain = key.removeprefix(f"eval/{name}/acc").lstrip("/")
    return domain or "all domains"


@panel_builder("lm_eval")
def _lm_eval(runs: Sequence[Run]) -> list[FigureSpec]:
    """lm-evaluation-harness scores logged during training (``lm_eval/<task>/<metric>``), one
    panel per task and metric; scores that stay in [0, 1] get the accuracy axis."""
    keys = [k for k in _keys(runs) if k.startswith("lm_eval/")]
    panels = tuple(
        Panel(
            key.removeprefix("lm_eval/"),
            (Curve(key, "eval"),),
            key.rsplit("/", 1)[-1],
            log="perplexity" in key,
            unit_range=_within_unit(runs, key),
        )
        for key in keys
    )
    caption = "benchmarks of train.lm_eval, run by lm-evaluation-harness during training"
    return [FigureSpec("lm_eval", "lm-eval benchmarks during training", panels, caption)]


def _within_unit(runs: Sequence[Run], key: str) -> bool:
    values = [run.columns[key].values for run in runs if key in run.columns]
    return bool(values) and all(((v >= 0) & (v <= 1)).all() for v in values)


@panel_builder("optimizer")
def _optimizer(runs: Sequence[Run]) -> list[FigureSpec]:
    keys = _keys(runs)
    return [
        *_single("lr", "Learning rate", "lr", keys, "learning rate", smooth=False),
        *_single("grad_norm", "Gradient norm", "grad_norm", keys, "grad norm"),
    ]


@panel_builder("throughput")
def _throughput(runs: Sequence[Run]) -> list[FigureSpec]:
    keys = _keys(runs)
    panels = (
        [Panel("Tokens per second", (Curve("tokens_per_s"),), "tokens/s")]
        if "tokens_per_s" in keys
        else []
    )
    panels += [Panel("Model FLOPs utilisation", (Curve("mfu"),), "MFU")] if "mfu" in keys else []
    return [FigureSpec("throughput", "Throughput", tuple(panels))]


@panel_builder("results")
def _results(runs: Sequence[Run]) -> list[FigureSpec]:
    """One bar chart per RUN/eval/<name>.json (QA, lm-eval, ...), runs side by side.

    Scores in [0, 1] (accuracies, F1) and everything else (counts, perplexities) get separate
    panels: on one shared axis a count of 500 would flatten every accuracy to nothing.
    """
    stems = list(dict.fromkeys(stem for run in runs for stem in run.results))
    specs = []
    for stem in stems:
        metrics = list(dict.fromkeys(m for run in runs for m in run.results.get(stem, {})))
        unit = tuple(
            m for m in metrics if all(0 <= run.results.get(stem, {}).get(m, 0) <= 1 for run in runs)
        )
        other = tuple(m for m in metrics if m not in unit)
        panels = [
            Panel(title, results=stem, metrics=group)
            for title, group in ((f"{stem}: scores", unit), (f"{stem}: other values", other))
            if group
        ]
        specs.append(FigureSpec(f"results_{_slug(stem)}", f"Eval results: {stem}", tuple(panels)))
    return specs


def _slug(text: str) -> str:
    """A file-name-safe form of an eval set or results name, unique per name: a name that had
    to change gets a short digest of itself appended, so ``a b`` and ``a_b`` (both ``a_b`` once
    cleaned) do not overwrite each other's PNG."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "unnamed"
    if cleaned == text:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


# ---------------------------------------------------------------------------------------------
# Drawing


def x_axis(runs: Sequence[Run]) -> str:
    """Tokens when every logged point has a token count (comparable across batch sizes), else step."""
    columns = [c for run in runs for c in run.columns.values()]
    return "tokens" if columns and all(np.isfinite(c.tokens).all() for c in columns) else "step"


def run_colors(count: int) -> list[str]:
    """Hex colours, one per run, shared by every figure and the HTML tables."""
    from matplotlib import colormaps, colors

    if count <= 10:
        cmap, points = colormaps["tab10"], [i / 10 + 0.05 for i in range(count)]
    elif count <= 20:
        cmap, points = colormaps["tab20"], [i / 20 + 0.025 for i in range(count)]
    else:
        cmap, points = colormaps["turbo"], list(np.linspace(0.05, 0.95, count))
    return [colors.to_hex(cmap(p)) for p in points]


def render_all(
    runs: Sequence[Run],
    labels: Sequence[str],
    out_dir: Path,
    dpi: int = 100,
    progress: bool = False,
    differences: Sequence[Difference] = (),
) -> list[Drawn]:
    """Draw every figure for ``runs`` into ``out_dir`` (PNG files written atomically); runs
    that ``differences`` make incomparable get panels of their own."""
    from tqdm.auto import tqdm

    axis = x_axis(runs)
    colors = run_colors(len(runs))
    specs = figure_specs(runs, differences)
    return [
        render(spec, runs, labels, colors, axis, out_dir, dpi)
        for spec in tqdm(specs, desc="figures", unit="fig", disable=not progress, leave=False)
    ]


def render(
    spec: FigureSpec,
    runs: Sequence[Run],
    labels: Sequence[str],
    colors: Sequence[str],
    axis: str,
    out_dir: Path,
    dpi: int = 100,
) -> Drawn:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(3, len(spec.panels))
    rows = math.ceil(len(spec.panels) / cols)
    fig = Figure(figsize=(4.0 * cols, 2.8 * rows + 0.5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    drawn = Drawn(spec, Path(out_dir) / f"{spec.slug}.png")
    used: set[int] = set()
    styles: set[str] = set()
    for ax, panel in zip(axes, spec.panels):
        if panel.results:
            used |= _draw_bars(ax, panel, runs, colors, drawn)
        else:
            used |= _draw_lines(ax, panel, runs, colors, axis, styles)
        if len(spec.panels) > 1 or panel.title != spec.title:
            ax.set_title(panel.title, fontsize=9)
    for ax in axes[len(spec.panels) :]:
        ax.set_visible(False)
    fig.suptitle(spec.title, fontsize=11)
    _legend(fig, sorted(used), labels, colors, styles)
    with atomic_path(drawn.path) as temp:
        fig.savefig(temp, format="png")
    return drawn


def _draw_lines(
    ax, panel: Panel, runs: Sequence[Run], colors: Sequence[str], axis: str, styles: set[str]
) -> set[int]:
    from matplotlib.ticker import EngFormatter

    used = set()
    for index, run in enumerate(runs):
        if panel.runs is not None and index not in panel.runs:
            continue
        for curve in panel.curves:
            column = run.columns.get(curve.key)
            if column is None or not len(column.values):
                continue
            eval_style = curve.style == "eval"
            marker = _marker(eval_style, len(column.values))
            x, values = column.x(axis), column.values
            if curve.smooth and not eval_style and len(values) >= SMOOTH_FROM:
                ax.plot(x, values, color=colors[index], linewidth=0.8, alpha=0.25)
                values = smooth(values)
                styles.add("smoothed")
            ax.plot(
                x,
                values,
                color=colors[index],
                linestyle="--" if eval_style else "-",
                marker=marker,
                markersize=3,
                linewidth=1.2,
            )
            used.add(index)
            styles.add(curve.style)
    ax.set_xlabel(axis, fontsize=8)
    ax.set_ylabel(panel.ylabel, fontsize=8)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if panel.log and _all_positive(ax):
        ax.set_yscale("log")
    if panel.unit_range:
        ax.set_ylim(-0.02, 1.02)
    return used


def _marker(eval_style: bool, points: int) -> str | None:
    """Eval points get markers while they are few; a single point always does, as a line
    through one point draws nothing (a run just started, beside longer ones, would vanish)."""
    return "o" if points == 1 or (eval_style and points <= MARKER_LIMIT) else None


def smooth(values: np.ndarray, weight: float | None = None) -> np.ndarray:
    """TensorBoard's debiased exponential moving average.

    ``s_t = w s_{t-1} + (1 - w) v_t`` from ``s_0 = 0``, divided by ``1 - w^t`` so the start is
    not pulled towards zero. The weight grows with the number of points (0.6 for a short run,
    up to 0.9), so the smoothed line spans a similar fraction of any run. NaNs are skipped.
    """
    values = np.asarray(values, dtype=np.float64)
    w = weight if weight is not None else min(0.9, max(0.6, 1 - 20 / max(len(values), 1)))
    out = np.full(len(values), np.nan)
    last, count = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        last, count = w * last + (1 - w) * v, count + 1
        out[i] = last / (1 - w**count)
    return out


def _all_positive(ax) -> bool:
    return all((np.asarray(line.get_ydata()) > 0).all() for line in ax.get_lines())


def _draw_bars(
    ax, panel: Panel, runs: Sequence[Run], colors: Sequence[str], drawn: Drawn
) -> set[int]:
    metrics = list(panel.metrics)
    if len(metrics) > MAX_BARS:
        drawn.notes.append(
            f"{panel.results}: first {MAX_BARS} of {len(metrics)} metrics drawn; all are "
            f"in the table below"
        )
        metrics = metrics[:MAX_BARS]
    present = [i for i, run in enumerate(runs) if panel.results in run.results]
    height = 0.8 / max(len(present), 1)
    positions = np.arange(len(metrics))
    for slot, index in enumerate(present):
        values = [runs[index].results[panel.results].get(m, np.nan) for m in metrics]
        ax.barh(positions + slot * height, values, height=height, color=colors[index])
    ax.set_yticks(
        positions + height * (len(present) - 1) / 2,
        [textwrap.shorten(m, 40) for m in metrics],
        fontsize=7,
    )
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.figure.set_size_inches(
        ax.figure.get_figwidth(),
        max(ax.figure.get_figheight(), 1.2 + 0.18 * len(metrics) * max(len(present), 1)),
    )
    return set(present)


def _legend(
    fig, used: list[int], labels: Sequence[str], colors: Sequence[str], styles: set[str]
) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[i], linewidth=2) for i in used]
    width = int(fig.get_figwidth() * LEGEND_CHARS_PER_INCH)
    names = [
        textwrap.fill(labels[i], width - 6, max_lines=LEGEND_LINES_PER_RUN, placeholder=" ...")
        for i in used
    ]
    if {"train", "eval"} <= styles:
        handles += [
            Line2D([], [], color="0.4", linestyle="-"),
            Line2D([], [], color="0.4", linestyle="--", marker="o", markersize=3),
        ]
        names += ["train", "eval"]
    if "smoothed" in styles:
        handles += [Line2D([], [], color="0.4", linewidth=0.8, alpha=0.3)]
        names += ["raw (solid: smoothed)"]
    if not handles:
        return
    one_row = sum(len(n) + 6 for n in names) <= width and "\n" not in "".join(names)
    _grow_for_legend(fig, ["one row"] if one_row else names)
    fig.legend(
        handles,
        names,
        loc="outside lower center",
        ncols=len(handles) if one_row else 1,
        fontsize=8,
        frameon=False,
    )


def _grow_for_legend(fig, entries: Sequence[str]) -> None:
    """Make the figure taller by the legend's height.

    Constrained layout takes the room for a legend outside the axes from the axes themselves:
    in a figure of fixed height a legend of long, wrapped run labels (config differences) left
    the axes no height at all, and matplotlib skipped the layout with a warning.
    """
    lines = sum(entry.count("\n") for entry in entries)
    extra = len(entries) * LEGEND_ENTRY_INCHES + lines * LEGEND_LINE_INCHES + 0.1
    fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + extra)
