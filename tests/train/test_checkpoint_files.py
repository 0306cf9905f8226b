"""Checkpoint directory rules: only complete step-N dirs count, pruning keeps the newest."""

from __future__ import annotations

import json

import pytest

from synthlm.errors import UserError
from synthlm.train.checkpoint import (
    STATE_FILE,
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    prune,
    read_state,
    remove_stale,
    resolve_resume,
)


def fake_checkpoint(run, step, complete=True):
    path = run / "checkpoints" / f"step-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / STATE_FILE).write_text(
            json.dumps(TrainerState(step=step, samples=step * 8).to_dict())
        )
    return path


def test_latest_is_the_highest_complete_step_not_the_newest_name(tmp_path):
    for step in (2, 10, 9):
        fake_checkpoint(tmp_path, step)
    (tmp_path / "checkpoints" / ".tmp-step-12").mkdir()  # a save killed half way
    fake_checkpoint(tmp_path, 11, complete=False)
    assert latest_checkpoint(tmp_path).name == "step-10"
    assert read_state(latest_checkpoint(tmp_path)).samples == 80
    remove_stale(tmp_path)
    assert not (tmp_path / "checkpoints" / ".tmp-step-12").exists()


def test_prune_keeps_the_newest_k(tmp_path):
    for step in (1, 2, 3, 4):
        fake_checkpoint(tmp_path, step)
    removed = prune(tmp_path, keep_last=2)
    assert [p.name for p in removed] == ["step-1", "step-2"]
    assert [step for step, _ in list_checkpoints(tmp_path)] == [3, 4]


def test_resume_modes(tmp_path):
    assert resolve_resume(tmp_path, "auto") is None
    assert resolve_resume(tmp_path, "never") is None
    path = fake_checkpoint(tmp_path, 5)
    assert resolve_resume(tmp_path, "auto") == path
    assert resolve_resume(tmp_path, str(path)) == path
    with pytest.raises(UserError, match="already holds checkpoints"):
        resolve_resume(tmp_path, "never")
    with pytest.raises(UserError, match=r"train\.resume: .* is not a synthlm checkpoint"):
        resolve_resume(tmp_path, str(tmp_path / "elsewhere"))
