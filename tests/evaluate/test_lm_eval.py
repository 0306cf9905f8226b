"""``synthlm eval CKPT --lm-eval``: lm-evaluation-harness on a checkpoint, offline, local tasks.

The checkpoint is rigged (tiny_lm.bigram_checkpoint): after ``x`` it predicts ``y``, after ``p``
it predicts ``q``. So on the task below it answers every question with the transition of the
question's last letter, and its exact accuracy is known in advance: 3 of 4 gold answers agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tiny_lm import bigram_checkpoint, byte_id

from cli_runner import run_cli
from synthlm.evaluate.lm_eval_bridge import flatten_results, metric_records

TASK = "tiny_bigram"
QUESTIONS = [  # (question, choices, gold); the model picks the choice its bigram predicts
    ("Next after x", ["y", "z"], 0),
    ("Next after x", ["z", "y"], 1),
    ("Next after p", ["q", "r"], 0),
    ("Next after x", ["y", "z"], 1),  # gold disagrees with the model: the one miss
]


def write_task(root: Path) -> Path:
    """A multiple-choice jsonl and its task YAML (``dataset_path: json`` + ``data_files``)."""
    rows = [{"question": q, "choices": c, "answer": a} for q, c, a in QUESTIONS]
    data = root / "bigram.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / f"{TASK}.yaml").write_text(
        f"task: {TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\nfewshot_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\ndoc_to_target: '{{answer}}'\n"
        "target_delimiter: ''\nmetric_list:\n  - metric: acc\n    aggregation: mean\n    "
        "higher_is_better: true\n",
        encoding="utf-8",
    )
    return tasks


def env(tmp_path: Path) -> dict[str, str]:
    """Offline flags deliberately *off*: synthlm must switch them on itself."""
    return {
        "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture
def rigged(tmp_path) -> Path:
    return bigram_checkpoint(
        tmp_path / "run" / "final", {byte_id("x"): byte_id("y"), byte_id("p"): byte_id("q")}
    )


@pytest.mark.slow
def test_local_task_scores_exactly_offline_and_the_report_shows_it(tmp_path, rigged):
    pytest.importorskip("lm_eval")
    tasks = write_task(tmp_path)
    result = run_cli(
        "eval",
        str(rigged),
        "--lm-eval",
        TASK,
        "--lm-eval-include",
        str(tasks),
        "-q",
        env=env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    path = tmp_path / "run" / "eval" / "lm_eval.json"
    assert json.loads(path.read_text()) == {TASK: {"acc": 0.75}}
    details = json.loads((path.parent / "harness" / "lm_eval.json").read_text())
    assert details["n-samples"][TASK] == {
        "original": 4,
        "effective": 4,
    }  # no hidden cap: every example
    assert details["stderr"][TASK]["acc"] == pytest.approx(0.25)

    limited = run_cli(
        "eval",
        str(rigged),
        "--lm-eval",
        TASK,
        "--lm-eval-include",
        str(tasks),
        "--limit",
        "2",
        "--num-fewshot",
        "1",
        "--out",
        str(tmp_path / "limited.json"),
        "-q",
        env=env(tmp_path),
    )
    assert limited.returncode == 0, limited.stderr
    assert json.loads((tmp_path / "limited.json").read_text()) == {TASK: {"acc": 1.0}}
    limited_details = json.loads((tmp_path / "harness" / "limited.json").read_text())
    assert (
        limited_details["n-shot"][TASK] == 1
        and limited_details["n-samples"][TASK]["effective"] == 2
    )

    from synthlm.report import build_report

    (tmp_path / "run" / "config.yaml").write_text(
        f"run_dir: {tmp_path / 'run'}\n"
    )  # what training leaves in RUN
    report = build_report([tmp_path / "run"], tmp_path / "report")
    assert "results_lm_eval.png" in {p.name for p in report.figures}
    assert f"lm_eval/{TASK}/acc" in report.page.read_text(encoding="utf-8")


def test_tasks_needing_the_hub_fail_offline_with_exit_2(tmp_path, rigged):
    pytest.importorskip("lm_eval")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "remote.yaml").write_text(
        "task: remote_only\ndataset_path: synthlm-tests/never-downloaded\ntest_split: "
        "test\noutput_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\ndoc_to_choice: '{{c}}'\ndoc_to_target: 0\n",
        encoding="utf-8",
    )
    result = run_cli(
        "eval",
        str(rigged),
        "--lm-eval",
        "remote_only",
        "--lm-eval-include",
        str(tasks),
        env=env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "could not load task 'remote_only'" in result.stderr
    assert (
        "OfflineModeIsEnabled" in result.stderr
    )  # the hub itself says so: synthlm turned offline mode on
    assert "Traceback" not in result.stderr


def test_without_the_harness_lm_eval_exits_2_naming_the_extra(tmp_path, rigged):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "lm_eval.py").write_text(
        "raise ImportError('No module named lm_eval')\n"
    )  # as if not installed
    result = run_cli("eval", str(rigged), "--lm-eval", "hellaswag", env={"PYTHONPATH": str(shadow)})
    assert result.returncode == 2
    assert "pip install 'synthlm[eval]'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "eval").exists()


def test_lm_eval_flags_need_lm_eval_and_run_alone(tmp_path, rigged):
    orphan = run_cli("eval", str(rigged), "--limit", "5")
    assert orphan.returncode == 2 and "--limit: only used with --lm-eval" in orphan.stderr
    mixed = run_cli("eval", str(rigged), "--lm-eval", "x", "--qa", str(tmp_path / "q.json"))
    assert mixed.returncode == 2 and "--lm-eval cannot be combined with --qa" in mixed.stderr


@pytest.mark.slow
def test_a_shot_count_no_task_takes_is_refused(tmp_path, rigged):
    """A task config pinned to ``num_fewshot: 0`` keeps it (as lm_eval does, saying so at INFO
    only): --num-fewshot would change nothing, so it stops before the model loads."""
    pytest.importorskip("lm_eval")
    tasks = write_task(tmp_path)
    with (tasks / f"{TASK}.yaml").open("a", encoding="utf-8") as task_yaml:
        task_yaml.write("num_fewshot: 0\n")
    result = run_cli(
        "eval", str(rigged), "--lm-eval", TASK, "--lm-eval-include", str(tasks),
        "--num-fewshot", "2", "-q", env=env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"--num-fewshot: 2 has no effect: every task here ({TASK}) sets num_fewshot: 0" in (
        result.stderr
    )
    assert not (tmp_path / "run" / "eval").exists()


@pytest.mark.slow
def test_a_context_past_the_models_positions_is_refused(tmp_path, rigged):
    pytest.importorskip("lm_eval")
    tasks = write_task(tmp_path)
    result = run_cli(
        "eval", str(rigged), "--lm-eval", TASK, "--lm-eval-include", str(tasks),
        "--seq-len", "4096", "-q", env=env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2 and "--seq-len 4096 exceeds the model's 256 positions" in (
        result.stderr
    )
    assert not (tmp_path / "run" / "eval").exists()


def test_results_flatten_to_task_metric_with_filters_and_stderr_apart():
    raw = {
        "results": {
            "gsm8k": {
                "alias": "gsm8k",
                "exact_match,strict-match": 0.25,
                "exact_match_stderr,strict-match": 0.1,
                "exact_match,flexible-extract": 0.5,
                "exact_match_stderr,flexible-extract": "N/A",
            },
            "arc_easy": {"acc,none": 0.4, "acc_stderr,none": 0.02, "sample_len": 100},
        }
    }
    scores, errors = flatten_results(raw)
    assert scores == {
        "gsm8k": {"exact_match/strict-match": 0.25, "exact_match/flexible-extract": 0.5},
        "arc_easy": {"acc": 0.4},
    }
    assert errors == {"gsm8k": {"exact_match/strict-match": 0.1}, "arc_easy": {"acc": 0.02}}
    assert metric_records(scores)["lm_eval/gsm8k/exact_match/strict-match"] == 0.25


@pytest.mark.slow
def test_few_shot_scores_equal_the_lm_eval_cli_on_the_same_checkpoint(tmp_path):
    """The real ``lm_eval`` command (HFLM, default seeds) and ``synthlm eval --lm-eval`` on one
    random checkpoint, 3-shot. The metric is a perplexity over each answer, so any other few-shot
    draw changes it; synthlm drew its shots with seed 0 where the harness uses 1234."""
    pytest.importorskip("lm_eval")
    import subprocess
    import sys

    from tiny_lm import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "run" / "final", seed=3)
    rows = [{"q": f"Item {i} of the list", "a": f" value {i * 7 % 10}"} for i in range(12)]
    data = tmp_path / "ll.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "tiny_ll.yaml").write_text(
        f"task: tiny_ll\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\nfewshot_split: test\noutput_type: loglikelihood\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\nmetric_list:\n  - metric: perplexity\n"
        "    aggregation: perplexity\n    higher_is_better: false\n",
        encoding="utf-8",
    )
    harness = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={ckpt},dtype=float32",
         "--tasks", "tiny_ll", "--include_path", str(tasks), "--num_fewshot", "3",
         "--device", "cpu", "--batch_size", "4", "--output_path", str(tmp_path / "harness")],
        capture_output=True, text=True, env={**os.environ, **env(tmp_path), "HF_HUB_OFFLINE": "1",
                                             "HF_DATASETS_OFFLINE": "1"},
        check=False, timeout=600,
    )  # fmt: skip
    assert harness.returncode == 0, harness.stderr[-3000:]
    [results] = list((tmp_path / "harness").rglob("results_*.json"))
    theirs = json.loads(results.read_text())["results"]["tiny_ll"]["perplexity,none"]
    ours_run = run_cli(
        "eval", str(ckpt), "--lm-eval", "tiny_ll", "--lm-eval-include", str(tasks),
        "--num-fewshot", "3", "-b", "4", "-q", env=env(tmp_path),
    )  # fmt: skip
    assert ours_run.returncode == 0, ours_run.stderr
    ours = json.loads((tmp_path / "run" / "eval" / "lm_eval.json").read_text())
    assert ours["tiny_ll"]["perplexity"] == pytest.approx(theirs, rel=1e-6)
    details = json.loads((tmp_path / "run" / "eval" / "harness" / "lm_eval.json").read_text())
    assert details["seeds"] == {"python": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}
    assert (details["max_length"], details["truncated_requests"]) == (256, 0)
