"""The report's "what this run was" table: model and size, data mixture, tokens, objective.

A reader who gets the report without the run directory should learn from its top what was
trained on what, before any curve. Parameter counts come from the safetensors header of the
newest weights the run wrote (no tensor is read), so they match what was saved exactly.
"""

from __future__ import annotations

import html
import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthlm.report.load import Run

WEIGHTS = "model.safetensors"


def summary_table(runs: Sequence[Run], labels: Sequence[str], colors: Sequence[str]) -> str:
    columns = ("run", "model", "parameters", "data mixture", "tokens", "objective")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    rows = [head]
    for run, label, color in zip(runs, labels, colors):
        config = run.config or {}
        params = parameter_count(run.path)
        cells = [
            f'<span class="swatch" style="background:{color}"></span>{_e(label)}',
            _e(model_text(config)),
            "" if params is None else _e(human(params)),
            _e(mixture_text(config)),
            _e(tokens_text(run, config)),
            _e(objective_text(config)),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="summary">{"".join(rows)}</table>'


def model_text(config: dict[str, Any]) -> str:
    model = config.get("model") or {}
    if not isinstance(model, dict):
        return ""
    text = " ".join(str(model[k]) for k in ("arch", "preset") if model.get(k))
    overrides = model.get("overrides") or {}
    if isinstance(overrides, dict) and overrides:
        text += " (" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")"
    if model.get("init_from"):
        text += f" from {model['init_from']}"
    return text


def mixture_text(config: dict[str, Any]) -> str:
    """``name (kind) 80%`` per training source, weights normalised as the trainer does."""
    data = config.get("data") or {}
    sources = (
        [s for s in (data.get("sources") or []) if isinstance(s, dict)]
        if isinstance(data, dict)
        else []
    )
    total = sum(float(s.get("weight", 1.0)) for s in sources)
    if not sources or total <= 0:
        return ""
    parts = [
        f"{s.get('name', '?')} ({s.get('kind', 'natural')}) "
        f"{100 * float(s.get('weight', 1.0)) / total:.0f}%"
        for s in sources
    ]
    seq_len = data.get("seq_len")
    return ", ".join(parts) + (f"; seq_len {seq_len}" if seq_len else "")


def tokens_text(run: Run, config: dict[str, Any]) -> str:
    """Tokens trained so far, and the planned total where the config fixes it."""
    seen = [
        float(c.tokens[-1])
        for c in run.columns.values()
        if len(c.tokens) and math.isfinite(c.tokens[-1])
    ]
    done = human(max(seen)) if seen else "0"
    planned = planned_tokens(config)
    return done + (f" of {human(planned)}" if planned else "")


def planned_tokens(config: dict[str, Any]) -> int | None:
    train = config.get("train") or {}
    data = config.get("data") or {}
    if not isinstance(train, dict) or not isinstance(data, dict):
        return None
    if train.get("max_tokens"):
        return int(train["max_tokens"])
    steps, batch, seq_len = (
        train.get("max_steps"),
        train.get("global_batch_size"),
        data.get("seq_len"),
    )
    return int(steps * batch * seq_len) if steps and batch and seq_len else None


def objective_text(config: dict[str, Any]) -> str:
    objective = config.get("objective") or {}
    name = objective.get("name", "") if isinstance(objective, dict) else str(objective)
    precision = (
        (config.get("train") or {}).get("precision")
        if isinstance(config.get("train"), dict)
        else None
    )
    return ", ".join(str(p) for p in (config.get("mode"), name, precision) if p)


def parameter_count(run_dir: Path) -> int | None:
    """Parameters in ``final/`` or the newest checkpoint, from the safetensors header."""
    candidates = [run_dir / "final" / WEIGHTS]
    checkpoints = sorted(
        (run_dir / "checkpoints").glob(f"step-*/{WEIGHTS}"),
        key=lambda p: (
            int(p.parent.name.removeprefix("step-"))
            if p.parent.name.removeprefix("step-").isdigit()
            else -1
        ),
    )
    candidates += reversed(checkpoints)
    for path in candidates:
        if path.is_file():
            return safetensors_parameters(path)
    return None


def safetensors_parameters(path: Path) -> int | None:
    try:
        with open(path, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
    except (OSError, ValueError, struct.error):
        return None
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def human(count: float) -> str:
    """1234567 -> '1.23M' (counts of tokens and parameters)."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g}{unit}"
    return f"{int(count)}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
