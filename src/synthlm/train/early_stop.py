"""Early stopping and best-k checkpoints: decisions on an evaluation metric.

Both follow PyTorch Lightning's callbacks, which recipes such as Rocket state their runs with,
so a recipe's numbers mean here what they meant there:

* :class:`EarlyStopping` is ``EarlyStopping(monitor, mode, patience, min_delta, check_finite)``.
  A value improves on the best so far only by more than ``min_delta`` (mode min:
  ``value + min_delta < best``; the first finite value always does). Each evaluation without
  improvement counts one, an improvement resets the count, and the run stops at the evaluation
  where the count reaches ``patience``; a NaN or infinite value stops it at once.
* :class:`BestCheckpoints` is ``ModelCheckpoint(monitor, mode, save_top_k=k)``. An evaluation
  enters the best k while fewer than k are held, or when it is strictly better than the worst
  held one, which leaves (of equal worst values, the oldest); NaN ranks last.

What they decide depends on the evaluations so far, so their state is part of the checkpoint's
trainer state (``TrainerState.early_stopping`` / ``keep_best``): a run killed and resumed makes
the same decisions at the same steps as an uninterrupted one. Users find the best checkpoints
in ``RUN/best_checkpoints.json`` (:func:`write_ranking`), rewritten atomically after every
checkpoint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from synthlm.config import Section
from synthlm.errors import UserError

Mode = Literal["min", "max"]
RANKING_FILE = "best_checkpoints.json"


class EarlyStoppingConfig(Section):
    """Stop training when an evaluation metric stops improving (Lightning's ``EarlyStopping``)."""

    metric: str = Field(
        description="Metric to watch, as logged in metrics.jsonl: eval/<set>/<metric> "
        "(e.g. eval/val/loss; <set> is a data.eval name, or finetune.valid's in mode ft)."
    )
    mode: Mode = Field(
        "min", description="min: lower is better (losses); max: higher is better (accuracy)."
    )
    patience: int = Field(
        3,
        ge=1,
        description="Stop at the evaluation that makes this many in a row without improvement "
        "(counted in evaluations, one every train.eval_every steps, not in epochs).",
    )
    min_delta: float = Field(
        0.0,
        ge=0,
        description="An improvement must beat the best value so far by more than this; a "
        "change of min_delta or less counts as none (0: any strict improvement).",
    )
    check_finite: bool = Field(
        True, description="Stop at once when the metric is NaN or infinite (else: no improvement)."
    )


class KeepBestConfig(Section):
    """Keep the k checkpoints with the best evaluation metric, besides the newest ``keep_last``
    (Lightning's ``ModelCheckpoint(monitor, mode, save_top_k=k)``)."""

    k: int = Field(ge=1, description="Best checkpoints kept; pruning never deletes one of them.")
    metric: str | None = Field(
        None,
        description="Metric to rank by, eval/<set>/<metric> (default: train.early_stopping's).",
    )
    mode: Mode | None = Field(
        None,
        description="min: lower is better; max: higher is better (default: "
        "train.early_stopping's mode, else min).",
    )


METRIC = re.compile(r"^eval/(?P<set>[^/]+)/(?P<name>.+)$")
# what each kind of eval set logs (synthlm.evaluate, seq2seq_eval); mode ft's names: its task's
_NATURAL = re.compile(r"^(loss|ppl|bpb|tokens|\w+_loss|\w+_accuracy)$")
_SYNTHETIC = re.compile(r"^(loss|acc)(/.+)?$")
_LEAVES = {"natural": _NATURAL, "synthetic": _SYNTHETIC}
_EXAMPLES = {"natural": ("loss", "ppl", "bpb"), "synthetic": ("loss", "acc", "acc/<domain>")}


def metric_problem(metric: str, sets: Mapping[str, str | None]) -> str | None:
    """Why ``metric`` is not one the run's evaluations log (None when it is).

    ``sets`` maps each eval set's name to its kind (natural, synthetic; None: a mode-ft pair
    set, whose metric names come from its task). The metric must name one of these sets and,
    for a known kind, a metric that kind logs. Whether e.g. ``bpb`` is there (a store that
    knows its bytes) shows only when it runs: :func:`watched_values` checks each evaluation.
    """
    if not sets:
        return "this run has no eval sets to watch (add data.eval, or finetune.valid in mode ft)"
    offered = ", ".join(
        f"eval/{name}/{leaf}"
        for name, kind in sets.items()
        for leaf in _EXAMPLES.get(kind or "", ("loss",))
    )
    match = METRIC.match(metric)
    if match is None or match["set"] not in sets:
        return f"'{metric}' is not a metric this run logs; its eval sets log e.g. {offered}"
    kind = sets[match["set"]] or ""
    if kind in _LEAVES and not _LEAVES[kind].match(match["name"]):
        leaf = match["name"]
        return f"'{metric}': a {kind} eval set logs no '{leaf}'; its eval sets log e.g. {offered}"
    return None


def watched_problems(train: Any, sets: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """(section, problem) for each watched metric of ``train`` that the eval sets do not log."""
    found = []
    for name in ("early_stopping", "keep_best"):
        section = getattr(train, name)
        metric = getattr(section, "metric", None)
        problem = metric_problem(metric, sets) if metric else None
        if problem:
            found.append((name, problem))
    return found


def config_error(loc: tuple[str, ...], message: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` (below the validating section), worded as ``message``:
    synthlm.config prints it as ``FILE: train.early_stopping.metric: message``."""
    text = message.replace("{", "(").replace("}", ")")  # braces are format fields here
    error: InitErrorDetails = {
        "type": PydanticCustomError("invalid_option", text),
        "loc": loc,
        "input": value,
    }
    return ValidationError.from_exception_data("train", [error])


def improves(value: float, best: float, mode: Mode, min_delta: float = 0.0) -> bool:
    """Lightning's test: better than ``best`` by strictly more than ``min_delta`` (NaN: never)."""
    if mode == "min":
        return value + min_delta < best
    return value - min_delta > best


def worst(mode: Mode) -> float:
    return math.inf if mode == "min" else -math.inf


@dataclass
class EarlyStopping:
    """Lightning's early-stopping decision on one metric; ``state()`` goes into checkpoints."""

    config: EarlyStoppingConfig
    best: float = math.nan  # set in __post_init__: the worst value of the mode
    best_step: int = 0
    wait: int = 0  # evaluations in a row without improvement
    last: float = math.nan
    last_step: int = 0

    def __post_init__(self) -> None:
        if math.isnan(self.best):
            self.best = worst(self.config.mode)

    @classmethod
    def resume(cls, config: EarlyStoppingConfig, saved: Mapping[str, Any]) -> EarlyStopping:
        """The saved state, unless it watched another metric or mode (then a fresh start)."""
        if saved.get("metric") != config.metric or saved.get("mode") != config.mode:
            return cls(config)
        keys = ("best", "best_step", "wait", "last", "last_step")
        return cls(config, **{key: saved[key] for key in keys if key in saved})

    def update(self, step: int, value: float) -> None:
        self.last, self.last_step = value, step
        if self.config.check_finite and not math.isfinite(value):
            return  # stops now (see stopped); the count and the best stay as they were
        if improves(value, self.best, self.config.mode, self.config.min_delta):
            self.best, self.best_step, self.wait = value, step, 0
        else:
            self.wait += 1

    @property
    def stopped(self) -> bool:
        """True from the evaluation that ends the run (recomputed on resume, so a larger
        ``patience`` on resume lets a stopped run train on)."""
        if self.last_step and self.config.check_finite and not math.isfinite(self.last):
            return True
        return self.wait >= self.config.patience

    def reason(self) -> str:
        cfg = self.config
        if not math.isfinite(self.last) and cfg.check_finite:
            return f"{cfg.metric} is {self.last} at step {self.last_step}"
        delta = f" by more than {cfg.min_delta:g}" if cfg.min_delta else ""
        return (
            f"{cfg.metric} did not improve{delta} in {self.wait} evaluations "
            f"(best {self.best:.6g} at step {self.best_step}; patience {cfg.patience})"
        )

    def state(self) -> dict[str, Any]:
        return {
            "metric": self.config.metric,
            "mode": self.config.mode,
            "best": self.best,
            "best_step": self.best_step,
            "wait": self.wait,
            "last": self.last,
            "last_step": self.last_step,
        }

    def summary(self) -> dict[str, Any]:
        """Why the run stopped, for ``final/synthlm.json``."""
        return {**self.state(), "patience": self.config.patience, "reason": self.reason()}


@dataclass
class BestCheckpoints:
    """Lightning's top-k record: (step, value) of the checkpoints held, oldest first."""

    config: KeepBestConfig
    entries: list[tuple[int, float]] = field(default_factory=list)

    @property
    def mode(self) -> Mode:
        return self.config.mode or "min"

    @classmethod
    def resume(cls, config: KeepBestConfig, saved: Mapping[str, Any]) -> BestCheckpoints:
        """The saved record, unless it ranked by another metric or mode (then a fresh one)."""
        if saved.get("metric") != config.metric or saved.get("mode") != (config.mode or "min"):
            return cls(config)
        return cls(config, [(int(step), float(value)) for step, value in saved["entries"]])

    def offer(self, step: int, value: float) -> bool:
        """Rank the evaluation at ``step``; True when its checkpoint joins the best k."""
        if math.isnan(value):
            value = worst(self.mode)  # as Lightning: NaN is kept only while fewer than k are
        if len(self.entries) >= self.config.k:
            out = self.worst_entry()
            if not improves(value, out[1], self.mode):
                return False
            self.entries.remove(out)
        self.entries.append((step, value))
        return True

    def worst_entry(self) -> tuple[int, float]:
        """The entry a better one replaces: the worst value, the oldest of equals."""
        pick = max if self.mode == "min" else min
        return pick(self.entries, key=lambda entry: entry[1])  # the first of equals: oldest

    def steps(self) -> frozenset[int]:
        return frozenset(step for step, _ in self.entries)

    def ranking(self) -> list[tuple[int, float]]:
        """Best first; equal values in step order."""
        sign = 1.0 if self.mode == "min" else -1.0
        return sorted(self.entries, key=lambda entry: (sign * entry[1], entry[0]))

    def state(self) -> dict[str, Any]:
        return {"metric": self.config.metric, "mode": self.mode, "entries": self.entries}


class Watch:
    """What a run watches in its evaluations: early stopping and the best-k checkpoints.

    Built from ``train`` (a TrainConfig) before the hooks that ask it; :meth:`restore` loads a
    checkpoint's decisions into it in place.
    """

    def __init__(self, train: Any) -> None:
        self.early = EarlyStopping(train.early_stopping) if train.early_stopping else None
        self.best = BestCheckpoints(train.keep_best) if train.keep_best else None

    def restore(self, state: Any) -> None:
        """The decisions saved in a checkpoint's TrainerState."""
        if self.early is not None:
            self.early = EarlyStopping.resume(self.early.config, state.early_stopping or {})
        if self.best is not None:
            self.best = BestCheckpoints.resume(self.best.config, state.keep_best or {})

    def metrics(self) -> list[str]:
        """The metric names watched (none: nothing to do after an evaluation)."""
        watched = [part.config.metric for part in (self.early, self.best) if part is not None]
        return list(dict.fromkeys(watched))  # keep_best's metric is set by TrainConfig

    def observe(self, step: int, values: Mapping[str, float]) -> None:
        """One evaluation's watched values (the same on every process)."""
        if self.early is not None:
            self.early.update(step, values[self.early.config.metric])
        if self.best is not None:
            self.best.offer(step, values[self.best.config.metric])

    @property
    def stopped(self) -> bool:
        return self.early is not None and self.early.stopped

    def keeps(self, step: int) -> bool:
        """Whether the evaluation at ``step`` entered the best k (its checkpoint is due)."""
        return self.best is not None and step in self.best.steps()

    def kept_steps(self) -> frozenset[int]:
        return self.best.steps() if self.best is not None else frozenset()

    def save_into(self, state: Any) -> None:
        state.early_stopping = self.early.state() if self.early is not None else {}
        state.keep_best = self.best.state() if self.best is not None else {}


def watched_values(metrics: Mapping[str, float], names: Iterable[str]) -> dict[str, float]:
    """The watched metrics of one evaluation; a missing one is a config error, named."""
    missing = [name for name in names if name not in metrics]
    if missing:
        raise UserError(
            f"train.early_stopping / train.keep_best: this run's evaluation logs no "
            f"{', '.join(missing)}; it logs {', '.join(sorted(metrics))}"
        )
    return {name: float(metrics[name]) for name in names}


def write_ranking(run_dir: Path, best: BestCheckpoints, complete: Mapping[int, Path]) -> Path:
    """``RUN/best_checkpoints.json``: the best checkpoints, best first, written atomically.

    ``complete``: the run's complete checkpoints by step; a ranked step without one (its
    checkpoint not yet written, or deleted by an earlier future of the run) is left out.
    """
    from synthlm.fileio import atomic_write_json

    ranked = [
        {
            "rank": rank,
            "step": step,
            "value": value if math.isfinite(value) else None,
            "path": str(complete[step].relative_to(run_dir)),
        }
        for rank, (step, value) in enumerate(
            [entry for entry in best.ranking() if entry[0] in complete], start=1
        )
    ]
    record = {"metric": best.config.metric, "mode": best.mode, "k": best.config.k}
    return atomic_write_json(Path(run_dir) / RANKING_FILE, {**record, "checkpoints": ranked})
