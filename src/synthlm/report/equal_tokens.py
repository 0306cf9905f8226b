"""Runs side by side at equal tokens *of one source*: how pre-pretraining is compared.

A run that spent its first steps on synthetic data has seen fewer natural tokens at any given
step than a natural-only baseline; comparing them by step or by total tokens hides exactly the
question asked (does synthetic data make natural text cheaper to learn?). The papers compare
the natural-language loss against natural tokens seen, at fixed natural-token budgets.

Every metrics record of a synthlm run carries ``tokens/<source>`` (training tokens that source
has given so far), so an eval metric can be read against it. The value at a budget is
interpolated linearly between the two evaluations around it, never extrapolated. A missing
value says why, because the remedies differ: a budget before the run's first evaluation
(evaluate earlier, or ask about a larger budget), after its last one although training went
past it (evaluate once more), or beyond what the run trained on at all (train longer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthlm.errors import UserError
from synthlm.report.comparable import check_equal_tokens
from synthlm.report.load import Run

BEFORE_FIRST_EVAL = "before_first_eval"
AFTER_LAST_EVAL = "after_last_eval"
NOT_REACHED = "not_reached"
CELL_TEXT = {
    BEFORE_FIRST_EVAL: "before 1st eval",
    AFTER_LAST_EVAL: "after last eval",
    NOT_REACHED: "not reached",
}


@dataclass(frozen=True)
class Curve:
    """A metric against the tokens one source had given when it was measured."""

    tokens: np.ndarray
    values: np.ndarray
    reached: float  # the most tokens of the source any record of the run logged, eval or not

    def at(self, budget: float) -> float | None:
        """The value at ``budget``, interpolated between the latest evaluations around it.

        A source that gives no tokens for a while (a synthetic-first phase) is evaluated several
        times at one token count; of those the latest eval is the model at that budget (the
        earlier ones were taken before the synthetic steps that followed), so only it is used.
        """
        if self.missing(budget) is not None:
            return None
        latest = np.append(self.tokens[1:] != self.tokens[:-1], True)
        return float(np.interp(budget, self.tokens[latest], self.values[latest]))

    def missing(self, budget: float) -> str | None:
        """Why there is no value at ``budget`` (one of :data:`CELL_TEXT`'s keys), or None."""
        if budget > self.reached:
            return NOT_REACHED
        if budget < self.tokens[0]:
            return BEFORE_FIRST_EVAL
        if budget > self.tokens[-1]:
            return AFTER_LAST_EVAL
        return None

    def span(self) -> dict[str, float]:
        """Where the run was evaluated and how far it trained, in tokens of the source."""
        return {
            "first_eval": float(self.tokens[0]),
            "last_eval": float(self.tokens[-1]),
            "reached": self.reached,
        }


def source_curve(run: Run, metric: str, source: str) -> Curve | None:
    """``metric`` against ``tokens/<source>`` at the steps where both were logged, in step order
    (equal token counts stay in the order they were evaluated: :meth:`Curve.at` needs it)."""
    values, seen = run.columns.get(metric), run.columns.get(f"tokens/{source}")
    if values is None or seen is None:
        return None
    by_step = dict(zip(seen.steps.tolist(), seen.values.tolist()))
    pairs = sorted(
        (by_step[s], s, v)
        for s, v in zip(values.steps.tolist(), values.values.tolist())
        if s in by_step
    )
    if not pairs:
        return None
    tokens, _, vals = (np.array(x, dtype=np.float64) for x in zip(*pairs))
    reached = max(float(np.nanmax(seen.values)), float(tokens[-1]))
    return Curve(tokens, vals, reached)


@dataclass(frozen=True)
class Comparison:
    metric: str
    source: str
    budgets: list[float]
    labels: list[str]
    values: list[list[float | None]]  # [run][budget]
    missing: list[list[str | None]]  # [run][budget]: why a value is None (CELL_TEXT key)
    spans: list[dict]  # [run]: Curve.span() plus whether the run finished

    def differences(self) -> list[list[float | None]]:
        """Each run minus the first (the baseline) at every budget."""
        base = self.values[0]
        return [
            [None if v is None or b is None else v - b for v, b in zip(row, base)]
            for row in self.values
        ]

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "source": self.source,
            "budgets": self.budgets,
            "labels": self.labels,
            "values": self.values,
            "difference_vs_first": self.differences(),
            "missing": self.missing,
            "runs": self.spans,
        }

    def table(self) -> str:
        """A plain-text table: value (and difference from the first run) per budget, then one
        line per run with a missing value saying where that run was evaluated or stopped."""
        head = f"{self.metric} at equal tokens of '{self.source}' (difference vs {self.labels[0]})"
        cols = [f"{_count(b):>18s}" for b in self.budgets]
        width = max(30, *(len(label) + 1 for label in self.labels))  # whole labels: unique
        lines = [head, f"{'run':{width}s}" + "".join(cols)]
        rows = zip(self.labels, self.values, self.differences(), self.missing)
        for i, (label, row, diff, why) in enumerate(rows):
            cells = (_cell(v, d if i else None, w) for v, d, w in zip(row, diff, why))
            lines.append(f"{label:{width}s}" + "".join(cells))
        return "\n".join(lines + self.notes())

    def notes(self) -> list[str]:
        """Why cells are empty, per run: the token counts behind each kind of gap."""
        lines = []
        for label, why, span in zip(self.labels, self.missing, self.spans):
            reasons = [_reason(kind, span) for kind in CELL_TEXT if kind in why]
            if reasons:
                lines.append(f"  {label}: " + "; ".join(reasons))
        return lines


