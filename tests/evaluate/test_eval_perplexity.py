"""Natural eval sets: loss / perplexity / bits per byte, as the training loop will report them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_lm import EOS, MODEL_VOCAB, NATURAL, bigram_model, byte_tokenizer, tiny_config
from transformers import LlamaForCausalLM

from synthlm.data.mixture import EvalSetConfig, ModelVocab
from synthlm.data.store import TokenStore, write_store
from synthlm.errors import UserError
from synthlm.evaluate import evaluate_model
from synthlm.evaluate.perplexity import windows
from synthlm.objectives.clm import CausalLM
from synthlm.objectives.sft import SupervisedFineTuning

LAYOUT = ModelVocab(
    natural_size=NATURAL,
    meta_offset=NATURAL,
    meta_size=MODEL_VOCAB - NATURAL,
    model_vocab_size=MODEL_VOCAB,
)


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_config()).eval()


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 256, size=n) for n in (5, 17, 3, 40, 9)]
    return write_store(tmp_path / "valid", docs, NATURAL), docs


def run(model, sets, **kwargs):
    options = dict(
        layout=LAYOUT,
        tokenizer=byte_tokenizer(),
        seq_len=16,
        batch_size=3,
        device=torch.device("cpu"),
    )
    options.update(kwargs)
    return evaluate_model(model, sets, **options)


def hand_loss(model, docs, seq_len, max_tokens):
    """Independent reference: EOS-joined stream, cut into windows, mean NLL from raw logits."""
    stream = np.concatenate([np.append(d, EOS) for d in docs])[:max_tokens]
    nll, count = 0.0, 0
    for start in range(0, len(stream), seq_len):
        window = torch.as_tensor(stream[start : start + seq_len], dtype=torch.long)[None]
        if window.shape[1] < 2:
            continue
        with torch.no_grad():
            logp = torch.log_softmax(model(window).logits[0, :-1].double(), dim=-1)
        nll -= logp.gather(1, window[0, 1:, None]).sum().item()
        count += window.shape[1] - 1
    return nll / count


def test_loss_matches_hand_computation_and_ppl_is_exp_loss(model, store):
    _, docs = store
    results = run(model, [EvalSetConfig(name="valid", path=store[0].prefix)])
    assert results["eval/valid/loss"] == pytest.approx(hand_loss(model, docs, 16, 10**9), rel=1e-5)
    assert results["eval/valid/ppl"] == pytest.approx(
        math.exp(results["eval/valid/loss"]), rel=1e-9
    )
    assert "eval/valid/bpb" not in results  # no byte count recorded: bpb omitted, not guessed


def hand_document_loss(model, docs, seq_len):
    """Independent reference for document masking: each window's pieces of documents run
    through the model alone (positions from 0, nothing else to attend to), every token of a
    piece but its first a target."""
    stream = np.concatenate([np.append(d, EOS) for d in docs])
    owner = np.concatenate([np.full(len(d) + 1, i) for i, d in enumerate(docs)])
    nll, count = 0.0, 0
    for start in range(0, len(stream), seq_len):
        window, doc_of = stream[start : start + seq_len], owner[start : start + seq_len]
        for doc in np.unique(doc_of):
            piece = torch.as_tensor(window[doc_of == doc], dtype=torch.long)[None]
            if piece.shape[1] < 2:
                continue
            with torch.no_grad():
                logp = torch.log_softmax(model(piece).logits[0, :-1].double(), dim=-1)
            nll -= logp.gather(1, piece[0, 1:, None]).sum().item()
            count += piece.shape[1] - 1
    return nll / count


def tiny_gpt_neox():
    """Pythia's block (rotary on a quarter of each head, parallel residual) at toy size."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=MODEL_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        rotary_pct=0.25,
        max_position_embeddings=256,
        eos_token_id=EOS,
        pad_token_id=EOS,
    )
    return GPTNeoXForCausalLM(config).eval()


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_document_mask_scores_each_document_alone(model, store, batch_size, arch):
    model = tiny_gpt_neox() if arch == "gpt_neox" else model
    _, docs = store
    sets = [EvalSetConfig(name="valid", path=store[0].prefix)]
    masking = CausalLM(document_mask=True)
    masked = run(model, sets, objective=masking, natural_masked=True, batch_size=batch_size)
    assert masked["eval/valid/loss"] == pytest.approx(hand_document_loss(model, docs, 16), rel=1e-5)
    # natural text packed GPT-style in a run whose synthetic examples were masked: plain windows
    unmasked = run(model, sets, objective=masking, batch_size=batch_size)["eval/valid/loss"]
    assert unmasked == pytest.approx(hand_loss(model, docs, 16, 10**9), rel=1e-5)
    masked = masked["eval/valid/loss"]
    assert abs(masked - hand_loss(model, docs, 16, 10**9)) > 1e-3  # the flag changes the number


