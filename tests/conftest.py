"""Shared fixtures: tiny data only, no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_runner import run_cli  # noqa: F401  (transition: new tests import it from cli_runner)

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
        from synthlm.data.corpus import shipped_corpus

        path = shipped_corpus()
    return path


@pytest.fixture
def dynamo_counters():
    """torch._dynamo's counters (graphs traced, graph breaks), from a cleared cache: what a test
    reads is what its own code compiled."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()
