"""``train.eval_on_start``: one evaluation of the untrained model, logged at step 0 before the
first step (the HF Trainer's eval_on_start), never repeated by a resume and never counted by
early stopping or keep_best."""

from __future__ import annotations

import json

from train_helpers import read_records, synthlm, tiny_config, write_config

from synthlm.train import load_run_config, run
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run


def config_with_eval(root, data, **train):
    return tiny_config(
        root,
        data,
        data={"eval": [{"name": "val", "path": str(data["web"]), "max_tokens": 600}]},
        schedule={"name": "constant", "warmup_steps": 0},
        train={"max_steps": 4, "eval_every": 2, "checkpoint_every": 2, **train},
    )


def evaluations(run_dir):
    return [r for r in read_records(run_dir) if "eval/val/loss" in r]


def test_the_untrained_model_is_evaluated_at_step_0_before_any_training(tmp_path, data):
    run(load_run_config([config_with_eval(tmp_path / "a", data, eval_on_start=True)]))
    records = read_records(tmp_path / "a" / "run")
    assert "eval/val/loss" in records[0] and records[0]["step"] == 0  # before any step's record
    assert [r["step"] for r in evaluations(tmp_path / "a" / "run")] == [0, 2, 4]

    # the same seed's untrained model, evaluated directly by another run that trains nothing
    plain = load_run_config([config_with_eval(tmp_path / "b", data)])
    untrained = Trainer(plan_run(plain, 1), progress=False)
    untrained.start(None)
    assert records[0]["eval/val/loss"] == untrained.evaluate()["eval/val/loss"]
    assert records[0]["eval/val/loss"] > evaluations(tmp_path / "a" / "run")[-1]["eval/val/loss"]


def test_a_resumed_run_keeps_its_step_0_record_and_does_not_repeat_it(tmp_path, data):
    config = config_with_eval(tmp_path, data, eval_on_start=True)
    run(load_run_config([config]))
    longer = write_config(
        tmp_path / "longer.yaml", {**config, "train": {**config["train"], "max_steps": 6}}
    )
    done = synthlm("train", str(longer), "--quiet")  # resumes at step 4 (constant schedule)
    assert done.returncode == 0, done.stderr
    assert [r["step"] for r in evaluations(tmp_path / "run")] == [0, 2, 4, 6]


def test_early_stopping_and_keep_best_do_not_count_step_0(tmp_path, data):
    config = config_with_eval(
        tmp_path,
        data,
        eval_on_start=True,
        early_stopping={"metric": "eval/val/loss", "patience": 1},
        keep_best={"k": 3},
    )
    run(load_run_config([config]))
    ranked = json.loads((tmp_path / "run" / "best_checkpoints.json").read_text())
    assert sorted(c["step"] for c in ranked["checkpoints"]) == [2, 4]
    assert not (tmp_path / "run" / "checkpoints" / "step-0").exists()


def test_asking_for_it_without_eval_sets_is_refused_before_any_work(tmp_path, data):
    config = write_config(
        tmp_path / "bad.yaml", tiny_config(tmp_path, data, train={"eval_on_start": True})
    )
    done = synthlm("train", str(config))
    assert done.returncode == 2, done.stderr
    assert "train.eval_on_start" in done.stderr and "data.eval" in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