def test_the_store_loss_mask_chooses_the_targets_as_in_training(model, tmp_path):
    """A chat store's mask marks the assistant's tokens: clm and sft train (and so score) only
    those; sft with train_on: all scores every token."""
    rng = np.random.default_rng(2)
    docs = [rng.integers(0, 256, size=n) for n in (12, 30, 7)]
    masks = [rng.integers(0, 2, size=len(d)) for d in docs]
    prefix = write_store(tmp_path / "chat", docs, NATURAL, masks=masks).prefix
    sets = [EvalSetConfig(name="chat", path=prefix)]
    stream = np.concatenate([np.append(d, EOS) for d in docs])
    targets = np.concatenate([np.append(m, 1) for m in masks]).astype(bool)  # EOS: a target
    nll, count = 0.0, 0
    for start in range(0, len(stream), 16):
        window = torch.as_tensor(stream[start : start + 16], dtype=torch.long)[None]
        chosen = torch.as_tensor(targets[start + 1 : start + len(window[0])])
        with torch.no_grad():
            logp = torch.log_softmax(model(window).logits[0, :-1].double(), dim=-1)
        nll -= logp.gather(1, window[0, 1:, None])[:, 0][chosen].sum().item()
        count += int(chosen.sum())
    assert run(model, sets)["eval/chat/loss"] == pytest.approx(nll / count, rel=1e-5)
    assistant = run(model, sets, objective=SupervisedFineTuning())["eval/chat/loss"]
    assert assistant == pytest.approx(nll / count, rel=1e-5)
    every = run(model, sets, objective=SupervisedFineTuning(train_on="all"))["eval/chat/loss"]
    assert every == pytest.approx(hand_loss(model, docs, 16, 10**9), rel=1e-5)


def test_unpacked_runs_score_one_document_per_row(model, store):
    """data.packing: false trains on one document per padded row, cut at seq_len."""
    _, docs = store
    nll, count = 0.0, 0
    for doc in docs:
        row = torch.as_tensor(np.append(doc, EOS)[:16], dtype=torch.long)[None]
        with torch.no_grad():
            logp = torch.log_softmax(model(row).logits[0, :-1].double(), dim=-1)
        nll -= logp.gather(1, row[0, 1:, None]).sum().item()
        count += row.shape[1] - 1
    sets = [EvalSetConfig(name="valid", path=store[0].prefix)]
    assert run(model, sets, packing=False)["eval/valid/loss"] == pytest.approx(
        nll / count, rel=1e-5
    )
    # max_tokens counts the tokens in rows: 6, 16 (the second document cut at seq_len), then
    # 2 of the third
    cut = run(model, [EvalSetConfig(name="v", path=store[0].prefix, max_tokens=24)], packing=False)
    nll, count = 0.0, 0
    for tokens in (np.append(docs[0], EOS), np.append(docs[1], EOS)[:16], docs[2][:2]):
        row = torch.as_tensor(tokens, dtype=torch.long)[None]
        with torch.no_grad():
            logp = torch.log_softmax(model(row).logits[0, :-1].double(), dim=-1)
        nll -= logp.gather(1, row[0, 1:, None]).sum().item()
        count += row.shape[1] - 1
    assert cut["eval/v/loss"] == pytest.approx(nll / count, rel=1e-5)


def test_max_tokens_limits_the_evaluated_prefix(model, store):
    _, docs = store
    results = run(model, [EvalSetConfig(name="v", path=store[0].prefix, max_tokens=21)])
    assert results["eval/v/loss"] == pytest.approx(hand_loss(model, docs, 16, 21), rel=1e-5)


def test_windows_are_fixed_non_overlapping_and_eos_joined(store):
    prefix, docs = store[0].prefix, store[1]
    got = list(windows(TokenStore(prefix), seq_len=16, eos_id=EOS, max_tokens=10**9))
    stream = np.concatenate([np.append(d, EOS) for d in docs])
    assert [len(w) for w in got] == [16, 16, 16, 16, len(stream) - 64]
    np.testing.assert_array_equal(np.concatenate(got), stream)


def test_batch_size_and_padding_do_not_change_the_loss(model, store):
    sets = [EvalSetConfig(name="valid", path=store[0].prefix)]
    one = run(model, sets, batch_size=1)["eval/valid/loss"]
    four = run(model, sets, batch_size=4)["eval/valid/loss"]
    assert four == pytest.approx(one, rel=1e-5)


def test_deterministic_restores_train_mode_and_rng(model, store):
    sets = [EvalSetConfig(name="valid", path=store[0].prefix)]
    model.train()
    rng_before = torch.get_rng_state()
    first = run(model, sets)
    assert model.training, "evaluate_model must hand the model back in train mode"
    assert torch.equal(torch.get_rng_state(), rng_before), (
        "evaluation must not consume the training RNG"
    )
    model.eval()
    assert run(model, sets) == first


