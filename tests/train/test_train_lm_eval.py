"""train.lm_eval: lm-evaluation-harness tasks during training, logged as lm_eval/<task>/<metric>.

Invariants: the score logged at the last step is the score ``synthlm eval --lm-eval`` gives the
final model (same harness, same requests); evaluating does not change the run (losses and
weights equal a run without it, so exact resume still holds); a bad task stops the run before
any work; the report draws the logged scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import final_weights, read_records, reproducible, tiny_config

from synthlm.errors import ConfigError, UserError
from synthlm.train import load_run_config, run

pytest.importorskip("lm_eval", reason="needs the eval extra: pip install 'synthlm[eval]'")

TASK = "tiny_letters"


def write_task(root: Path) -> Path:
    """A 6-question multiple-choice task (local jsonl + task YAML), read offline by the harness."""
    rows = [
        {"question": f"{a}{b}{a}{b}{a}", "choices": [b, a, "q"], "answer": 0}
        for a, b in ("ab", "cd", "ef", "gh", "ij", "kl")
    ]
    data = root / "letters.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tasks = root / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / f"{TASK}.yaml").write_text(
        f"task: {TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: "
        f"{data}\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: '{{answer}}'\ntarget_delimiter: ''\nmetric_list:\n  - metric: acc\n "
        " - metric: acc_norm\n",
        encoding="utf-8",
    )
    return tasks


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """The json builder's cache in the test's own folder, not the user's HF cache."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def config(root: Path, data, **train):
    return load_run_config(
        [
            tiny_config(
                root, data, train={"max_steps": 4, "log_every": 2, "checkpoint_every": 0, **train}
            )
        ]
    )


@pytest.mark.slow
def test_logged_scores_match_offline_eval_and_leave_training_unchanged(tmp_path, data):
    from synthlm.evaluate.lm_eval_bridge import evaluate_checkpoint_lm_eval
    from synthlm.report import build_report

    tasks = write_task(tmp_path)
    lm_eval = {"tasks": [TASK], "include": str(tasks), "every": 2}
    with_eval = run(config(tmp_path / "a", data, lm_eval=lm_eval), progress=False)
    plain = run(config(tmp_path / "b", data), progress=False)

    records = read_records(with_eval)
    logged = [r for r in records if f"lm_eval/{TASK}/acc" in r]
    assert [r["step"] for r in logged] == [2, 4]
    scores, _ = evaluate_checkpoint_lm_eval(
        with_eval / "final", [TASK], include=[tasks], batch_size=4, quiet=True
    )
    assert logged[-1][f"lm_eval/{TASK}/acc"] == scores[TASK]["acc"]
    assert logged[-1][f"lm_eval/{TASK}/acc_norm"] == scores[TASK]["acc_norm"]

    train_records = [r for r in records if "loss" in r]
    assert reproducible(train_records) == reproducible(
        [r for r in read_records(plain) if "loss" in r]
    )
    a, b = final_weights(with_eval), final_weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)

    report = build_report([with_eval], tmp_path / "report")
    assert "lm_eval.png" in {p.name for p in report.figures}
    assert f"lm_eval/{TASK}/acc" in report.page.read_text(encoding="utf-8")


def test_unknown_task_stops_the_run_before_any_work(tmp_path, data):
    tasks = write_task(tmp_path)
    cfg = config(tmp_path, data, lm_eval={"tasks": ["tiny_leters"], "include": [str(tasks)]})
    with pytest.raises(
        UserError,
        match=r"train\.lm_eval\.tasks: unknown lm-eval task 'tiny_leters' \(did you mean "
        r"'tiny_letters'\?\)",
    ):
        run(cfg, progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_missing_include_dir_names_the_key(tmp_path, data):
    cfg = config(tmp_path, data, lm_eval={"tasks": [TASK], "include": str(tmp_path / "nowhere")})
    with pytest.raises(UserError, match=r"train\.lm_eval\.include .*nowhere: not a directory"):
        run(cfg, progress=False)


def test_config_section_accepts_a_comma_list_and_rejects_bad_values(tmp_path, data):
    section = config(
        tmp_path, data, lm_eval={"tasks": "hellaswag, arc_easy", "limit": 50}
    ).train.lm_eval
    assert section.tasks == ["hellaswag", "arc_easy"] and section.limit == 50 and section.every == 0
    with pytest.raises(ConfigError, match=r"train\.lm_eval\.limit: .*greater than 0"):
        config(tmp_path, data, lm_eval={"tasks": ["x"], "limit": 0})
    with pytest.raises(ConfigError, match=r"train\.lm_eval\.tasks: .*at least 1 item"):
        config(tmp_path, data, lm_eval={"tasks": []})
    with pytest.raises(
        ConfigError,
        match=r"train\.lm_eval\.fewshot: unknown key \(did you mean "
        r"'train\.lm_eval\.num_fewshot'\?\)",
    ):
        config(tmp_path, data, lm_eval={"tasks": ["x"], "fewshot": 2})


def test_a_context_past_the_models_positions_stops_the_run_before_any_work(tmp_path, data):
    tasks = write_task(tmp_path)
    lm_eval = {"tasks": [TASK], "include": str(tasks), "max_length": 1_000_000}
    with pytest.raises(
        ConfigError, match=r"train\.lm_eval\.max_length=1000000 exceeds the model's \d+ positions"
    ):
        run(config(tmp_path, data, lm_eval=lm_eval), progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
