"""Fixtures for the encoder-decoder tests (helpers live in t5_run_helpers.py)."""

from __future__ import annotations

import pytest
from t5_run_helpers import glue_files, make_data

from run_helpers import one_thread  # noqa: F401 (an autouse fixture for this folder)


@pytest.fixture(scope="session")
def t5_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("t5-data"))


@pytest.fixture(scope="session")
def glue(tmp_path_factory):
    return glue_files(tmp_path_factory.mktemp("glue"))
