"""The depth objective: examples that reconstruct the text, hierarchical masks, weighted loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from t5_helpers import bpe_tokenizer, tiny_t5, train_steps, windows

from synthlm.data.mixture import Sample
from synthlm.errors import ConfigError, UserError
from synthlm.objectives.base import IGNORE_INDEX
from synthlm.objectives.depth import Depth, hierarchical_masks
from synthlm.text.special_tokens import TextCodec, add_t5_special_tokens, with_t5_tokens
from synthlm.tokenizers import ByteTokenizer

SEQ_LEN = 96
MAX_SENTENCES = 8


@pytest.fixture(scope="module")
def tokenizer():
    tok = bpe_tokenizer()
    add_t5_special_tokens(tok, num_sentence_tokens=MAX_SENTENCES)
    return tok


def make(tokenizer, **options) -> Depth:
    return Depth(tokenizer=tokenizer, max_sentences=MAX_SENTENCES, **options)


def batch_for(objective: Depth, tokenizer, count: int = 6, **kwargs) -> tuple[dict, list[Sample]]:
    samples = windows(tokenizer, objective.window_length(SEQ_LEN), count, **kwargs)
    return objective.collate(samples), samples


def reconstruct(objective: Depth, input_ids: list[int], labels: list[int]) -> list[int]:
    """Undo DEPTH: order the input's sentence segments as the target lists them, then put each
    sentinel's hidden tokens back. Returns the text tokens of the original sentences, in order."""
    sentence_ids = set(objective.sentence_token_ids.tolist())
    sentinels = set(objective.sentinel_ids.tolist())
    specials = {objective.eosen_id, objective.eos_id, objective.pad_id}
    segments, current = {}, None
    for t in input_ids:
        if t in sentence_ids:
            current = t
            segments[t] = []
        elif t not in specials and current is not None:
            segments[current].append(t)
    order, hidden, key = [], {}, None
    for t in labels:
        if t == IGNORE_INDEX or t == objective.eos_id:
            continue
        if t in sentence_ids:
            order.append(t)
        elif t in sentinels:
            key = t
            hidden[t] = []
        else:
            hidden[key].append(t)
    return [x for s in order for t in segments[s] for x in (hidden[t] if t in sentinels else [t])]


def original_sentences(objective: Depth, sample: Sample) -> list[list[int]]:
    sentences = objective.sentences_of(sample.input_ids, sample.segment_ids, sample.source)
    return [s.tolist() for s in objective.fit(sentences, SEQ_LEN)]


