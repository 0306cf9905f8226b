"""Shared fixtures: tiny data only, no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shakespeare() -> Path:
    """The real tinyshakespeare corpus from ../shared/data, or a copy shipped in the package."""
    path = SHARED_DATA / "tinyshakespeare.txt"
    if not path.is_file():
        from synthlm.corpus import shipped_corpus

        path = shipped_corpus()
    return path


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``synthlm`` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
