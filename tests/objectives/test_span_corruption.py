"""The span_corruption objective: batches from packed windows, the loss, and a tiny T5 that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from t5_helpers import bpe_tokenizer, tiny_t5, train_steps, windows

from synthlm.errors import ConfigError, UserError
from synthlm.objectives.base import IGNORE_INDEX, get_objective
from synthlm.objectives.span_corruption import SpanCorruption, summarize_metrics
from synthlm.text.special_tokens import add_t5_special_tokens

SEQ_LEN = 64


@pytest.fixture(scope="module")
def tokenizer():
    tok = bpe_tokenizer()
    add_t5_special_tokens(tok)
    return tok


@pytest.fixture(scope="module")
def objective(tokenizer) -> SpanCorruption:
    return SpanCorruption(tokenizer=tokenizer)


def batch_for(objective: SpanCorruption, tokenizer, count: int = 4, **kwargs) -> tuple[dict, list]:
    raw = objective.window_length(SEQ_LEN)
    samples = windows(tokenizer, raw, count, **kwargs)
    return objective.collate(samples), samples


def test_registered_and_built_from_options(tokenizer) -> None:
    objective = get_objective(
        "span_corruption", tokenizer=tokenizer, noise_density=0.3, mean_noise_span_length=2
    )
    assert isinstance(objective, SpanCorruption)
    assert objective.config.noise_density == 0.3


def test_inputs_come_out_at_exactly_input_length(objective: SpanCorruption, tokenizer) -> None:
    batch, samples = batch_for(objective, tokenizer)
    raw = len(samples[0].input_ids)
    assert raw == 70  # 64 inputs at density 0.15, span 3
    assert batch["input_ids"].shape == (4, SEQ_LEN)
    assert batch["labels"].shape == (4, objective.target_length(SEQ_LEN))
    assert bool(batch["attention_mask"].all()), (
        "no padding needed: every input is exactly 64 tokens"
    )
    assert (batch["input_ids"][:, -1] == objective.eos_id).all()
    assert (batch["labels"][:, -1] == objective.eos_id).all()


def test_inputs_and_labels_rebuild_the_window(objective: SpanCorruption, tokenizer) -> None:
    """Sentinels in order from <extra_id_0>; each target sentinel is followed by what it hides."""
    batch, samples = batch_for(objective, tokenizer)
    sentinels = set(objective.sentinel_ids.tolist())
    for row, sample in enumerate(samples):
        inputs = batch["input_ids"][row].tolist()[:-1]
        labels = batch["labels"][row].tolist()[:-1]
        used = [t for t in inputs if t in sentinels]
        assert used == objective.sentinel_ids[: len(used)].tolist()
        assert [t for t in labels if t in sentinels] == used
        hidden, current = {}, None
        for t in labels:
            if t in sentinels:
                current = t
                hidden[t] = []
            else:
                hidden[current].append(t)
        rebuilt = [x for t in inputs for x in (hidden[t] if t in sentinels else [t])]
        assert rebuilt == sample.input_ids.tolist()


def test_decoder_inputs_are_labels_shifted_right_from_pad(
    objective: SpanCorruption, tokenizer
) -> None:
    batch, _ = batch_for(objective, tokenizer)
    assert (batch["decoder_input_ids"][:, 0] == objective.pad_id).all()
    assert torch.equal(batch["decoder_input_ids"][:, 1:], batch["labels"][:, :-1])


def test_tokens_outside_the_loss_mask_are_not_targets(objective: SpanCorruption, tokenizer) -> None:
    raw = objective.window_length(SEQ_LEN)
    sample = windows(tokenizer, raw, 1)[0]
    sample.loss_mask[:] = 0
    batch = objective.collate([sample])
    labels = batch["labels"][0]
    trained = labels[labels != IGNORE_INDEX].tolist()
    sentinels = set(objective.sentinel_ids.tolist())
    assert trained and all(t in sentinels or t == objective.eos_id for t in trained)
    # the decoder still reads the real hidden tokens
    hidden = batch["decoder_input_ids"][0, 1:][labels[:-1] == IGNORE_INDEX]
    assert (hidden != objective.pad_id).all()


def test_batches_are_deterministic_per_window_and_seed(tokenizer) -> None:
    first = batch_for(SpanCorruption(tokenizer=tokenizer, seed=1), tokenizer)[0]
    again = batch_for(SpanCorruption(tokenizer=tokenizer, seed=1), tokenizer)[0]
    other = batch_for(SpanCorruption(tokenizer=tokenizer, seed=2), tokenizer)[0]
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert not torch.equal(first["input_ids"], other["input_ids"])


def test_loss_sum_matches_hf_t5_loss(objective: SpanCorruption, tokenizer) -> None:
    """Our summed loss / target count is exactly the cross-entropy HF T5 computes from labels."""
    batch, _ = batch_for(objective, tokenizer)
    model = tiny_t5(len(tokenizer), objective.pad_id, objective.eos_id).eval()
    with torch.no_grad():
        total, count = objective.loss_sum(model, batch)
        reference = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
        ).loss
    assert count.item() == (batch["labels"] != IGNORE_INDEX).sum().item()
    torch.testing.assert_close(total / count, reference)
    metrics = summarize_metrics(objective.last_metric_sums)
    assert metrics["reconstruction_tokens"] == count.item()
    assert metrics["reconstruction_loss"] == pytest.approx((total / count).item(), rel=1e-5)


@pytest.mark.slow
def test_tiny_t5_learns(objective: SpanCorruption, tokenizer) -> None:
    batch, _ = batch_for(objective, tokenizer, count=8)
    model = tiny_t5(len(tokenizer), objective.pad_id, objective.eos_id)
    losses = train_steps(objective, model, batch, steps=10, lr=1e-2)
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 1.5
    assert objective.metrics(model.eval(), batch)["reconstruction_accuracy"] > 0.05


def test_unknown_option_names_the_key(tokenizer) -> None:
    with pytest.raises(ConfigError, match="noise_densty"):
        SpanCorruption(tokenizer=tokenizer, noise_densty=0.3)


def test_tokenizer_without_sentinels_is_refused() -> None:
    with pytest.raises(UserError, match="extra_id_0"):
        SpanCorruption(tokenizer=bpe_tokenizer())


def test_input_length_needing_too_many_sentinels_is_refused(objective: SpanCorruption) -> None:
    with pytest.raises(ConfigError, match="num_sentinels"):
        objective.window_length(4096)