@pytest.mark.parametrize("kind", ["bpe", "byte"])
def test_shuffled_input_and_target_reconstruct_the_text(kind: str, tokenizer) -> None:
    """With shuffling always on, the input order differs, yet input + target give back the text."""
    if kind == "byte":  # synthlm's own tokenizer: DEPTH tokens live on extra ids
        tok = with_t5_tokens(ByteTokenizer(), num_sentinels=100, num_sentence_tokens=MAX_SENTENCES)
    else:
        tok = tokenizer
    objective = make(tok, sentence_shuffling_probability=1.0)
    batch, samples = batch_for(objective, tok, docs_per_window=2)
    codec = TextCodec(tok)
    shuffled = 0
    for row, sample in enumerate(samples):
        sentences = original_sentences(objective, sample)
        labels = batch["labels"][row].tolist()
        rebuilt = reconstruct(objective, batch["input_ids"][row].tolist(), labels)
        assert rebuilt == [t for s in sentences for t in s]
        text = codec.decode(rebuilt)
        assert text == "".join(codec.decode(s) for s in sentences)
        window_text = "".join(codec.decode(sample.input_ids[sample.input_ids != objective.eos_id]))
        assert text[: len(text) // 2] in window_text  # the sentences are the window's own text
        input_order = [
            t
            for t in batch["input_ids"][row].tolist()
            if t in set(objective.sentence_token_ids.tolist())
        ]
        target_order = [t for t in labels if t in set(objective.sentence_token_ids.tolist())]
        assert sorted(input_order) == sorted(target_order)
        shuffled += input_order != target_order
    assert shuffled >= len(samples) - 1


def test_example_layout_and_lengths(tokenizer) -> None:
    objective = make(tokenizer, sentence_shuffling_probability=0.0, sentence_ids="ordered")
    batch, _ = batch_for(objective, tokenizer)
    assert batch["input_ids"].shape == (6, SEQ_LEN)
    assert batch["labels"].shape == (6, objective.target_length(SEQ_LEN))
    sent = objective.sentence_token_ids.tolist()
    for row in range(6):
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert ids[0] == objective.eosen_id and ids[-2:] == [objective.eosen_id, objective.eos_id]
        count = sum(t in sent for t in ids)
        assert 1 <= count <= MAX_SENTENCES
        # every sentence token follows an <eosen>; ordered ids are <sent_0>, <sent_1>, ...
        assert all(ids[i - 1] == objective.eosen_id for i, t in enumerate(ids) if t in sent)
        assert [t for t in ids if t in sent] == sent[:count]
        labels = [t for t in batch["labels"][row].tolist() if t != IGNORE_INDEX]
        assert labels[0] == sent[0] and labels[-1] == objective.eos_id
        assert objective.eosen_id not in labels, "special tokens are never masked"
        # label padding is IGNORE_INDEX (never a pad id that would count in the loss)
        padded = batch["labels"][row, len(labels) :]
        assert (padded == IGNORE_INDEX).all()
        assert (batch["decoder_input_ids"][row, len(labels) + 1 :] == objective.pad_id).all()


def test_sentence_ids_are_a_random_permutation_in_pretraining(tokenizer) -> None:
    objective = make(tokenizer, sentence_shuffling_probability=0.0)
    batch, _ = batch_for(objective, tokenizer)
    sent = set(objective.sentence_token_ids.tolist())
    firsts = {batch["labels"][row, 0].item() for row in range(6)}
    assert firsts <= sent and len(firsts) > 1
    for row in range(6):
        used = [t for t in batch["labels"][row].tolist() if t in sent]
        assert len(set(used)) == len(used)


def test_hierarchical_masks_on_a_hand_checked_example() -> None:
    """ids: 5 = <eosen>, 6/7 = sentence tokens, 1 = </s>, 0 = pad; text tokens >= 10."""
    #                          <e> <s7> a  b  <e> <s6> c  <e> </s> pad
    input_ids = torch.tensor([[5, 7, 10, 11, 5, 6, 12, 5, 1, 0]])
    owner = torch.tensor([[-1, 1, 1, 1, 1, 0, 0, 0, -1, -1]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 1, 0]])
    #                          start <s6> x  <s7>  y
    decoder_ids = torch.tensor([[0, 6, 20, 7, 21]])
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "encoder_sentence": owner,
        "decoder_input_ids": decoder_ids,
    }
    encoder, decoder, cross = (
        m[0, 0] for m in hierarchical_masks(batch, lambda t: (t == 6) | (t == 7))
    )
    # <s7> at 1 sees its own segment (positions 1-4) only; <s6> at 5 sees 5-7
    assert encoder[1].nonzero().flatten().tolist() == [1, 2, 3, 4]
    assert encoder[5].nonzero().flatten().tolist() == [5, 6, 7]
    # other tokens see every non-pad token
    assert encoder[2].nonzero().flatten().tolist() == list(range(9))
    assert not encoder[:, 9].any()
    # decoder: causal; the sentence tokens at 1 and 3 see sentence tokens only
    assert decoder[1].nonzero().flatten().tolist() == [1]
    assert decoder[3].nonzero().flatten().tolist() == [1, 3]
    assert decoder[4].nonzero().flatten().tolist() == [0, 1, 2, 3, 4]
    assert not decoder.triu(1).any()
    # cross: decoder sentence tokens see encoder sentence tokens only; others all non-pad
    assert cross[1].nonzero().flatten().tolist() == [1, 5]
    assert cross[3].nonzero().flatten().tolist() == [1, 5]
    assert cross[2].nonzero().flatten().tolist() == list(range(9))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_masks_reach_hf_t5(attn: str, tokenizer) -> None:
    """End to end through T5: sentence positions ignore exactly what the masks hide."""
    objective = make(tokenizer)
    batch, _ = batch_for(objective, tokenizer, count=2)
    model = tiny_t5(len(tokenizer), objective.pad_id, objective.eos_id, layers=1, attn=attn).eval()
    sent_dec = objective.is_sentence_token(batch["decoder_input_ids"])

    def logits(b: dict) -> torch.Tensor:
        with torch.no_grad():
            return objective.forward_logits(model, b)

    base = logits(batch)
    # 1) the leading <eosen> belongs to no sentence: with one encoder layer, encoder sentence
    #    tokens never see it, so decoder sentence positions (cross mask) cannot change.
    changed = {**batch, "input_ids": batch["input_ids"].clone()}
    changed["input_ids"][:, 0] = 42
    after = logits(changed)
    assert torch.allclose(after[sent_dec], base[sent_dec], atol=1e-5)
    assert not torch.allclose(after[~sent_dec], base[~sent_dec], atol=1e-3)
    # 2) a text token in the decoder input is invisible to later decoder sentence positions.
    first_sentence = sent_dec[0].nonzero().flatten()
    position = int(first_sentence[0]) + 1
    changed = {**batch, "decoder_input_ids": batch["decoder_input_ids"].clone()}
    changed["decoder_input_ids"][0, position] = 42
    after = logits(changed)
    later = torch.zeros_like(sent_dec)
    later[0, position:] = True
    assert torch.allclose(after[later & sent_dec], base[later & sent_dec], atol=1e-5)
    assert not torch.allclose(after[later & ~sent_dec], base[later & ~sent_dec], atol=1e-3)
    # 3) without hierarchical attention the same change does reach the sentence positions
    flat = make(tokenizer, hierarchical_attention=False)
    with torch.no_grad():
        plain_before = flat.forward_logits(model, batch)
        plain_after = flat.forward_logits(model, changed)
    assert not torch.allclose(
        plain_after[later & sent_dec], plain_before[later & sent_dec], atol=1e-3
    )


