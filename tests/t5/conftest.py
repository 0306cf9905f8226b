"""Fixtures for the encoder-decoder tests (helpers live in t5_run_helpers.py)."""

from __future__ import annotations

import pytest
from t5_run_helpers import glue_files, make_data


@pytest.fixture(autouse=True)
def one_thread():
    """In-process runs use one intra-op thread, like the subprocess runs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def t5_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("t5-data"))


@pytest.fixture(scope="session")
def glue(tmp_path_factory):
    return glue_files(tmp_path_factory.mktemp("glue"))
