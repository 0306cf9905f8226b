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


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("seed=5", "seed: 3 -> 5"),  # another data order half way
        ("schedule.name=linear", "schedule.name: 'cosine' -> 'linear'"),  # the lr would jump
        ("data.document_mask=true", "data.document_mask: None -> True"),
        ("data.sources.1.loss=all", "data.sources.1.loss: 'stored' -> 'all'"),
        ("optim.name=adafactor", "optim.name: 'adamw' -> 'adafactor'"),
        ("model.overrides.hidden_size=64", "model.overrides.hidden_size: 32 -> 64"),
    ],
)
def test_a_config_that_would_splice_another_run_is_refused(tmp_path, data, override, named):
    """Resuming under another seed, schedule, objective's targets, optimizer or model shape
    would train the rest of the run as a different run (these used to pass without a word, or
    crash deep in torch); the refusal names the keys, and RUN/config.yaml keeps the config the
    run trained with."""
    run_dir = train(tmp_path, data, "train.max_steps=8", "train.checkpoint_every=4")
    (run_dir / "final").rename(tmp_path / "final")  # the run as a kill at step 8 leaves it
    for step in run_dir.glob("checkpoints/step-8"):
        step.rename(tmp_path / "step-8")
    before = (run_dir / "config.yaml").read_text()
    with pytest.raises(UserError, match="changes what the checkpoint was trained with") as caught:
        train(tmp_path, data, "train.max_steps=8", "train.checkpoint_every=4", override)
    assert named in str(caught.value) and "model.init_from=" in str(caught.value)
    assert (run_dir / "config.yaml").read_text() == before


def test_optimizer_settings_changed_on_resume_apply_from_the_resumed_step(tmp_path, data, capsys):
    """weight_decay, betas and eps came back from the checkpoint's optimizer state and the new
    config's were silently dropped; now the config's apply (and are announced), like lr."""
    run_dir = train(tmp_path, data, "train.max_steps=8", "train.checkpoint_every=4")
    reference = read_records(run_dir)
    (run_dir / "final").rename(tmp_path / "final")
    (run_dir / "checkpoints" / "step-8").rename(tmp_path / "step-8")
    changed = ("optim.weight_decay=0.5", "optim.betas=[0.5,0.5]", "optim.eps=0.001")
    train(tmp_path, data, "train.max_steps=8", "train.checkpoint_every=4", *changed)
    out = capsys.readouterr().out
    assert "changed on resume, in effect from step 5: optim.betas" in out
    assert "optim.weight_decay 0.1 -> 0.5" in out
    losses = {r["step"]: r["loss"] for r in read_records(run_dir) if "loss" in r}
    old = {r["step"]: r["loss"] for r in reference if "loss" in r}
    assert losses[5] == old[5]  # the resumed step's loss is measured before its update
    assert losses[8] != old[8]
    assert "weight_decay: 0.5" in (run_dir / "config.yaml").read_text()


def test_rerunning_a_finished_run_says_so_and_trains_nothing(tmp_path, data, capsys):
    run_dir = train(tmp_path, data, "train.max_steps=4")
    final = run_dir / "final" / "model.safetensors"
    before, records = final.stat().st_mtime_ns, read_records(run_dir)
    capsys.readouterr()
    train(tmp_path, data, "train.max_steps=4")
    assert (
        "this run finished at step 4, its budget: nothing left to train" in capsys.readouterr().out
    )
    assert final.stat().st_mtime_ns == before and read_records(run_dir) == records


def test_resume_rules_cover_evaluation_only_keys_as_free():
    """What only scores a run (its eval sets, a fine-tuning run's metrics and generation) may
    change on resume; what it trains on may not."""
    from synthlm.train.resume_check import check_resume_config

    saved = {
        "seed": 1,
        "finetune": {"metrics": ["accuracy"], "max_new_tokens": None, "train": "a.jsonl"},
        "data": {"eval": [{"name": "v", "max_tokens": 10}]},
    }
    scored = {
        "seed": 1,
        "finetune": {"metrics": ["rouge_l"], "max_new_tokens": 5, "train": "a.jsonl"},
        "data": {"eval": [{"name": "v", "max_tokens": 20}, {"name": "w"}]},
    }
    assert check_resume_config(saved, scored, "ckpt") == []
    trained = {**scored, "seed": 2}
    with pytest.raises(UserError, match="seed: 1 -> 2"):
        check_resume_config(saved, trained, "ckpt")