def test_sentence_loss_coefficient_weights_sentence_tokens(tokenizer) -> None:
    """loss_sum = reconstruction sum + coefficient * sentence sum; the count stays the same."""
    batch, _ = batch_for(make(tokenizer), tokenizer)
    model = tiny_t5(len(tokenizer), 0, 1).eval()  # ids do not matter for the loss value
    results = {}
    for coefficient in (0.0, 1.0, 2.5):
        objective = make(tokenizer, sentence_loss_coefficient=coefficient)
        with torch.no_grad():
            total, count = objective.loss_sum(model, batch)
        results[coefficient] = (total.item(), count.item(), dict(objective.last_metric_sums))
    sums = results[1.0][2]
    reconstruction, sentence = (
        sums["reconstruction_loss_sum"].item(),
        sums["sentence_loss_sum"].item(),
    )
    assert sentence > 0 and reconstruction > 0
    for coefficient, (total, count, _) in results.items():
        assert total == pytest.approx(reconstruction + coefficient * sentence, rel=1e-5)
        assert count == (batch["labels"] != IGNORE_INDEX).sum().item()
    assert (
        sums["sentence_tokens"].item() == objective.is_sentence_token(batch["labels"]).sum().item()
    )


def test_coefficient_zero_gives_sentence_tokens_no_gradient(tokenizer) -> None:
    objective = make(tokenizer, sentence_loss_coefficient=0.0)
    batch, _ = batch_for(objective, tokenizer, count=2)
    model = tiny_t5(len(tokenizer), objective.pad_id, objective.eos_id).eval()
    # only sentence-token targets left: with weight 0 nothing flows back
    only_sentences = {
        **batch,
        "labels": torch.where(
            objective.is_sentence_token(batch["labels"]), batch["labels"], IGNORE_INDEX
        ),
    }
    total, _ = objective.loss_sum(model, only_sentences)
    total.backward()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


@pytest.mark.slow
def test_tiny_t5_learns_and_reports_metrics(tokenizer) -> None:
    objective = make(tokenizer)
    batch, _ = batch_for(objective, tokenizer, count=8)
    model = tiny_t5(len(tokenizer), objective.pad_id, objective.eos_id)
    losses = train_steps(objective, model, batch, steps=10, lr=1e-2)
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 1.5
    metrics = objective.metrics(model.eval(), batch)
    assert set(metrics) == {
        f"{group}_{what}"
        for group in ("sentence", "reconstruction")
        for what in ("loss", "accuracy", "tokens")
    }
    assert 0.0 <= metrics["sentence_accuracy"] <= 1.0 and metrics["reconstruction_accuracy"] > 0.05


def test_synthetic_ids_are_refused(tokenizer) -> None:
    objective = make(tokenizer)
    raw = objective.window_length(SEQ_LEN)
    sample = Sample(
        np.full(raw, 50_000, dtype=np.int64), np.ones(raw, np.uint8), np.zeros(raw, np.int32), 3
    )
    with pytest.raises(UserError, match="source 3"):
        objective.collate([sample])


def test_bad_options_are_config_errors(tokenizer) -> None:
    with pytest.raises(ConfigError, match="splitter"):
        make(tokenizer, splitter="spacy")
    with pytest.raises(ConfigError, match="sentence_loss_coefficient"):
        make(tokenizer, sentence_loss_coefficient=-1)
    with pytest.raises(UserError, match="sent_"):
        Depth(tokenizer=tokenizer, max_sentences=MAX_SENTENCES + 4)
