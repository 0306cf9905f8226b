"""A local sweep and its trainer live and stop together: a SIGKILLed sweep leaves no trainer
behind, a trainer that outlives it anyway keeps its point from a second trainer, and a stop
signal sent to the sweep reaches the trainer (which saves a checkpoint) instead of killing it.

Linux only: the trainer is tied to the sweep with ``PR_SET_PDEATHSIG``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from cli_runner import run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl (Linux)")

# The first call writes its pid and waits (ignoring SIGTERM if IGNORE_TERM is set, as a hung
# trainer would; else on SIGTERM it "saves" for 1 s and exits 0 without final/, as the real one
# does); later calls finish at once.
TRAINER = textwrap.dedent(
    """
    import os, pathlib, signal, sys, time, yaml
    run = pathlib.Path(yaml.safe_load(open(sys.argv[1]))["run_dir"])
    run.mkdir(parents=True, exist_ok=True)
    calls = run.parent.parent / "calls.txt"
    first = not calls.exists()
    with open(calls, "a") as f: f.write(f"{os.getpid()}\\n")
    if not first:
        (run / "final").mkdir(); sys.exit(0)
    def stop(signum, frame):
        time.sleep(1); (run.parent.parent / "saved").touch(); sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("IGNORE_TERM") else stop)
    time.sleep(120)
    """
)


@pytest.fixture
def sweep_args(tmp_path) -> list[str]:
    trainer = tmp_path / "trainer.py"
    trainer.write_text(TRAINER)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"run_dir": "x", "seed": 1}))
    command = ["--command", f"{sys.executable} {trainer}", "--no-validate"]
    return ["sweep", str(base), "seed=1", "--out", str(tmp_path / "sw"), *command]


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def start_sweep(args: list[str], calls: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """The sweep, and its trainer's pid once the trainer runs."""
    sweep = subprocess.Popen(
        [sys.executable, "-m", "synthlm", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (calls.is_file() and calls.read_text().strip()):
        assert sweep.poll() is None, sweep.communicate()
        assert time.monotonic() < deadline, "the trainer never started"
        time.sleep(0.05)
    time.sleep(0.2)  # let the trainer install its signal handler
    return sweep, int(calls.read_text().split()[0])


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_a_killed_sweep_takes_its_trainer_with_it(tmp_path, sweep_args):
    sweep, trainer = start_sweep(sweep_args, tmp_path / "sw" / "calls.txt", {})
    sweep.kill()
    sweep.wait()
    try:
        assert wait_gone(trainer), f"trainer {trainer} outlived the SIGKILLed sweep"
        assert (tmp_path / "sw" / "saved").exists()  # it got SIGTERM: a checkpoint, not a kill
    finally:
        if alive(trainer):
            os.kill(trainer, signal.SIGKILL)


def test_a_trainer_that_outlives_its_sweep_keeps_a_rerun_off_its_run_dir(tmp_path, sweep_args):
    calls = tmp_path / "sw" / "calls.txt"
    sweep, orphan = start_sweep(sweep_args, calls, {"IGNORE_TERM": "1"})
    sweep.kill()
    sweep.wait()
    try:
        time.sleep(0.5)
        assert alive(orphan)
        rerun = run_cli(*sweep_args, timeout=60)
        assert rerun.returncode == 1, rerun.stderr
        assert f"another process (pid {orphan}) is training this point" in rerun.stdout
        assert "000 (in use by another trainer)" in rerun.stderr
        assert calls.read_text().split() == [str(orphan)]  # no second trainer started
    finally:
        os.kill(orphan, signal.SIGKILL)
    assert wait_gone(orphan)
    again = run_cli(*sweep_args, timeout=60)  # the lock went with the orphan
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "sw" / "runs" / "000" / "final").is_dir()


def test_a_stop_signal_to_the_sweep_reaches_the_trainer(tmp_path, sweep_args):
    sweep, _ = start_sweep(sweep_args, tmp_path / "sw" / "calls.txt", {})
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 0, err
    assert (tmp_path / "sw" / "saved").exists()  # given its second to save, not killed at once
    assert "sweep stopped at 000" in out and not (tmp_path / "sw" / "done").exists()
