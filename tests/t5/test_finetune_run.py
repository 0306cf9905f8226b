"""Text-to-text training (mode ft) through the real command: GLUE-shaped files via the task
table, evaluation by generation, eval_only and predict_only; synthetic tasks as pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from t5_run_helpers import TINY_T5, read_records, synthlm, write_config

from synthlm.errors import ConfigError
from synthlm.train import load_run_config, run

pytestmark = pytest.mark.slow


def ft_config(root: Path, tok: Path, finetune: dict, **train) -> dict:
    return {
        "run_dir": str(root / "run"),
        "seed": 0,
        "mode": "ft",
        "model": TINY_T5,
        "finetune": {
            "max_input_length": 32,
            "max_target_length": 16,
            "tokenizer": str(tok),
            **finetune,
        },
        "optim": {"name": "adamwscale", "lr": 2e-2, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "train": {
            "max_steps": 40,
            "batch_size": 16,
            "log_every": 10,
            "checkpoint_every": 20,
            "eval_every": 20,
            **train,
        },
        "logging": {"tensorboard": False, "progress": False},
    }


def test_glue_task_trains_evaluates_and_predicts(tmp_path, t5_data, glue):
    config = write_config(
        tmp_path / "ft.yaml",
        ft_config(
            tmp_path, t5_data["tok"], {"task": "sst2", **{k: str(v) for k, v in glue.items()}}
        ),
    )
    done = synthlm("train", str(config), "--quiet")
    assert done.returncode == 0, done.stderr
    rows = read_records(tmp_path / "run")
    losses = [r["loss"] for r in rows if "loss" in r]
    evals = [r for r in rows if "eval/valid/accuracy" in r]
    assert losses[-1] < 0.3 * losses[0], losses
    assert [r["step"] for r in evals] == [20, 40]
    assert (
        evals[-1]["eval/valid/accuracy"] >= 0.6
        and evals[-1]["eval/valid/loss"] < evals[0]["eval/valid/loss"] * 1.5
    )

    predicted = synthlm("train", str(config), "predict_only=true", "--quiet")
    assert predicted.returncode == 0, predicted.stderr
    lines = [
        json.loads(line)
        for line in (tmp_path / "run" / "predictions.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    test_words = [
        line.split("\t")[1] for line in glue["test"].read_text(encoding="utf-8").splitlines()[1:]
    ]
    assert [r["input"] for r in lines] == [f"sst2 sentence: {w}" for w in test_words]
    assert all(r["target"] is None and r["prediction"] in ("negative", "positive") for r in lines)
    assert all(r["label"] == ("negative", "positive").index(r["prediction"]) for r in lines)

    scored = synthlm("train", str(config), "eval_only=true", "--quiet")
    assert scored.returncode == 0, scored.stderr
    printed = json.loads(scored.stdout[scored.stdout.index("{") : scored.stdout.rindex("}") + 1])
    assert printed == {
        k: v for k, v in evals[-1].items() if k.startswith("eval/")
    }  # same model, same numbers
    assert (
        read_records(tmp_path / "run")[-1]["eval/valid/accuracy"]
        == evals[-1]["eval/valid/accuracy"]
    )


def test_synthetic_tasks_train_as_input_target_pairs(tmp_path, t5_data):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: pairs\nnum_tokens: 30K\nseed: 0\nsplits: {train: 0.8, valid: 0.1, test: "
        "0.1}\npromoter_length: 1\n"
        "domains:\n  - {type: first_token, vocab: {num_vocab: 12}, length: {min: 3, max: 6}}\n"
        "  - {type: reverse, vocab: {num_vocab: 12}, length: {min: 2, max: 3}}\n",
        encoding="utf-8",
    )
    made = synthlm("synth", "generate", str(spec), "--out", str(tmp_path / "syn"))
    assert made.returncode == 0, made.stderr
    finetune = {
        "train": str(tmp_path / "syn"),
        "valid": str(tmp_path / "syn"),
        "max_input_length": 12,
        "max_target_length": 6,
        "max_eval_examples": 48,
    }
    config = ft_config(tmp_path, t5_data["tok"], finetune, max_steps=30, eval_every=0)
    config["model"] = {**TINY_T5, "num_meta_tokens": 32}
    run_dir = run(load_run_config([config]))
    rows = read_records(run_dir)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < 0.6 * losses[0], losses
    assert 0.0 <= rows[-1]["eval/valid/accuracy"] <= 1.0

    # a synthetic answer is judged by its domain's verifier on what the model generates
    config["finetune"]["eval_protocol"] = "teacher_forced"
    with pytest.raises(ConfigError, match="judge as generated; use eval_protocol: generate"):
        run(load_run_config([config]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"mode": "pt", "finetune": None, "predict_only": True, "data": None},
            "mode pt needs a data section",
        ),
        ({"finetune": None}, "mode ft needs a finetune section"),
        ({"predict_only": True, "eval_only": True}, "set eval_only or predict_only, not both"),
        ({"eval_only": True}, "eval_only: nothing trained to use"),
        (
            {"objective": {"name": "span_corruption"}},
            "objective.name=span_corruption: mode ft trains text_to_text",
        ),
        (
            {"model": {"arch": "llama", "preset": "tiny"}},
            "trains an encoder-decoder model, but model.arch=llama",
        ),
    ],
)
def test_bad_ft_configs_stop_before_training_with_exit_2(tmp_path, t5_data, glue, change, message):
    config = ft_config(
        tmp_path,
        t5_data["tok"],
        {"task": "sst2", "train": str(glue["train"]), "valid": str(glue["valid"])},
    )
    config.update(change)
    done = synthlm("train", str(write_config(tmp_path / "bad.yaml", config)), "--quiet")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_column_keys_that_a_task_or_a_dataset_would_not_read_are_refused(tmp_path, t5_data, glue):
    """input_field, target_field and prefix name a text pair file's columns: a task builds its
    inputs from its own columns, a synthetic dataset from its examples, so there they would
    change nothing."""
    config = ft_config(
        tmp_path,
        t5_data["tok"],
        {"task": "sst2", "train": str(glue["train"]), "valid": str(glue["valid"]), "prefix": "s: "},
    )
    done = synthlm("train", str(write_config(tmp_path / "task.yaml", config)), "--quiet")
    assert done.returncode == 2, done.stderr
    assert "finetune.prefix would not be read" in done.stderr
    assert not (tmp_path / "run").exists()

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: pairs\nnum_tokens: 2K\nseed: 0\npromoter_length: 1\n"
        "domains:\n  - {type: reverse, vocab: {num_vocab: 12}, length: {min: 2, max: 3}}\n",
        encoding="utf-8",
    )
    made = synthlm("synth", "generate", str(spec), "--out", str(tmp_path / "syn"))
    assert made.returncode == 0, made.stderr
    synthetic = {"train": str(tmp_path / "syn"), "valid": str(tmp_path / "syn")}
    synthetic["input_field"] = "question"
    config = ft_config(tmp_path, t5_data["tok"], synthetic)
    config["model"] = {**TINY_T5, "num_meta_tokens": 32}
    with pytest.raises(ConfigError, match="finetune.input_field name the columns"):
        run(load_run_config([config]))


def test_lm_eval_during_an_encoder_decoder_run_is_refused(tmp_path, t5_data, glue):
    """train.lm_eval wraps a causal LM, as `synthlm eval --lm-eval` does (which refuses a T5)."""
    finetune = {"task": "sst2", "train": str(glue["train"]), "valid": str(glue["valid"])}
    config = ft_config(tmp_path, t5_data["tok"], finetune)
    config["train"]["lm_eval"] = {"tasks": ["hellaswag"]}
    with pytest.raises(ConfigError, match="model.arch=t5 is an encoder-decoder"):
        run(load_run_config([config]))
    assert not (tmp_path / "run").exists()
