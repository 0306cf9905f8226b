"""model.init_from must match the run's tokenizer and id layout; a resume must not silently
rebuild the learning-rate schedule for a new step budget."""

from __future__ import annotations

import json

import pytest
from train_helpers import tiny_config

from synthlm.data.store import write_store
from synthlm.errors import ConfigError, UserError
from synthlm.tokenizers import load_tokenizer, train_tokenizer
from synthlm.train import load_run_config, run
from synthlm.train.planners import plan_run


def train(tmp_path, data, *overrides: str, **sections):
    return run(load_run_config([tiny_config(tmp_path, data, **sections)], list(overrides)))


@pytest.fixture(scope="module")
def bpe_store(tmp_path_factory):
    """A store written with a BPE tokenizer (another natural vocabulary than the byte one)."""
    root = tmp_path_factory.mktemp("bpe")
    text = root / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 200, encoding="utf-8")
    train_tokenizer([text], "bpe", 300, root / "tok", quiet=True)
    tok = load_tokenizer(root / "tok")
    write_store(root / "web", [tok.encode("the lazy dog jumps")] * 50, vocab_size=tok.vocab_size)
    return root


def test_init_from_with_another_tokenizer_is_refused(tmp_path, data, bpe_store):
    final = train(tmp_path / "a", data, "train.max_steps=2") / "final"
    sources = [{"name": "web", "path": str(bpe_store / "web")}]
    config = load_run_config(
        [
            tiny_config(
                tmp_path / "b", data, data={"sources": sources, "tokenizer": str(bpe_store / "tok")}
            )
        ],
        [f"model.init_from={final}", "model.overrides={}", "model.preset=null"],
    )
    with pytest.raises(ConfigError, match="model.init_from: .*natural_size"):
        plan_run(config, 1)


def test_init_from_with_the_same_tokenizer_plans(tmp_path, data):
    final = train(tmp_path / "a", data, "train.max_steps=2") / "final"
    config = load_run_config(
        [tiny_config(tmp_path / "b", data)],
        [f"model.init_from={final}", "model.overrides={}", "model.preset=null"],
    )
    assert plan_run(config, 1).layout.natural_size == load_tokenizer(data["tok"]).vocab_size


def test_init_from_with_more_rows_than_the_layout_is_refused(tmp_path, data):
    config_a = [tiny_config(tmp_path / "a", data)]
    final = (
        run(load_run_config(config_a, ["train.max_steps=2", "model.num_meta_tokens=200"])) / "final"
    )
    overrides = [f"model.init_from={final}", "model.overrides={}", "model.preset=null"]
    config = load_run_config([tiny_config(tmp_path / "b", data)], overrides)
    # the message names the exact setting, read from the checkpoint's synthlm.json
    message = "embedding rows.*synthlm.json records 200 meta-language rows.*num_meta_tokens=200$"
    with pytest.raises(ConfigError, match=message):
        plan_run(config, 1)
    fixed = load_run_config(
        [tiny_config(tmp_path / "c", data)], [*overrides, "model.num_meta_tokens=200"]
    )
    assert plan_run(fixed, 1).layout.meta_size == 200


def test_init_from_rows_not_explained_by_meta_rows_gets_the_general_hint(tmp_path, data):
    final = train(tmp_path / "a", data, "train.max_steps=2", "model.num_meta_tokens=200") / "final"
    info = final / "synthlm.json"
    record = json.loads(info.read_text())
    del record["layout"]  # an older or foreign checkpoint: nothing says where the rows came from
    info.write_text(json.dumps(record))
    config = load_run_config(
        [tiny_config(tmp_path / "b", data)],
        [f"model.init_from={final}", "model.overrides={}", "model.preset=null"],
    )
    with pytest.raises(ConfigError, match="use the checkpoint's tokenizer and model.num_meta"):
        plan_run(config, 1)


def test_resuming_with_a_larger_budget_under_cosine_is_refused(tmp_path, data):
    train(tmp_path, data, "train.max_steps=4")
    with pytest.raises(UserError, match="budget of 4 steps, but this config gives 8.*would jump"):
        train(tmp_path, data, "train.max_steps=8")


def test_resuming_with_a_larger_budget_under_a_constant_schedule_continues(tmp_path, data):
    constant = {"name": "constant", "warmup_steps": 0}
    run_dir = train(tmp_path, data, "train.max_steps=4", schedule=constant)
    train(tmp_path, data, "train.max_steps=6", schedule=constant)
    assert (run_dir / "checkpoints" / "step-6").is_dir()


def test_objective_and_data_document_mask_that_contradict_are_refused(tmp_path, data):
    """objective.document_mask: true used to win over data.document_mask: false silently."""
    config = load_run_config(
        [tiny_config(tmp_path, data)],
        ["data.document_mask=false", "objective.document_mask=true"],
    )
    with pytest.raises(ConfigError, match="data.document_mask: false says none"):
        plan_run(config, 1)