def test_rigged_model_has_zero_loss_on_its_own_token(tmp_path):
    x = 65
    rigged = bigram_model({x: x})
    prefix = write_store(tmp_path / "xs", [[x] * 50, [x] * 30], NATURAL, append_eod=True).prefix
    results = run(rigged, [EvalSetConfig(name="xs", path=prefix)])
    assert results["eval/xs/loss"] < 1e-6
    assert results["eval/xs/ppl"] == pytest.approx(1.0, abs=1e-6)
    # ... and a high loss on a different token: the number measures the data, not a constant
    other = write_store(tmp_path / "ys", [[66] * 50], NATURAL, append_eod=True).prefix
    assert run(rigged, [EvalSetConfig(name="ys", path=other)])["eval/ys/loss"] > 3.0


def test_bits_per_byte_from_recorded_byte_count(model, store, tmp_path):
    _, docs = store
    tokens = sum(len(d) for d in docs)
    prefix = write_store(tmp_path / "withbytes", docs, NATURAL, num_bytes=2 * tokens).prefix
    results = run(model, [EvalSetConfig(name="b", path=prefix)])
    assert results["eval/b/bpb"] == pytest.approx(
        results["eval/b/loss"] / math.log(2) / 2.0, rel=1e-9
    )


def test_store_with_ids_beyond_the_tokenizer_fails_before_work(model, tmp_path):
    prefix = write_store(tmp_path / "big", [[1, 2, 300]], 400).prefix
    with pytest.raises(UserError, match=r"token id 300.*natural vocabulary of 258"):
        run(model, [EvalSetConfig(name="big", path=prefix)])


def test_duplicate_names_are_rejected(model, store):
    eval_set = EvalSetConfig(name="valid", path=store[0].prefix)
    with pytest.raises(UserError, match="repeated: valid"):
        run(model, [eval_set, eval_set])


def hand_batch_mean_loss(model, docs, seq_len, batch_size):
    """Independent reference for ``loss_average: micro_batch`` on one document per row: each
    batch's mean next-token loss over its own targets, the batches then averaged weighted by
    their rows (Lightning's epoch value of a per-batch ``self.log``, the HF Trainer's
    eval_loss). Each row runs alone: right padding changes nothing before it under the causal
    mask, so no padding is built here."""
    rows = [torch.as_tensor(np.append(d, EOS)[:seq_len], dtype=torch.long)[None] for d in docs]
    weighted, counted = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        nll, targets = 0.0, 0
        for row in batch:
            with torch.no_grad():
                logp = torch.log_softmax(model(row).logits[0, :-1].double(), dim=-1)
            nll -= logp.gather(1, row[0, 1:, None]).sum().item()
            targets += row.shape[1] - 1
        weighted += len(batch) * nll / targets
        counted += len(batch)
    return weighted / counted


def test_a_run_averaging_per_micro_batch_is_scored_per_batch(tmp_path):
    """Rows with different numbers of targets and losses (long predictable rows, short random
    ones), so a per-batch mean and the token mean are different numbers; each setting gives
    its own."""
    cycle = {t: t + 1 for t in range(10, 20)} | {20: 10}
    model = bigram_model(cycle)
    rng = np.random.default_rng(1)
    predictable = [np.arange(10, 10 + n) % 11 + 10 for n in (30, 12)]
    noise = [rng.integers(100, 200, size=n) for n in (3, 6, 4)]
    docs = [predictable[0], noise[0], noise[1], predictable[1], noise[2]]
    sets = [EvalSetConfig(name="valid", path=write_store(tmp_path / "v", docs, NATURAL).prefix)]
    options = dict(packing=False, objective=CausalLM(), seq_len=16, batch_size=2)
    per_batch = run(model, sets, loss_average="micro_batch", **options)["eval/valid/loss"]
    per_token = run(model, sets, **options)["eval/valid/loss"]
    assert per_batch == pytest.approx(hand_batch_mean_loss(model, docs, 16, 2), rel=1e-5)
    # one batch of every row: its mean is the token mean
    assert per_token == pytest.approx(hand_batch_mean_loss(model, docs, 16, len(docs)), rel=1e-5)
    assert abs(per_batch - per_token) > 0.1 * per_token  # the rules differ here


@pytest.mark.parametrize("packing", [True, False])
def test_max_documents_reads_only_the_first_documents(model, store, packing):
    """The first 3 of 5 documents, as a store of those 3 alone would be scored (packed: the
    EOS-joined stream of the 3; unpacked: one row each)."""
    _, docs = store
    sets = [EvalSetConfig(name="valid", path=store[0].prefix, max_documents=3)]
    loss = run(model, sets, packing=packing)["eval/valid/loss"]
    if packing:
        expected = hand_loss(model, docs[:3], 16, 10**9)
    else:  # one batch of every row: the token mean over the 3 rows
        expected = hand_batch_mean_loss(model, docs[:3], 16, 3)
    assert loss == pytest.approx(expected, rel=1e-5)
    everything = [EvalSetConfig(name="valid", path=store[0].prefix)]
    assert loss != pytest.approx(
        run(model, everything, packing=packing)["eval/valid/loss"], rel=1e-6
    )
