"""Every registered objective keeps the loop's contract: ``num_targets`` (from the batch alone)
equals the count its loss reports, per-row loss sums add up to ``loss_sum`` (one forward pass),
and a decoder-only objective given ``document_mask`` keeps packed documents apart.

The objectives are read from the registry when the tests are collected (lazily registered
built-ins and installed plugins included), so a new objective is checked without editing this
file; one that trains on something other than packed windows of text names its samples in
:func:`batch_and_model`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from synthlm.data.mixture import Sample
from synthlm.finetune.data import Pair
from synthlm.objectives import BUILTIN, OBJECTIVES
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


ALL = OBJECTIVES.names()  # at collection: every built-in (lazy ones too) and every plugin
DECODER_ONLY = [name for name in ALL if not OBJECTIVES[name].seq2seq]
OPTIONS = {"depth": {"max_sentences": 4, "splitter": "rules"}}  # fit the tiny windows
WITH_METRICS = ("span_corruption", "depth")  # built-ins with per-group metric sums


def llama(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        )
    ).eval()


def batch_and_model(name: str, tokenizer):
    """(objective, a tiny model of its kind, a collated batch) for any registered objective."""
    if name == "text_to_text":  # fine-tuning pairs, not packed windows
        objective, tok = OBJECTIVES[name].create(tokenizer)
        pairs = [
            Pair(np.array([40, 41, 42, 2]), np.array([50, 2]), 0),
            Pair(np.array([40, 2]), np.array([51, 52, 53, 2]), 1, source=1),
        ]
        return objective, t5(320), objective.collate(pairs)
    objective, tok = OBJECTIVES[name].create(tokenizer, **OPTIONS.get(name, {}))
    if objective.seq2seq:
        raw = objective.window_length(48)
        return objective, t5(512), objective.collate(text_samples(tok, raw))
    return objective, llama(320), objective.collate(text_samples(tok, 24))


@pytest.mark.parametrize("name", ALL)
def test_counts_before_the_forward_equal_the_loss_counts_and_rows_add_up(name, tokenizer):
    objective, model, batch = batch_and_model(name, tokenizer)
    loss, targets = objective.loss_sum(model, batch)
    assert objective.num_targets(batch) == int(targets) > 0
    rows = objective.row_loss_sums(model, batch)
    if rows is not None:  # optional for a new objective; then no per-source losses are logged
        assert rows[0].shape == (batch["input_ids"].shape[0],)
        assert int(rows[1].sum()) == int(targets)
        torch.testing.assert_close(rows[0].sum(), loss)
    assert rows is not None or name not in BUILTIN
    assert isinstance(objective, TrainObjective)
    out = objective.forward(model, batch)  # what the loop calls: one forward pass
    torch.testing.assert_close(out.loss, loss)
    assert int(out.targets) == int(targets) and (out.rows is None) == (rows is None)
    assert all(k.endswith(("_loss_sum", "_correct", "_tokens")) for k in out.metric_sums)
    assert name not in BUILTIN or bool(out.metric_sums) == (name in WITH_METRICS)


def two_documents(tokenizer) -> tuple[Sample, list[Sample]]:
    """One window packing documents of 10 and 14 tokens, and each document alone, padded."""
    ids = np.asarray(tokenizer.encode("The king is dead. Long live the king! " * 2), np.int64)
    first, second = ids[:10], ids[10:24]
    packed = Sample(
        ids[:24], np.ones(24, np.uint8), np.repeat(np.array([0, 1], np.int32), [10, 14]), 0
    )
    alone = []
    for doc in (first, second):
        pad = 24 - len(doc)
        tokens = np.concatenate([doc, np.full(pad, tokenizer.pad_id, np.int64)])
        mask = np.concatenate([np.ones(len(doc), np.uint8), np.zeros(pad, np.uint8)])
        segments = np.concatenate([np.zeros(len(doc), np.int32), np.full(pad, -1, np.int32)])
        alone.append(Sample(tokens, mask, segments, 0))
    return packed, alone


@pytest.mark.parametrize("name", DECODER_ONLY)
def test_document_mask_keeps_packed_documents_apart(name, tokenizer):
    """What the planner passes whenever a source is synthetic: with it, a window of two
    documents costs what the two cost one by one; without it, the second sees the first."""
    packed, alone = two_documents(tokenizer)
    model = llama(320)
    with torch.no_grad():
        for document_mask in (True, False):
            objective, _ = OBJECTIVES[name].create(tokenizer, document_mask=document_mask)
            together = objective.forward(model, objective.collate([packed]))
            apart = objective.forward(model, objective.collate(alone))
            same = torch.allclose(together.loss, apart.loss, rtol=1e-5, atol=1e-5)
            assert same == document_mask, (document_mask, together.loss, apart.loss)
            if document_mask:  # the second document's first token has no context to predict it
                assert int(together.targets) == int(apart.targets) == 9 + 13


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
