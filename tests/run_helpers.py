"""What the training test suites (tests/train, tests/t5) share: configs as files, metric
records, the real command in a subprocess with one thread, and a one-thread fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TIMING_KEYS = {
    "tokens_per_s",
    "mfu",
    "mem_gb",
    "eta_s",
    "elapsed_s",
}  # differ between identical runs


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def reproducible(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def subprocess_env() -> dict[str, str]:
    """One intra-op thread: a 2-layer model gains nothing from more, and on a shared machine
    OpenMP threads spinning for a busy core make each step 10x slower."""
    return {
        **os.environ,
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def synthlm(*args: str, timeout: float = 240, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
        **kwargs,
    )


@pytest.fixture(autouse=True)
def one_thread():
    """In-process runs use one intra-op thread, like the subprocess runs (see subprocess_env)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
