"""Fixtures for the training tests (helpers live in train_helpers.py for the subprocess drivers)."""

from __future__ import annotations

import pytest
from train_helpers import make_data

from run_helpers import one_thread  # noqa: F401 (an autouse fixture for this folder)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("train-data"))
