"""Fixtures shared by the EntiGraph tests (fakes live in entigraph_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from entigraph_fakes import write_docs


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """The fake documents as a jsonl file of the run's input."""
    return write_docs(tmp_path / "docs.jsonl")
