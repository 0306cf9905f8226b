"""Bad runs fail before the first step with one message naming the key; a diverging run stops
without touching the last good checkpoint."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import read_records, synthlm, tiny_config, write_config

from synthlm.data.store import write_store
from synthlm.errors import ConfigError, StoreError, UserError
from synthlm.train import load_run_config, plan_run, run
from synthlm.train.run_plan import plan_batch


def plan(tmp_path, paths, **sections):
    return plan_run(load_run_config([tiny_config(tmp_path, paths, **sections)]), 1)


def test_missing_data_path_names_the_source(tmp_path, data):
    sources = [{"name": "web", "path": str(tmp_path / "nowhere")}]
    with pytest.raises(
        ConfigError, match=r"data\.sources\.0\.path: .*nowhere is not a token store"
    ):
        plan(tmp_path, data, data={"sources": sources})


def test_store_ids_outside_the_tokenizer_vocabulary(tmp_path, data):
    write_store(tmp_path / "wide", [np.arange(250, 300)], vocab_size=400)
    sources = [{"name": "wide", "path": str(tmp_path / "wide")}]
    with pytest.raises(StoreError, match=r"token id 2\d\d .* outside the vocabulary of 260"):
        plan(tmp_path, data, data={"sources": sources})


def test_seq_len_beyond_model_positions(tmp_path, data):
    model = {"overrides": {"max_position_embeddings": 16}}
    with pytest.raises(ConfigError, match=r"data\.seq_len=32 exceeds the model's 16 positions"):
        plan(tmp_path, data, model=model)


def test_synthetic_dataset_needing_more_meta_ids_than_reserved(tmp_path, data):
    synth = tmp_path / "synth"
    synth.mkdir()
    manifest = {"format": "synthlm-synthetic", "format_version": 1, "layout": {"vocab_size": 50}}
    (synth / "manifest.json").write_text(json.dumps(manifest))
    sources = tiny_config(tmp_path, data)["data"]["sources"] + [
        {"name": "meta", "path": str(synth), "kind": "synthetic"}
    ]
    with pytest.raises(
        ConfigError, match=r"needs 50 meta-language ids but model\.num_meta_tokens is 10"
    ):
        plan(tmp_path, data, data={"sources": sources}, model={"num_meta_tokens": 10})


@pytest.mark.parametrize(
    ("train", "processes", "message"),
    [
        (
            {"global_batch_size": 10, "batch_size": 4},
            1,
            r"global_batch_size=10 does not divide into train\.batch_size=4 x 1",
        ),
        (
            {"global_batch_size": 12, "batch_size": 4},
            2,
            r"does not divide into train\.batch_size=4 x 2 processes \(8 sequences",
        ),
        (
            {"global_batch_size": 16, "batch_size": 4, "grad_accum": 3},
            2,
            r"grad_accum=3 contradicts .* \(needs grad_accum=2\)",
        ),
    ],
)
def test_batch_sizes_that_do_not_divide_across_processes(tmp_path, data, train, processes, message):
    config = load_run_config([tiny_config(tmp_path, data, train=train)])
    with pytest.raises(ConfigError, match=message):
        plan_batch(config.train, processes)


def test_global_batch_derives_gradient_accumulation(tmp_path, data):
    config = load_run_config(
        [tiny_config(tmp_path, data, train={"global_batch_size": 32, "batch_size": 4})]
    )
    batch = plan_batch(config.train, 2)
    assert (batch.accum, batch.global_batch) == (4, 32)


def test_source_repeated_beyond_max_repetition(tmp_path, data):
    sources = tiny_config(tmp_path, data)["data"]["sources"]
    sources[0]["max_repetition"] = 0.5
    with pytest.raises(
        ConfigError, match=r"'web' would be repeated [0-9.]+ times \(max_repetition=0\.5\)"
    ):
        plan(tmp_path, data, data={"sources": sources}, train={"max_steps": 200})


@pytest.mark.slow
def test_cli_exits_2_with_one_error_line_and_writes_nothing(tmp_path, data):
    sources = [{"name": "web", "path": str(tmp_path / "nowhere")}]
    config = write_config(
        tmp_path / "run.yaml", tiny_config(tmp_path, data, data={"sources": sources})
    )
    done = synthlm("train", str(config))
    assert done.returncode == 2
    # the files the key came from lead the line, as the loader's own errors do
    assert done.stderr.startswith(f"error: {config}: data.sources.0.path: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_resume_never_refuses_a_run_dir_with_checkpoints(tmp_path, data):
    run(
        load_run_config(
            [tiny_config(tmp_path, data, train={"max_steps": 2, "checkpoint_every": 1})]
        )
    )
    again = load_run_config(
        [tiny_config(tmp_path, data, train={"max_steps": 4, "resume": "never"})]
    )
    with pytest.raises(
        UserError, match=r"train\.resume=never but .* already holds checkpoints \(latest step-2\)"
    ):
        run(again)


def nan_at(monkeypatch, steps, accum=1):
    """Wrap the objective's forward (what the loop calls) so chosen optimizer steps give a NaN loss."""
    from synthlm.objectives.clm import CausalLM

    original, calls = CausalLM.forward, [0]

    def forward(objective, model, batch):
        out = original(objective, model, batch)
        step = calls[0] // accum
        calls[0] += 1
        if step in steps:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(CausalLM, "forward", forward)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, data, monkeypatch):
    import synthlm.train.loop as loop

    nan_at(monkeypatch, steps={5})
    config = load_run_config(
        [tiny_config(tmp_path, data, train={"max_steps": 10, "checkpoint_every": 4})]
    )
    with pytest.raises(
        loop.TrainingDiverged,
        match=r"step 6: the loss is nan .* last good checkpoint .*step-4 is kept",
    ):
        run(config)
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["step-4"]
    assert not (tmp_path / "run" / "final").exists()


def test_max_bad_steps_skips_non_finite_batches_without_updating(tmp_path, data, monkeypatch):

    nan_at(monkeypatch, steps={3}, accum=2)
    train = {
        "max_steps": 6,
        "max_bad_steps": 1,
        "grad_accum": 2,
        "checkpoint_every": 1,
        "keep_last": 10,
    }
    run(load_run_config([tiny_config(tmp_path, data, train=train)]))
    records = {r["step"]: r for r in read_records(tmp_path / "run")}
    assert records[4]["skipped_steps"] == 1 and "loss" not in records[4]
    assert all(np.isfinite(records[s]["loss"]) for s in (1, 2, 3, 5, 6))
    weights = {
        s: load_file(str(tmp_path / "run" / "checkpoints" / f"step-{s}" / "model.safetensors"))
        for s in (3, 4, 5)
    }
    assert all(torch.equal(weights[3][k], weights[4][k]) for k in weights[3]), (
        "the skipped step changed the weights"
    )
    assert not all(torch.equal(weights[4][k], weights[5][k]) for k in weights[4]), (
        "training did not go on after the skip"
    )
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_without_the_package_fails_before_work(tmp_path, data):
    with pytest.raises(
        UserError,
        match=r"logging\.wandb is true but wandb is not installed: pip install 'synthlm\[wandb\]'",
    ):
        plan(tmp_path, data, logging={"wandb": True})


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="it is installed")
def test_flash_attention_without_its_package_fails_before_work(tmp_path, data):
    with pytest.raises(UserError, match=r"flash_attention_2 needs the flash-attn package"):
        plan(tmp_path, data, model={"attn_implementation": "flash_attention_2"})
