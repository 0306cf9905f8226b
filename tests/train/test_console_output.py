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


def test_evaluations_are_printed_and_deepspeed_stays_quiet(tmp_path, data):
    """Each evaluation during training gets one console line; DeepSpeed (which accelerate
    imports at the first checkpoint when it is installed) prints nothing on a CPU run."""
    config = tiny_config(
        tmp_path,
        data,
        data={"eval": [{"name": "web", "path": str(data["web"]), "max_tokens": 256}]},
        train={"max_steps": 4, "log_every": 2, "eval_every": 2, "checkpoint_every": 2},
        logging={"progress": True},
    )
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("eval step")]
    assert [line.split(":")[0] for line in lines] == ["eval step 2", "eval step 4"]
    records = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if "eval/web/loss" in r][-1]
    assert f"web/loss {last['eval/web/loss']:.4g}" in lines[-1]
    assert "WARNING" not in done.stdout + done.stderr
    quiet = synthlm(
        "train",
        str(write_config(tmp_path / "q.yaml", {**config, "run_dir": str(tmp_path / "q")})),
        "--quiet",
    )
    assert quiet.returncode == 0 and "eval step" not in quiet.stdout


def test_dry_run_prints_the_resolved_plan_and_trains_nothing(tmp_path, data):
    phases = [{"steps": 2, "weights": {"web": 1}}, {"weights": {"cyclic": 1}}]
    config = tiny_config(tmp_path, data, data={"phases": phases}, train={"max_steps": 6})
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert done.returncode == 0, done.stderr[-2000:]
    plan = json.loads(done.stdout.split("# plan\n", 1)[1])
    assert plan["document_mask"] == [], "natural-only: GPT-style packing by default"
    assert [p["steps"] for p in plan["phases"]] == [[0, 2], [2, 6]]
    assert not (tmp_path / "run").exists()
