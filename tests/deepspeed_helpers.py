"""Real DeepSpeed runs on CPU (tests/train, tests/t5): the shipped ZeRO-2 launch config through
the real ``accelerate launch``, two processes over gloo, and the skips that say why one cannot
run here."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from run_helpers import subprocess_env

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "accelerate"
NO_DEEPSPEED = importlib.util.find_spec("deepspeed") is None
# DeepSpeed builds its CPU communication op with a C++ compiler on first use (.ci/run installs one
# and builds it)
NO_COMPILER = shutil.which("g++") is None and shutil.which("c++") is None


def needs_deepspeed(test):
    """Skip ``test``, saying why, without DeepSpeed or a compiler to build its CPU op."""
    test = pytest.mark.skipif(NO_DEEPSPEED, reason="deepspeed is not installed")(test)
    return pytest.mark.skipif(
        NO_COMPILER, reason="no C++ compiler: DeepSpeed cannot build its CPU comm op"
    )(test)


def require_deepspeed_cpu_op() -> None:
    """Skip, saying why, where this machine cannot build DeepSpeed's CPU op (no compiler or no
    Python headers): the run needs the real DeepSpeed, which cannot start without it."""
    from deepspeed.accelerator import get_accelerator

    try:
        get_accelerator().create_op_builder("ShareMemCommBuilder").load()
    except Exception as error:  # a build failure surfaces as several exception types
        pytest.skip(f"DeepSpeed cannot build its CPU comm op here: {error}")


def require_deepspeed_cpu_fp16() -> None:
    """Skip, saying why, where DeepSpeed's CPU accelerator refuses fp16: it asks oneDNN, which
    has fp16 kernels only on CPUs with AVX512-FP16 or AMX-FP16 (the engine raises "Type fp16
    is not supported on your device" elsewhere)."""
    from deepspeed.accelerator import get_accelerator

    if not get_accelerator().is_fp16_supported():
        pytest.skip("DeepSpeed's CPU accelerator has no fp16 on this CPU (oneDNN fp16 kernels)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(config: Path, *launcher: str) -> None:
    """``python -m LAUNCHER... -m synthlm train CONFIG``, which must succeed."""
    command = [sys.executable, "-m", *launcher, "-m", "synthlm", "train", str(config)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=subprocess_env()
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def shipped(config: Path, launch_file: str, mixed_precision: str | None = None) -> None:
    """A shipped DeepSpeed launch config on 2 processes (``mixed_precision``: the file's own
    when None)."""
    precision = [] if mixed_precision is None else ["--mixed_precision", mixed_precision]
    launch(
        config,
        "accelerate.commands.launch",
        "--config_file",
        str(EXAMPLES / launch_file),
        "--num_processes",
        "2",
        *precision,
        "--main_process_port",
        str(free_port()),
    )


def zero2(config: Path, mixed_precision: str) -> None:
    """The shipped ``deepspeed_zero2.yaml`` on 2 processes, in ``mixed_precision``."""
    shipped(config, "deepspeed_zero2.yaml", mixed_precision)


def assert_engine(run_dir: Path, zero_stage: int, precision: str, processes: int = 2) -> None:
    """The engine DeepSpeed set up, as the run read it back into its final ``synthlm.json``."""
    info = json.loads((run_dir / "final" / "synthlm.json").read_text())
    assert info["engine"] == {
        "type": "deepspeed",
        "zero_stage": zero_stage,
        "precision": precision,
        "processes": processes,
    }
