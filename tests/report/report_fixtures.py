"""Tiny run directories in the format the trainer writes (config.yaml, metrics.jsonl, eval/*.json)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def tiny_config(
    run_dir: Path, weight: float = 0.1, lr: float = 1e-3, **extra: Any
) -> dict[str, Any]:
    return {
        "run_dir": str(run_dir),
        "seed": 0,
        "model": {"arch": "gpt2", "preset": "tiny"},
        "data": {
            "sources": [
                {
                    "name": "shakespeare",
                    "path": "stores/shakespeare",
                    "weight": 1.0,
                    "kind": "natural",
                },
                {"name": "dyck", "path": "synth/dyck", "weight": weight, "kind": "synthetic"},
            ],
            "eval": [
                {"name": "shakespeare", "path": "stores/shakespeare_valid", "kind": "natural"},
                {"name": "dyck", "path": "synth/dyck", "kind": "synthetic"},
            ],
            "seq_len": 64,
        },
        "optim": {"name": "adamw", "lr": lr},
        "train": {"max_steps": 40, "batch_size": 4, "log_every": 1, "eval_every": 10},
        "logging": {"tensorboard_dir": str(run_dir / "tb")},
        **extra,
    }


def train_record(step: int, weight: float) -> dict[str, Any]:
    natural = 5.0 / math.sqrt(step) + weight
    synthetic = 3.0 / math.sqrt(step) - weight
    return {
        "step": step,
        "tokens": step * 256,
        "loss": (natural + weight * synthetic) / (1 + weight),
        "lr": 1e-3 * min(1.0, step / 5),
        "grad_norm": 1.0 + 0.1 * (step % 3),
        "tokens_per_s": 1000.0 + step,
        "mfu": 0.01,
        "loss/shakespeare": natural,
        "loss/dyck": synthetic,
        "phase": "train",  # not numeric: must be ignored
        "mystery_metric": 7.0,  # numeric but unknown: table only
    }


def eval_record(step: int, weight: float) -> dict[str, Any]:
    loss = 4.5 / math.sqrt(step) + weight
    return {
        "step": step,
        "tokens": step * 256,
        "eval/shakespeare/loss": loss,
        "eval/shakespeare/ppl": math.exp(loss),
        "eval/dyck/loss": 2.0 / math.sqrt(step),
        "eval/dyck/acc": min(1.0, step * weight / 4),
        "eval/dyck/acc/dyck": min(1.0, step * weight / 3),
        "eval/dyck/acc/copy": min(1.0, step * weight / 5),
    }


def write_run(
    run_dir: Path,
    *,
    weight: float = 0.1,
    lr: float = 1e-3,
    steps: int = 20,
    torn: bool = False,
    finished: bool = False,
    qa: dict[str, Any] | None = None,
) -> Path:
    """A run as the trainer leaves it; ``torn`` cuts the last line as a live writer would."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(tiny_config(run_dir, weight, lr), sort_keys=False)
    )
    lines = []
    for step in range(1, steps + 1):
        lines.append(json.dumps(train_record(step, weight)))
        if step % 10 == 0:
            lines.append(json.dumps(eval_record(step, weight)))
    text = "\n".join(lines) + "\n"
    if torn:
        text += json.dumps(train_record(steps + 1, weight))[:25]
    (run_dir / "metrics.jsonl").write_text(text)
    if qa is not None:
        (run_dir / "eval").mkdir(exist_ok=True)
        (run_dir / "eval" / "qa.json").write_text(json.dumps(qa))
    if finished:
        (run_dir / "final").mkdir()
    return run_dir


def synthlm(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def chromium() -> str | None:
    """A headless-capable Chromium, if the machine has one."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
