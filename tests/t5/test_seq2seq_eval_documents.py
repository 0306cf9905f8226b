"""Which held-out documents an encoder-decoder run is scored on.

With ``data.packing: false`` (the DEPTH paper's one document per example) evaluation reads one
document per row, as training does; ``max_documents`` stops at the first N documents of the
store, as the DEPTH code's ``validation_set.take(20_000)``. What is checked: documents past the
first N change nothing, and the first N scored from a larger store give what a store of only
those N gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from t5_run_helpers import pt_config

from synthlm.data.mixture import EvalSetConfig
from synthlm.data.store import TokenStore, write_store
from synthlm.train import load_run_config
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run
from synthlm.train.seq2seq_eval import objective_metrics

OBJECTIVES = {
    "depth_paper": (
        {"name": "depth", "max_sentences": 6, "splitter": "rules", "construction": "paper"},
        {"seq_len": 128, "packing": False},
    ),
    "span_corruption": ({"name": "span_corruption"}, {}),
}
FIRST = 6  # documents scored


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_only_the_first_documents_are_scored(name, tmp_path, t5_data):
    objective, data = OBJECTIVES[name]
    config = load_run_config([pt_config(tmp_path, t5_data, objective, data=data)])
    trainer = Trainer(plan_run(config, 1), progress=False)
    valid = TokenStore(t5_data["valid"])
    docs = [np.asarray(valid.document(i)) for i in range(len(valid))]
    rng = np.random.default_rng(0)
    other = [rng.permutation(d) for d in docs[FIRST:]]  # the rest replaced by other text
    stores = {
        "same": write_store(tmp_path / "same", docs, valid.vocab_size),
        "other_rest": write_store(tmp_path / "other", docs[:FIRST] + other, valid.vocab_size),
        "only_first": write_store(tmp_path / "first", docs[:FIRST], valid.vocab_size),
    }

    def score(store, max_documents):
        eval_set = EvalSetConfig(
            name="v", path=store.prefix, max_tokens=10**6, max_documents=max_documents
        )
        with torch.no_grad():
            return objective_metrics(
                trainer.plan, trainer.plan.objective, trainer.model, eval_set, "cpu", 4
            )

    first = score(stores["same"], FIRST)
    assert first == score(stores["other_rest"], FIRST)
    assert first == score(stores["only_first"], None)
    assert first != score(stores["same"], None)  # the limit is what kept the rest out
    if not config.data.packing:  # one example per document, its targets padded to full length
        assert first["tokens"] == FIRST * trainer.plan.objective.target_length(config.data.seq_len)
