"""A tiny T5 pretrains on CPU through the real `synthlm train` command with each objective:
the loss goes down, evaluation reports the objective's metrics, and RUN/final is a plain HF
seq2seq model whose tokenizer holds the sentinels (and DEPTH's sentence tokens)."""

from __future__ import annotations

import json

import pytest
from t5_run_helpers import pt_config, read_records, synthlm, write_config

pytestmark = pytest.mark.slow

OBJECTIVES = {
    "span_corruption": ({"name": "span_corruption"}, {}),
    "depth": (
        {"name": "depth", "max_sentences": 6, "splitter": "rules"},
        {"data": {"seq_len": 128}},
    ),
    "depth_paper": (  # the DEPTH code's examples: one document (speech) per sample
        {"name": "depth", "max_sentences": 6, "splitter": "rules", "construction": "paper"},
        {"data": {"seq_len": 128, "packing": False}},
    ),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_tiny_t5_trains_with_each_objective_and_exports_a_seq2seq_model(name, tmp_path, t5_data):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    objective, extra = OBJECTIVES[name]
    config = write_config(tmp_path / "run.yaml", pt_config(tmp_path, t5_data, objective, **extra))
    done = synthlm("train", str(config), "--quiet")
    assert done.returncode == 0, done.stderr
    rows = read_records(tmp_path / "run")
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0], losses
    assert all(
        0 <= r["reconstruction_accuracy"] <= 1 for r in rows if "loss" in r
    )  # token-group metrics logged
    if name.startswith("depth"):
        assert all(r["sentence_loss"] > 0 for r in rows if "loss" in r)
    final_eval = [r for r in rows if "eval/valid/loss" in r][-1]
    assert final_eval["step"] == 24 and final_eval["eval/valid/reconstruction_tokens"] > 0
    assert 0 <= final_eval["eval/valid/reconstruction_accuracy"] <= 1
    if name.startswith("depth"):
        assert final_eval["eval/valid/sentence_tokens"] > 0

    final = tmp_path / "run" / "final"
    model = AutoModelForSeq2SeqLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert type(model).__name__ == "T5ForConditionalGeneration"
    assert json.loads((final / "config.json").read_text())["tie_word_embeddings"] is False
    assert model.lm_head.weight is not model.shared.weight  # T5 v1.1: its own output layer
    assert (
        model.config.decoder_start_token_id == tokenizer.pad_token_id == model.config.pad_token_id
    )
    assert model.config.eos_token_id == tokenizer.eos_token_id
    sentinels = tokenizer.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_99>"])
    assert all(i is not None and i >= 260 for i in sentinels)  # beyond the 260 byte-tokenizer ids
    assert (
        model.get_input_embeddings().num_embeddings % 8 == 0
        and model.get_input_embeddings().num_embeddings >= len(tokenizer)
    )
    if name.startswith("depth"):  # <eosen> + 6 sentence tokens follow the 100 sentinels
        assert len(tokenizer) >= 260 + 100 + 7
    inputs = tokenizer("First Citizen: <extra_id_0> proceed", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4)
    assert out.shape[0] == 1 and out[0, 0].item() == model.config.decoder_start_token_id


def test_objective_and_architecture_must_agree(tmp_path, t5_data):
    config = pt_config(tmp_path, t5_data, {"name": "span_corruption"})
    config["model"] = {"arch": "llama", "preset": "tiny"}
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert done.returncode == 2
    assert (
        "objective.name=span_corruption trains an encoder-decoder model, but "
        "model.arch=llama is not one; set model.arch to one of: t5" in done.stderr
    )


def test_loss_all_is_refused_with_a_seq2seq_objective(tmp_path, t5_data):
    """Span corruption builds its own targets: a source's ``loss: all`` would be ignored."""
    config = pt_config(tmp_path, t5_data, {"name": "span_corruption"})
    config["data"]["sources"][0]["loss"] = "all"
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "loss: all trains on every token with a decoder-only objective" in done.stderr


def test_depth_paper_construction_refuses_packed_windows_before_training(tmp_path, t5_data):
    """One document per example is what the paper builds; packed windows are refused up front."""
    objective = {"name": "depth", "max_sentences": 6, "splitter": "rules", "construction": "paper"}
    config = pt_config(tmp_path, t5_data, objective, data={"seq_len": 128})
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert done.returncode == 2
    assert "objective.construction=paper builds one document per example" in done.stderr
    assert "set data.packing: false" in done.stderr
