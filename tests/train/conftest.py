"""Fixtures for the training tests (helpers live in train_helpers.py for the subprocess drivers)."""

from __future__ import annotations

import pytest
from train_helpers import make_data


@pytest.fixture(autouse=True)
def one_thread():
    """In-process runs use one intra-op thread, like the subprocess runs (see subprocess_env)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("train-data"))
