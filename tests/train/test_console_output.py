"""Without a terminal the trainer writes one plain line per metrics record instead of a bar,
and --dry-run prints the plan (resolved document_mask, phases) without training."""

from __future__ import annotations

import json

from train_helpers import synthlm, tiny_config, write_config


def test_no_progress_bar_when_output_is_not_a_terminal(tmp_path, data):
    config = tiny_config(
        tmp_path, data, logging={"progress": True}, train={"max_steps": 4, "log_every": 2}
    )
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stderr and "train:" not in done.stderr, "no tqdm redraws in a log"
    assert "step 2/4 loss" in done.stdout and "step 4/4 loss" in done.stdout


def test_dry_run_prints_the_resolved_plan_and_trains_nothing(tmp_path, data):
    phases = [{"steps": 2, "weights": {"web": 1}}, {"weights": {"cyclic": 1}}]
    config = tiny_config(tmp_path, data, data={"phases": phases}, train={"max_steps": 6})
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert done.returncode == 0, done.stderr[-2000:]
    plan = json.loads(done.stdout.split("# plan\n", 1)[1])
    assert plan["document_mask"] == [], "natural-only: GPT-style packing by default"
    assert [p["steps"] for p in plan["phases"]] == [[0, 2], [2, 6]]
    assert not (tmp_path / "run").exists()
