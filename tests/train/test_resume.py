"""Exact resume: a run killed at any step and resumed writes the same losses and ends with the
same weights as an uninterrupted run (CPU, fp32). Interrupted runs are real `synthlm train`
processes, killed or signalled from outside while they train."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import (
    final_weights,
    read_records,
    reproducible,
    subprocess_env,
    synthlm,
    tiny_config,
    write_config,
)

from synthlm.train import load_run_config, run

STEPS = 20
pytestmark = pytest.mark.slow


def config_for(root: Path, data) -> Path:
    # checkpoints at 4, 8, ... fall inside log intervals (3, 6, 9, ...): the interval sums must
    # survive the restart for the averaged losses to match
    config = tiny_config(
        root,
        data,
        train={"max_steps": STEPS, "checkpoint_every": 4, "log_every": 3, "keep_last": 2},
    )
    return write_config(root / "run.yaml", config)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """The uninterrupted run (in this process: same code, same single thread, no import cost)."""
    root = tmp_path_factory.mktemp("reference")
    torch.set_num_threads(1)
    return run(load_run_config([config_for(root, data)]))


def start_and_signal(
    config: Path, run_dir: Path, at_step: int, sig: int
) -> subprocess.CompletedProcess:
    """Start training and send ``sig`` as soon as metrics.jsonl shows step ``at_step``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthlm", "train", str(config), "--quiet"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and _last_step(metrics) >= at_step:
            proc.send_signal(sig)
            break
        time.sleep(0.002)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _last_step(metrics: Path) -> int:
    lines = metrics.read_text(encoding="utf-8").splitlines()
    return max(
        (int(line.split(",")[0].split(":")[1]) for line in lines if line.startswith('{"step"')),
        default=0,
    )


def assert_same_run(reference: Path, resumed: Path, note: str) -> None:
    assert reproducible(read_records(resumed)) == reproducible(read_records(reference)), note
    expected, actual = final_weights(reference), final_weights(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{note}: weights differ in {name}"


def test_sigkill_at_a_random_step_then_resume_equals_uninterrupted_run(tmp_path, data, reference):
    kill_at = random.Random().randint(2, STEPS - 6)
    note = f"killed at step {kill_at}"
    config = config_for(tmp_path, data)
    killed = start_and_signal(config, tmp_path / "run", kill_at, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL, (
        f"{note}: the run ended before the kill ({killed.returncode})"
    )
    assert not (tmp_path / "run" / "final").exists()

    resumed = synthlm("train", str(config), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(reference, tmp_path / "run", note)


def test_sigterm_saves_a_checkpoint_exits_0_and_resumes_exactly(tmp_path, data, reference):
    stop_at = 6  # the stop lands after step 6, between checkpoints 4 and 8: it must save one
    config = config_for(tmp_path, data)
    stopped = start_and_signal(config, tmp_path / "run", stop_at, signal.SIGTERM)
    assert stopped.returncode == 0, stopped.stderr
    assert "checkpoint saved at step" in stopped.stdout + stopped.stderr
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert saved and all(name.startswith("step-") for name in saved)
    assert int(saved[-1].split("-")[1]) >= stop_at and not (tmp_path / "run" / "final").exists()

    resumed = synthlm("train", str(config), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout + resumed.stderr
    assert_same_run(reference, tmp_path / "run", f"stopped at {saved[-1]}")


def test_per_source_losses_separate_predictable_from_random_data(reference):
    """The cyclic source is learnable, the web source is uniform noise: their logged losses must
    split accordingly, with the total (a token-weighted mean of the two) in between."""
    last = read_records(reference)[-1]
    assert last["loss/cyclic"] < last["loss"] < last["loss/web"]
    assert last["loss/web"] - last["loss/cyclic"] > 0.5


def test_a_truncated_optimizer_file_is_named_with_what_to_do(tmp_path, data, reference):
    """A checkpoint cut short (a copy interrupted, a full disk on another tool's side) stops
    the resume with one line naming the file, not torch's bare ``Invalid argument``."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(reference / "checkpoints", run_dir / "checkpoints")
    steps = sorted(run_dir.glob("checkpoints/step-*"), key=lambda p: int(p.name.split("-")[1]))
    shutil.rmtree(steps[-1])  # resume from the one before the last
    optimizer = steps[-2] / "trainer" / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    resumed = synthlm("train", str(config_for(tmp_path, data)), "--quiet")
    assert resumed.returncode == 2, resumed.stderr
    assert f"{optimizer}: not a valid checkpoint file" in resumed.stderr, resumed.stderr
    assert f"delete (or move away) {steps[-2]}" in resumed.stderr
    assert "Traceback" not in resumed.stderr
