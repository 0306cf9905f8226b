"""Checks that stop a run which would otherwise train silently on something it did not ask for.

* ``model.init_from`` must share the run's natural tokenizer and id layout: a checkpoint trained
  with another tokenizer (or another meta-language offset) would read every id as a different
  token, and its saved ``synthlm.json`` would disagree with the model's embedding rows.
* Resuming with another step budget would rebuild the learning-rate schedule for the new length
  (a cosine decayed to 2e-4 jumps back towards its peak): refused unless the schedule gives the
  same learning rate at every remaining step (constant schedules; a finished schedule is taken
  to stay at its last value).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthlm.data.mixture import VOCAB_MULTIPLE, ModelVocab, round_up
from synthlm.data.provenance import PROBE
from synthlm.errors import ConfigError, UserError
from synthlm.train.schedules import ScheduleConfig, build_schedule

INFO_FILE = "synthlm.json"


def check_init_from(
    init_from: Path | None,
    layout: ModelVocab,
    tokenizer: Any,
    hf_vocab_size: int | None,
    multiple: int = VOCAB_MULTIPLE,
) -> None:
    """Refuse an ``init_from`` checkpoint whose tokenizer or id layout differs from the run's."""
    if init_from is None:
        return
    path = Path(init_from)
    info = _read_info(path)
    saved = info.get("layout") if isinstance(info.get("layout"), dict) else None
    if saved:
        for key in ("natural_size", "meta_offset"):
            if saved.get(key) != getattr(layout, key):
                raise ConfigError(
                    f"model.init_from: {path} was trained with {key}={saved.get(key)} "
                    f"(its {INFO_FILE}: {saved}) but this run gives {key}={getattr(layout, key)} "
                    f"({layout.to_dict()}); use the checkpoint's tokenizer (data.tokenizer) and "
                    "tokenize the data with it"
                )
    if hf_vocab_size is not None and hf_vocab_size > layout.model_vocab_size:
        raise ConfigError(
            f"model.init_from: {path} has {hf_vocab_size} embedding rows but this run's layout "
            f"needs {layout.model_vocab_size} ({layout.to_dict()}); a model cannot shrink its "
            f"vocabulary: {_rows_hint(path, saved, layout, hf_vocab_size, multiple)}"
        )
    _check_same_tokenizer(path, tokenizer)


def _rows_hint(
    path: Path, saved: dict[str, Any] | None, layout: ModelVocab, rows: int, multiple: int
) -> str:
    """The exact setting that gives the checkpoint's row count, when its meta rows explain it.

    A checkpoint trained with synthetic data (the quickstart's) carries meta-language rows after
    the natural ones; continuing from it needs the same ``model.num_meta_tokens``, which its
    ``synthlm.json`` records, so the user is told the number rather than left to work it out.
    """
    meta = saved.get("meta_size") if saved else None
    if isinstance(meta, int) and round_up(layout.natural_size + meta, multiple) == rows:
        return (
            f"its {INFO_FILE} records {meta} meta-language rows (meta_size); set "
            f"model.num_meta_tokens={meta}"
        )
    return "use the checkpoint's tokenizer and model.num_meta_tokens"


def _read_info(path: Path) -> dict[str, Any]:
    file = path / INFO_FILE
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"model.init_from: {file} is not readable JSON ({exc})") from None


def _check_same_tokenizer(path: Path, tokenizer: Any) -> None:
    """Same vocabulary size and the same ids for a probe text (when the dir holds a tokenizer)."""
    from synthlm.tokenizers import load_tokenizer

    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        return
    theirs = load_tokenizer(path)
    mine_ids, their_ids = tokenizer.encode(PROBE), theirs.encode(PROBE)
    if theirs.vocab_size != tokenizer.vocab_size or mine_ids != their_ids:
        raise ConfigError(
            f"model.init_from: {path} holds a different tokenizer ({theirs.vocab_size} ids, "
            f"{type(theirs).__name__}) than this run's data.tokenizer ({tokenizer.vocab_size} ids, "
            f"{type(tokenizer).__name__}); they encode the same text to different ids. Set "
            f"data.tokenizer={path} and tokenize the data with it"
        )


def check_same_budget(
    saved_total: int,
    total: int,
    step: int,
    schedule: ScheduleConfig,
    lr: float,
    checkpoint: Path,
    steps_per_epoch: Callable[[], float] | None = None,
) -> None:
    """Refuse a resume whose new step budget changes the learning rate of the remaining steps."""
    if not saved_total or saved_total == total:
        return
    old = build_schedule(schedule, saved_total, steps_per_epoch)
    new = build_schedule(schedule, total, steps_per_epoch)
    # past its end, a schedule stays at its last value
    for s in range(step, max(saved_total, total)):
        if abs(old(s) - new(s)) > 1e-12:
            raise UserError(
                f"{checkpoint}: trained for a budget of {saved_total} steps, but this config "
                f"gives {total}; the {schedule.name} schedule would be rebuilt for the new length "
                f"and the learning rate at step {s} would jump from {lr * old(s):.3g} to "
                f"{lr * new(s):.3g}. Keep train.max_steps (or max_tokens / epochs) as it was, or "
                f"continue in a new run_dir with model.init_from={checkpoint} and its own schedule"
            )


def sample_stream(shape: dict[str, Any]) -> dict[str, Any]:
    """The part of a recorded data shape that decides which window each sample index reads.

    The last phase runs on past the budget (``PhaseSchedule.phase_of``), so its recorded
    ``stop`` (the budget's end) places no sample: leaving it out lets a phased run be extended
    on resume, as an unphased one can, while every earlier boundary and weight must match.
    """
    phases = shape.get("phases")
    if not phases:
        return shape
    last = {k: v for k, v in phases[-1].items() if k != "stop"}
    return {**shape, "phases": [*phases[:-1], last]}


def changed_keys(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Names of the data-shape keys that differ, phases by index (``phases.1.weights``)."""
    changed = []
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key), now.get(key)
        if key == "phases" and isinstance(old, list) and isinstance(new, list):
            if len(old) != len(new):
                changed.append(f"phases (count {len(old)} -> {len(new)})")
                continue
            changed += [
                f"phases.{i}.{k}"
                for i, (a, b) in enumerate(zip(old, new))
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)
            ]
        elif old != new:
            changed.append(key)
    return changed
