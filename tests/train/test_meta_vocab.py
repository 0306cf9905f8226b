"""Synthetic-only runs need no natural tokenizer: four special ids, then the meta range."""

from __future__ import annotations

from synthlm.tokenizers import load_tokenizer
from synthlm.train import load_run_config, run
from synthlm.train.planners import plan_run

SPEC = {
    "name": "s",
    "num_tokens": 4000,
    "seed": 0,
    "domains": [{"type": "copy", "vocab": {"num_vocab": 8}, "length": {"min": 2, "max": 4}}],
}


def config(tmp_path, **data):
    return load_run_config(
        [
            {
                "run_dir": str(tmp_path / "run"),
                "model": {"arch": "llama", "preset": "tiny", "num_meta_tokens": 16},
                "data": {
                    "seq_len": 16,
                    "sources": [{"name": "copy", "kind": "synthetic", "spec": SPEC}],
                    **data,
                },
                "train": {"max_steps": 2, "batch_size": 2, "checkpoint_every": 0},
                "logging": {"tensorboard": False, "progress": False},
            }
        ]
    )


def test_synthetic_only_run_uses_the_meta_vocabulary_and_saves_it(tmp_path):
    plan = plan_run(config(tmp_path), 1)
    assert plan.layout.to_dict() == {
        "natural_size": 4,
        "meta_offset": 4,
        "meta_size": 16,
        "model_vocab_size": 64,
    }
    assert plan.summary()["tokenizer"] == "meta"  # what --dry-run shows for data.tokenizer: null
    final = run(config(tmp_path)) / "final"
    saved = load_tokenizer(final)
    assert saved.vocab_size == 4 and saved.eos_id == plan.tokenizer.eos_id


def test_meta_can_be_asked_for_by_name(tmp_path):
    plan = plan_run(config(tmp_path, tokenizer="meta"), 1)
    assert plan.layout.natural_size == 4 and "tokenizer" not in plan.summary()  # config says it
