"""Which targets the DEPTH code trains, and which tokens its noise never hides, restated from
the released code (github.com/zbambergerNLP/depth at df9c2e9), not from synthlm's:

* ``encoder_decoder_utils/model_utils.py`` (``get_data_collator``) hands the DEPTH collator
  ``pad_token_id=target_length`` (512), not the tokenizer's pad id 0;
  ``encoder_decoder_utils/corruption.py`` (``corrupt_for_depth``) pads the labels to 512 with 0
  (``_pad_or_truncate``) and then sets to -100 only the labels equal to that "pad id";
  ``encoder_decoder_utils/t5_model.py`` averages the cross-entropy over every label that is not
  -100. So every padding position of the target is a trained ``<pad>`` target, and the loss
  is a mean over all 512 target positions of every example.
* ``corrupt_for_depth`` unmasks every position holding one of ``tokenizer.all_special_ids``:
  for the T5 tokenizer that is ``<pad>`` (0), ``</s>`` (1), ``<unk>`` (2), the 100 sentinels,
  ``<sent_0..19>`` and ``<eosen>``; an ``<unk>`` is never hidden.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from t5_helpers import bpe_tokenizer, tiny_t5, windows

from synthlm.data.mixture import Sample
from synthlm.objectives.base import IGNORE_INDEX
from synthlm.objectives.depth import Depth
from synthlm.text.special_tokens import TextCodec, add_t5_special_tokens, other_special_ids

SEQ_LEN = 160
MAX_SENTENCES = 8


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import AddedToken

    tok = bpe_tokenizer()
    tok.add_tokens([AddedToken("<unk>", special=True, normalized=False)], special_tokens=True)
    tok.unk_token = "<unk>"
    add_t5_special_tokens(tok, num_sentence_tokens=MAX_SENTENCES)
    return tok


def make(tokenizer, **options) -> Depth:
    options = {"construction": "paper", "splitter": "rules", **options}
    return Depth(tokenizer=tokenizer, max_sentences=MAX_SENTENCES, **options)


def documents(tokenizer, count: int, length: int = 100) -> list[Sample]:
    """Unpacked samples (``data.packing: false``): one document, then EOS padding."""
    out = []
    for window in windows(tokenizer, length, count, start=11):
        tokens = np.full(SEQ_LEN, tokenizer.eos_token_id, dtype=np.int64)
        tokens[:length] = window.input_ids
        segments = np.full(SEQ_LEN, -1, dtype=np.int32)
        segments[:length] = 0
        out.append(Sample(tokens, np.ones(SEQ_LEN, dtype=np.uint8), segments, 0))
    return out


def test_the_target_padding_is_trained_as_in_the_depth_codes_runs(tokenizer) -> None:
    objective = make(tokenizer, sentence_shuffling_probability=0.0)
    batch = objective.collate(documents(tokenizer, 4))
    labels = batch["labels"]
    pad = tokenizer.pad_token_id
    assert labels.shape == (4, SEQ_LEN)  # targets padded to the input length (512 in the code)
    assert (labels != IGNORE_INDEX).all()  # nothing is left out of the loss
    for row in labels.tolist():
        length = len(row) - row[::-1].index(next(t for t in row[::-1] if t != pad))
        assert row[length:] == [pad] * (SEQ_LEN - length) and length < SEQ_LEN
    # the decoder reads the padding too: <pad> (T5's decoder start), then the targets
    assert batch["decoder_input_ids"][:, 0].tolist() == [pad] * 4
    assert torch.equal(batch["decoder_input_ids"][:, 1:], labels[:, :-1])

    model = tiny_t5(len(tokenizer), pad, tokenizer.eos_token_id).eval()
    with torch.no_grad():
        _, count = objective.loss_sum(model, batch)
    sums = objective.last_metric_sums
    assert int(count) == 4 * SEQ_LEN  # a mean over every target position, as t5_model.py
    assert int(sums["padding_tokens"]) == int((labels == pad).sum())
    assert (
        int(sums["reconstruction_tokens"])
        + int(sums["sentence_tokens"])
        + int(sums["padding_tokens"])
        == 4 * SEQ_LEN
    )


def test_paper_label_padding_false_ignores_the_padding(tokenizer) -> None:
    """What the code meant (pad targets set to -100), for users who want it."""
    trained = make(tokenizer, sentence_shuffling_probability=0.0)
    ignored = make(tokenizer, sentence_shuffling_probability=0.0, paper_label_padding=False)
    samples = documents(tokenizer, 3)
    a, b = trained.collate(samples), ignored.collate(samples)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["decoder_input_ids"], b["decoder_input_ids"])
    pad = tokenizer.pad_token_id
    assert torch.equal(b["labels"] == IGNORE_INDEX, a["labels"] == pad)
    assert "padding" not in ignored.token_groups(b)


def test_unk_is_never_hidden(tokenizer) -> None:
    objective = make(tokenizer, sentence_shuffling_probability=0.0, noise_density=0.5)
    codec = TextCodec(tokenizer)
    unk = tokenizer.unk_token_id
    assert other_special_ids(tokenizer) == [unk]  # no bos in this tokenizer
    sentences = ("the king is dead .", "long live the king !", "what say you ?", "nothing at all .")
    words = " ".join(sentences).split()
    seen = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        text = " ".join(w if rng.random() < 0.7 else "<unk>" for w in words * 3)
        ids = np.asarray(codec.encode(text), dtype=np.int64)
        tokens = np.full(SEQ_LEN, tokenizer.eos_token_id, dtype=np.int64)
        tokens[: len(ids)] = ids
        segments = np.full(SEQ_LEN, -1, dtype=np.int32)
        segments[: len(ids)] = 0
        sample = Sample(tokens, np.ones(SEQ_LEN, dtype=np.uint8), segments, 0)
        inputs, _, labels = objective.paper_example(sample, SEQ_LEN, shuffle=False)
        assert unk not in labels.tolist()  # a hidden token would be a target
        seen += int((inputs == unk).sum())
    assert seen > 20
