"""Resume refuses a changed data stream, starts a clean future from an older checkpoint,
honours a changed learning rate, and evaluating never rewrites the training history."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import read_records, tiny_config

from synthlm.errors import ConfigError, UserError
from synthlm.train import load_run_config, run
from synthlm.train.checkpoint import list_checkpoints


def train(tmp_path, data, *overrides: str, **sections):
    return run(load_run_config([tiny_config(tmp_path, data, **sections)], list(overrides)))


def test_a_changed_global_batch_or_weights_is_refused(tmp_path, data):
    train(tmp_path, data, "train.max_steps=4")
    with pytest.raises(UserError, match="global batch, seq_len and source weights"):
        train(tmp_path, data, "train.max_steps=8", "train.batch_size=8")
    with pytest.raises(UserError, match="global batch, seq_len and source weights"):
        train(tmp_path, data, "train.max_steps=8", "data.sources.0.weight=0.9")


def test_resuming_an_older_checkpoint_sets_the_later_ones_aside(tmp_path, data):
    run_dir = train(tmp_path, data, "train.max_steps=8")  # checkpoints at 4 and 8
    old_step8 = load_file(str(run_dir / "checkpoints" / "step-8" / "model.safetensors"))
    train(
        tmp_path,
        data,
        "train.max_steps=8",
        f"train.resume={run_dir / 'checkpoints' / 'step-4'}",
        "optim.lr=1e-4",
    )
    assert [step for step, _ in list_checkpoints(run_dir)] == [4, 8]
    new_step8 = load_file(str(run_dir / "checkpoints" / "step-8" / "model.safetensors"))
    assert any(not torch.equal(old_step8[k], new_step8[k]) for k in new_step8), (
        "step-8 belongs to the new future"
    )
    assert (run_dir / "checkpoints.abandoned" / "step-8" / "model.safetensors").is_file(), (
        "the old one is kept aside"
    )
    lrs = [r["lr"] for r in read_records(run_dir) if r.get("step", 0) > 4 and "lr" in r]
    assert lrs and max(lrs) <= 1e-4 + 1e-12, "the changed optim.lr took effect after resume"


def test_eval_only_on_an_older_checkpoint_keeps_later_training_records(tmp_path, data):
    run_dir = train(tmp_path, data, "train.max_steps=8")
    before = read_records(run_dir)
    train(
        tmp_path,
        data,
        "train.max_steps=8",
        "eval_only=true",
        f"train.resume={run_dir / 'checkpoints' / 'step-4'}",
    )
    after = read_records(run_dir)
    assert after[: len(before)] == before


def test_seed_outside_numpy_and_torch_range_is_a_config_error(tmp_path, data):
    with pytest.raises(ConfigError, match="seed"):
        load_run_config([tiny_config(tmp_path, data)], ["seed=-1"])
