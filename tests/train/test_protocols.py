"""The seams of a run plan satisfy the declared protocols (synthlm.protocols)."""

from __future__ import annotations

from train_helpers import tiny_config

from synthlm.protocols import HFTokenizer, Tokenizer, TrainObjective, TrainStream
from synthlm.train.config import load_run_config
from synthlm.train.planners import plan_run


def test_a_pretraining_plan_joins_a_stream_an_objective_and_a_tokenizer(tmp_path, data):
    plan = plan_run(load_run_config([tiny_config(tmp_path, data)]), 1)
    assert isinstance(plan.mixture, TrainStream) and plan.mixture.source_names == ["web", "cyclic"]
    assert isinstance(plan.objective, TrainObjective) and isinstance(plan.tokenizer, Tokenizer)
    assert not isinstance(plan.tokenizer, HFTokenizer)  # the two kinds are told apart


def test_a_saved_synthlm_tokenizer_loads_as_the_other_kind(data):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(data["tok"]))
    assert isinstance(hf, HFTokenizer) and not isinstance(hf, Tokenizer)
