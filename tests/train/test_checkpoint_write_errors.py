"""Checkpoint write failures name the checkpoint; a full disk is called a full disk.

``torch.save`` reports ENOSPC as ``RuntimeError: ... unexpected pos`` (a real full-disk run is
in the issue's log; here ``shutil.disk_usage`` is replaced, since filling a disk takes a mount).
"""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple

import pytest
import torch

from synthlm.errors import UserError, explain
from synthlm.train import checkpoint
from synthlm.train.checkpoint import read_state, write_errors

Usage = namedtuple("Usage", "total used free")
TORCH_ENOSPC = "[enforce fail at inline_container.cc:603] . unexpected pos 5120 vs 5008"


def test_full_disk_during_a_checkpoint_is_enospc_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10, 10, 0))
    with pytest.raises(OSError) as caught, write_errors(tmp_path / ".tmp-step-3"):
        raise RuntimeError(TORCH_ENOSPC)
    assert caught.value.errno == errno.ENOSPC
    message, code = explain(caught.value)
    assert code == 2 and message.startswith(f"{tmp_path / '.tmp-step-3'}: no space left on device")


def test_other_write_failures_name_the_checkpoint_and_bugs_pass_through(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10, 0, 10 << 30))
    with pytest.raises(UserError, match="writing the checkpoint failed"), write_errors(tmp_path):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0")
    with pytest.raises(RuntimeError, match="shape mismatch"), write_errors(tmp_path):
        raise RuntimeError("shape mismatch")


def test_corrupt_trainer_state_is_named_with_what_to_do(tmp_path):
    (tmp_path / checkpoint.STATE_FILE).write_text('{"step": 3, "sam')
    with pytest.raises(
        UserError, match=r"trainer_state.json: not a valid trainer state .*train.resume=never"
    ):
        read_state(tmp_path)


def test_reading_a_damaged_checkpoint_names_the_file_and_bugs_pass_through(tmp_path):
    from synthlm.train.checkpoint import damaged_file, read_errors

    trainer = tmp_path / "trainer"
    trainer.mkdir()
    torch.save({"a": torch.ones(4)}, trainer / "scheduler.bin")
    torch.save({"b": torch.ones(64)}, trainer / "optimizer.bin")
    assert damaged_file(tmp_path) is None
    whole = (trainer / "optimizer.bin").read_bytes()
    (trainer / "optimizer.bin").write_bytes(whole[:-30])
    assert damaged_file(tmp_path) == trainer / "optimizer.bin"
    damaged = r"optimizer.bin: not a valid checkpoint file \(cut short"
    with pytest.raises(UserError, match=damaged), read_errors(tmp_path):
        torch.load(trainer / "optimizer.bin", weights_only=True)
    with pytest.raises(RuntimeError, match="size mismatch"), read_errors(tmp_path):
        raise RuntimeError("size mismatch for the optimizer's param groups")
