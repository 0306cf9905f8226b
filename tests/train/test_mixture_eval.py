"""A natural + synthetic run evaluates on both kinds during training and logs per-source losses."""

from __future__ import annotations

import json
import math

import pytest
from train_helpers import read_records, tiny_config

from synthlm.synth import build_dataset, load_spec
from synthlm.train import load_run_config, run


@pytest.mark.slow
def test_natural_plus_synthetic_run_logs_source_losses_and_evaluations(tmp_path, data):
    spec = {
        "name": "copy",
        "num_tokens": 20000,
        "seed": 0,
        "domains": [
            {"type": "identity", "vocab": {"num_vocab": 30}, "length": {"min": 8, "max": 20}}
        ],
    }
    build_dataset(load_spec(spec), tmp_path / "synth", quiet=True)
    sources = [
        {"name": "web", "path": str(data["web"]), "weight": 0.5},
        {"name": "copy", "path": str(tmp_path / "synth"), "kind": "synthetic", "weight": 0.5},
    ]
    evals = [
        {"name": "web", "path": str(data["web"]), "max_tokens": 2000},
        {"name": "copy", "path": str(tmp_path / "synth"), "kind": "synthetic", "max_examples": 4},
    ]
    config = tiny_config(
        tmp_path,
        data,
        data={"sources": sources, "eval": evals},
        model={"num_meta_tokens": 32},
        train={"max_steps": 4, "eval_every": 2, "log_every": 2},
    )
    run(load_run_config([config]))

    records = read_records(tmp_path / "run")
    train = [r for r in records if "loss" in r]
    evals_logged = [r for r in records if "eval/web/loss" in r]
    assert [r["step"] for r in train] == [2, 4] and [r["step"] for r in evals_logged] == [2, 4]
    assert all(math.isfinite(r["loss/web"]) and math.isfinite(r["loss/copy"]) for r in train)
    last = evals_logged[-1]
    assert math.isclose(last["eval/web/ppl"], math.exp(last["eval/web/loss"]), rel_tol=1e-6)
    assert 0.0 <= last["eval/copy/acc"] <= 1.0 and math.isfinite(last["eval/copy/loss"])

    # By default the synthetic examples are masked from each other and the natural text is
    # packed GPT-style: the checkpoint records it, its natural text is scored plainly, and the
    # in-training number equals `synthlm eval` on the final model.
    from synthlm.evaluate.offline import evaluate_checkpoint

    final = tmp_path / "run" / "final"
    info = json.loads((final / "synthlm.json").read_text(encoding="utf-8"))
    assert info["masked_documents"] == ["synthetic"]
    web = [str(data["web"])]
    report, _ = evaluate_checkpoint(final, web, max_tokens=2000, device="cpu", quiet=True)
    assert report["natural_document_mask"] is False
    offline = report["metrics"]["eval/web/loss"]
    assert offline == pytest.approx(last["eval/web/loss"], rel=1e-5)
    masked, _ = evaluate_checkpoint(
        final, web, max_tokens=2000, device="cpu", quiet=True, document_mask=True
    )
    assert masked["metrics"]["eval/web/loss"] != pytest.approx(offline, rel=1e-6)  # 4 steps in
