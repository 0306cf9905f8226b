"""Every objective keeps the loop's contract: ``num_targets`` (from the batch alone) equals the
count its loss reports, and per-row loss sums add up to ``loss_sum`` (one forward pass)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from synthlm.data.mixture import Sample
from synthlm.finetune.data import Pair
from synthlm.objectives import OBJECTIVES
from synthlm.protocols import TrainObjective
from synthlm.tokenizers import load_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    train_tokenizer([], "byte", None, directory, quiet=True)
    return load_tokenizer(directory)


def text_samples(tokenizer, length: int, count: int = 3) -> list[Sample]:
    text = "The king is dead. Long live the king! Who goes there? A friend, sir. " * 20
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        mask = (rng.random(length) < 0.7).astype(np.uint8)
        segments = (np.arange(length) >= length // 2).astype(np.int32)
        out.append(Sample(ids[i * 7 : i * 7 + length], mask, segments, i % 2))
    return out


def t5(vocab: int) -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    return T5ForConditionalGeneration(
        T5Config(
            vocab_size=vocab,
            d_model=16,
            d_ff=32,
            d_kv=8,
            num_heads=2,
            num_layers=1,
            dropout_rate=0.0,
            pad_token_id=3,
            eos_token_id=2,
            decoder_start_token_id=3,
        )
    )


def batch_and_model(name: str, tokenizer):
    if name in ("clm", "sft"):
        objective, _ = OBJECTIVES[name].create(tokenizer)
        torch.manual_seed(0)
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=320,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
            )
        )
        return objective, model, objective.collate(text_samples(tokenizer, 24))
    if name == "text_to_text":
        objective, tok = OBJECTIVES[name].create(tokenizer)
        pairs = [
            Pair(np.array([40, 41, 42, 2]), np.array([50, 2]), 0),
            Pair(np.array([40, 2]), np.array([51, 52, 53, 2]), 1, source=1),
        ]
        return objective, t5(320), objective.collate(pairs)
    options = {"max_sentences": 4, "splitter": "rules"} if name == "depth" else {}
    objective, tok = OBJECTIVES[name].create(tokenizer, **options)
    raw = objective.window_length(48)
    return objective, t5(512), objective.collate(text_samples(tok, raw))


@pytest.mark.parametrize("name", ["clm", "sft", "span_corruption", "depth", "text_to_text"])
def test_counts_before_the_forward_equal_the_loss_counts_and_rows_add_up(name, tokenizer):
    objective, model, batch = batch_and_model(name, tokenizer)
    loss, targets = objective.loss_sum(model, batch)
    rows = objective.row_loss_sums(model, batch)
    assert rows is not None and rows[0].shape == (batch["input_ids"].shape[0],)
    assert objective.num_targets(batch) == int(targets) == int(rows[1].sum()) > 0
    torch.testing.assert_close(rows[0].sum(), loss)
    assert isinstance(objective, TrainObjective)
    out = objective.forward(model, batch)  # what the loop calls: one forward pass
    torch.testing.assert_close(out.loss, loss)
    assert int(out.targets) == int(targets) and out.rows is not None
    assert bool(out.metric_sums) == (name in ("span_corruption", "depth")) and all(
        k.endswith(("_loss_sum", "_correct", "_tokens")) for k in out.metric_sums
    )


def test_encoder_decoder_objectives_extend_the_tokenizer_and_name_decoder_start(tokenizer):
    objective, extended = OBJECTIVES["depth"].create(tokenizer, max_sentences=4)
    assert (
        extended.vocab_size >= tokenizer.vocab_size + 100 + 5
    )  # sentinels, <eosen>, 4 sentence ids
    assert objective.seq2seq and not OBJECTIVES["clm"].seq2seq
    assert objective.model_config_overrides() == {
        "pad_token_id": extended.pad_id,
        "eos_token_id": extended.eos_id,
        "decoder_start_token_id": extended.pad_id,
    }
