"""Keys a run would accept and then never read are refused when the config loads (exit 2).

Each case here was accepted before and left the run unchanged: a compile setting without
``model.compile``, a warmup start without a warmup, an overflow rule without fp16's loss scaler,
evaluation settings of a run with nothing to evaluate, a DEPTH option of the other
construction, and ``model.dtype`` under DeepSpeed (which keeps fp32 master weights). Defaults
always pass: a run's saved config.yaml lists every key with its default.
"""

from __future__ import annotations

import pytest
from train_helpers import deepspeed_accelerator, synthlm, tiny_config, write_config

from synthlm.config import validate
from synthlm.errors import ConfigError
from synthlm.models import ModelConfig
from synthlm.objectives.depth import DepthConfig
from synthlm.train import load_run_config
from synthlm.train.accel import configure_deepspeed
from synthlm.train.run_plan import BatchPlan
from synthlm.train.schedules import ScheduleConfig


@pytest.mark.parametrize(
    "key, value",
    [("compile_scope", "blocks"), ("compile_backend", "eager"), ("compile_dynamic", False)],
)
def test_compile_settings_without_compile_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"{key}: .* has no effect without model.compile: true"):
        validate(ModelConfig, {key: value})
    assert getattr(validate(ModelConfig, {key: value, "compile": True}), key) == value
    validate(ModelConfig, ModelConfig().model_dump())  # a saved config's defaults pass


@pytest.mark.parametrize(
    "schedule, fix",
    [
        ({"name": "cosine"}, "set schedule.warmup_steps"),
        ({"name": "linear", "warmup_ratio": 0.0}, "set schedule.warmup_steps"),
        ({"name": "constant"}, "remove warmup_start"),
        ({"name": "legacy"}, "remove warmup_start"),
    ],
)
def test_warmup_start_without_a_warmup_is_refused(schedule, fix):
    """The schedules begin at the peak when there is no warmup, whatever warmup_start says."""
    with pytest.raises(ConfigError, match=f"warmup_start: 0.5 .* has no warmup; {fix}"):
        validate(ScheduleConfig, {**schedule, "warmup_start": 0.5})


def test_warmup_start_with_a_warmup_passes():
    for warmup in ({"warmup_steps": 10}, {"warmup_ratio": 0.1}):
        config = validate(ScheduleConfig, {"name": "neox_cosine", "warmup_start": 0.5, **warmup})
        assert config.warmup_start == 0.5
    validate(ScheduleConfig, ScheduleConfig(name="legacy").model_dump())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_on_overflow_needs_fp16(tmp_path, data, precision):
    """Only fp16's loss scaler skips steps; elsewhere 'advance' is a rule nothing applies."""
    config = tiny_config(
        tmp_path, data, train={"precision": precision}, schedule={"on_overflow": "advance"}
    )
    with pytest.raises(ConfigError, match="schedule.on_overflow: applies to .*fp16 only.*"):
        load_run_config([config])
    config["train"]["precision"] = "fp16"
    assert load_run_config([config]).schedule.on_overflow == "advance"


@pytest.mark.parametrize(
    "key, value",
    [
        ("eval_every", 5),
        ("eval_every", "epoch"),
        ("eval_on_start", True),
        ("eval_draws", "per_evaluation"),
        ("eval_batch_size", 3),
    ],
)
def test_eval_settings_without_eval_sets_are_refused(tmp_path, data, key, value):
    """No eval set: the eval hook is never built, so these would be read by no one."""
    config = tiny_config(tmp_path, data, train={key: value})
    with pytest.raises(ConfigError, match=f"train.{key}: .*this run has none .data.eval is empty"):
        load_run_config([config])
    config["data"]["eval"] = [{"name": "val", "path": str(data["web"])}]
    assert getattr(load_run_config([config]).train, key) == value


def test_eval_batch_size_sizes_lm_eval_batches_without_eval_sets(tmp_path, data):
    lm_eval = {"tasks": ["hellaswag"]}
    config = tiny_config(tmp_path, data, train={"eval_batch_size": 3, "lm_eval": lm_eval})
    assert load_run_config([config]).train.eval_batch == 3
    config["train"]["lm_eval"]["batch_size"] = 2  # now nothing reads eval_batch_size
    with pytest.raises(ConfigError, match="train.eval_batch_size: sizes eval batches"):
        load_run_config([config])


def test_fine_tuning_without_valid_pairs_refuses_eval_settings(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"input": "a", "target": "b"}\n', encoding="utf-8")
    config = {
        "run_dir": str(tmp_path / "run"),
        "mode": "ft",
        "model": {"arch": "t5", "preset": "tiny"},
        "finetune": {"train": str(pairs), "tokenizer": str(tmp_path)},
        "train": {"max_steps": 1, "eval_every": 10},
    }
    with pytest.raises(ConfigError, match=r"train.eval_every: .*\(finetune.valid is not set\)"):
        load_run_config([config])
    config["finetune"]["valid"] = str(pairs)
    assert load_run_config([config]).train.eval_every == 10
    # eval_only / predict_only reuse the training config: they read none of these keys
    del config["finetune"]["valid"]
    load_run_config([config], ["predict_only=true", "finetune.test=" + str(pairs)])


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"construction": "paper", "sentence_ids": "ordered"},
            "sentence_ids: ordered is not read by construction: paper",
        ),
        ({"paper_label_padding": False}, "paper_label_padding: false is read by construction"),
    ],
)
def test_depth_options_of_the_other_construction_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        validate(DepthConfig, options)
    validate(DepthConfig, DepthConfig(construction="paper").model_dump())
    validate(DepthConfig, {"construction": "paper", "paper_label_padding": False})


@pytest.mark.parametrize(
    "stage, precision, refused",
    [
        (2, "fp32", True),
        (2, "bf16", True),
        (0, "bf16", True),
        (3, "fp32", True),
        (0, "fp32", False),
    ],
)
def test_model_dtype_under_deepspeed(tmp_path, data, stage, precision, refused):
    """DeepSpeed keeps fp32 master weights under ZeRO and in its bf16/fp16 modes: a ZeRO-2 bf16
    run trained the same weights with model.dtype bf16 as with fp32 (the notes of session 36)."""
    config = load_run_config(
        [tiny_config(tmp_path, data, model={"dtype": "bf16"}, train={"precision": precision})]
    )
    ds = {"zero_optimization": {"stage": stage}}
    if precision == "bf16":
        ds["bf16"] = {"enabled": True}
    accelerator = deepspeed_accelerator(ds)
    if not refused:
        configure_deepspeed(accelerator, config, BatchPlan(4, 1, 1))
        return
    with pytest.raises(ConfigError, match=r"model.dtype: bf16 has no effect under DeepSpeed"):
        configure_deepspeed(accelerator, config, BatchPlan(4, 1, 1))


def test_dry_run_exits_2_naming_the_unread_key(tmp_path, data):
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, data))
    result = synthlm("train", str(config), "--dry-run", "model.compile_scope=blocks")
    assert result.returncode == 2, result.stderr
    assert "model.compile_scope=blocks" in result.stderr and "model.compile: true" in result.stderr
    assert not (tmp_path / "run").exists()
