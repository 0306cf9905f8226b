"""Exact resume for encoder-decoder runs: a T5 span-corruption run SIGKILLed at a random step and
resumed writes the same metrics (evaluations included) and ends with the same weights as an
uninterrupted run. Corruption masks are keyed by window content, so no noise RNG needs saving."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from t5_run_helpers import (
    pt_config,
    read_records,
    reproducible,
    subprocess_env,
    synthlm,
    write_config,
)

from synthlm.train import load_run_config, run

STEPS = 16
pytestmark = pytest.mark.slow


def config_for(root: Path, data) -> Path:
    # checkpoints at 3, 6, ... fall inside log intervals (4, 8, ...): interval sums must survive
    root.mkdir(parents=True, exist_ok=True)
    train = {
        "max_steps": STEPS,
        "checkpoint_every": 3,
        "log_every": 4,
        "eval_every": 8,
        "keep_last": 2,
    }
    return write_config(
        root / "run.yaml", pt_config(root, data, {"name": "span_corruption"}, train=train)
    )


def last_step(metrics: Path) -> int:
    steps = [
        int(line.split(",")[0].split(":")[1])
        for line in metrics.read_text(encoding="utf-8").splitlines()
        if line.startswith('{"step"')
    ]
    return max(steps, default=0)


def kill_at(config: Path, run_dir: Path, step: int) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthlm", "train", str(config), "--quiet"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    metrics, deadline = run_dir / "metrics.jsonl", time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and last_step(metrics) >= step:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.communicate(timeout=120)
    return proc.returncode


def test_sigkilled_t5_run_resumes_to_the_same_metrics_and_weights(tmp_path, t5_data):
    reference = run(load_run_config([config_for(tmp_path / "reference", t5_data)]))
    step = random.Random().choice([4, 8, 12])  # a logged step; the kill lands at or after it
    note = f"killed after step {step}"
    config = config_for(tmp_path / "resumed", t5_data)
    assert kill_at(config, tmp_path / "resumed" / "run", step) == -signal.SIGKILL, (
        f"{note}: the run ended before the kill"
    )
    assert not (tmp_path / "resumed" / "run" / "final").exists()
    done = synthlm("train", str(config), "--quiet")
    assert done.returncode == 0, done.stderr
    resumed = tmp_path / "resumed" / "run"
    assert "resumed from" in done.stdout + done.stderr, note
    assert reproducible(read_records(resumed)) == reproducible(read_records(reference)), note
    expected, actual = (
        load_file(str(reference / "final" / "model.safetensors")),
        load_file(str(resumed / "final" / "model.safetensors")),
    )
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected), note
