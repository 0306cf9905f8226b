"""Loader worker processes (`train.num_workers`) change where samples are built, never which:
the same config and seed log the same losses with 0 or 2 workers, for the objectives whose
collate draws random noise (span corruption) or shuffles sentences (DEPTH) as well as causal
LM. The GPU check trains DEPTH with 8 workers."""

from __future__ import annotations

import pytest
from t5_run_helpers import pt_config, read_records

OBJECTIVES = {
    "clm": ({"name": "clm"}, {}),
    "span_corruption": ({"name": "span_corruption"}, {}),
    "depth": (
        {"name": "depth", "max_sentences": 6, "splitter": "rules"},
        {"data": {"seq_len": 128}},
    ),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_worker_processes_give_the_same_losses_as_the_training_thread(name, tmp_path, t5_data):
    from synthlm.train import load_run_config, run

    objective, extra = OBJECTIVES[name]
    losses = {}
    for workers in (0, 2):
        root = tmp_path / f"workers-{workers}"
        config = pt_config(root, t5_data, objective, **extra)
        config["data"].pop("eval")
        if name == "clm":
            config["model"] = {"arch": "llama", "preset": "tiny"}
        config["train"].update(max_steps=5, log_every=1, checkpoint_every=0, num_workers=workers)
        run(load_run_config([config]), progress=False)
        losses[workers] = [r["loss"] for r in read_records(root / "run") if "loss" in r]
    assert len(losses[0]) == 5 and losses[2] == losses[0]