def _reason(kind: str, span: dict) -> str:
    if kind == BEFORE_FIRST_EVAL:
        return f"before the first evaluation (first at {_count(span['first_eval'])} tokens)"
    if kind == AFTER_LAST_EVAL:
        return (
            f"after the last evaluation (last at {_count(span['last_eval'])} tokens, "
            f"trained to {_count(span['reached'])})"
        )
    ended = "run ended" if span["finished"] else "run so far"
    return f"not reached ({ended} at {_count(span['reached'])} tokens)"


def _cell(value: float | None, diff: float | None, why: str | None) -> str:
    if value is None:
        return f"{CELL_TEXT[why or NOT_REACHED]:>18s}"
    text = f"{value:.4f}" if diff is None else f"{value:.4f} ({diff:+.4f})"
    return f"{text:>18s}"


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return f"{n:g}"


def compare(
    runs: Sequence[Run], labels: Sequence[str], metric: str, source: str, budgets: Sequence[float]
) -> Comparison:
    """The metric of every run at each budget of ``source`` tokens."""
    if not budgets:
        raise UserError("--at: give at least one token budget, e.g. --at 1M,2M")
    check_same_document_mask(runs)
    check_equal_tokens(runs, metric, source)
    values, missing, spans = [], [], []
    for run in runs:
        curve = _curve_or_error(run, metric, source)
        values.append([curve.at(b) for b in budgets])
        missing.append([curve.missing(b) for b in budgets])
        spans.append({**curve.span(), "finished": run.finished})
    return Comparison(
        metric, source, [float(b) for b in budgets], list(labels), values, missing, spans
    )


def _curve_or_error(run: Run, metric: str, source: str) -> Curve:
    """The run's curve, or an error saying which of --equal-tokens / --metric names nothing."""
    curve = source_curve(run, metric, source)
    if curve is not None:
        return curve
    if f"tokens/{source}" not in run.columns:
        known = sorted(k.removeprefix("tokens/") for k in run.columns if k.startswith("tokens/"))
        listed = ", ".join(known) or "none (a run from before synthlm logged them)"
        raise UserError(
            f"--equal-tokens {source}: {run.path} logged no tokens/{source}; "
            f"sources with token counts: {listed}"
        )
    if metric not in run.columns:
        logged = sorted(k for k in run.columns if k.startswith("eval/"))
        listed = ", ".join(logged) or "none (no evaluation logged yet)"
        raise UserError(
            f"--metric {metric}: {run.path} logged no such metric (default: eval/SOURCE/loss); "
            f"eval metrics it logged: {listed}"
        )
    raise UserError(
        f"--metric {metric}: {run.path} never logged it at a step that also logged "
        f"tokens/{source}, so it cannot be read against tokens of '{source}'"
    )


def check_same_document_mask(runs: Sequence[Run]) -> None:
    """Refuse to compare runs whose natural text trained, and so is scored, with and without
    document masking: the gap would mix the data's effect with the regime's."""
    from synthlm.evaluate.checkpoint import run_masks_natural

    masks = {run.path: run_masks_natural(run.path, run.config) for run in runs if run.config}
    if len(set(masks.values())) > 1:
        listed = ", ".join(f"{path} ({'on' if on else 'off'})" for path, on in masks.items())
        raise UserError(
            f"--equal-tokens: the runs differ in masking their natural documents "
            f"(data.document_mask): {listed}. They trained on differently masked windows and "
            f"are scored differently; set data.document_mask to the same value in every "
            f"run's config"
        )


def plot(comparison: Comparison, runs: Sequence[Run], path, dpi: int = 100) -> None:
    """The metric against the source's tokens, one line per run, budgets marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthlm.fileio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run, label in zip(runs, comparison.labels):
        curve = source_curve(run, comparison.metric, comparison.source)
        if curve is not None:
            ax.plot(curve.tokens, curve.values, marker=".", label=label)
    for budget in comparison.budgets:
        ax.axvline(budget, color="grey", lw=0.6, ls="--")
    ax.set_xlabel(f"tokens of '{comparison.source}' seen")
    ax.set_ylabel(comparison.metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
