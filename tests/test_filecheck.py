"""The cheap safetensors check agrees with the safetensors library on real files."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from synthlm.errors import UserError
from synthlm.filecheck import check_safetensors


def test_complete_files_pass_and_every_truncation_is_caught(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(
        {"a": np.arange(50, dtype=np.float32), "b": np.ones((3, 7), dtype=np.int64)},
        str(path),
        metadata={"format": "pt"},
    )
    check_safetensors(path)
    data = path.read_bytes()
    for cut in (0, 5, 8, 40, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(UserError, match="model.safetensors: "):
            check_safetensors(path)
        with pytest.raises(Exception):  # noqa: B017 - the library agrees: unreadable
            load_file(str(path))
