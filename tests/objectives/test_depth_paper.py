"""DEPTH's paper construction (``construction: paper``) checked against the DEPTH code's
definition (github.com/zbambergerNLP/depth at df9c2e9), written out here: one document per
example laid out as ``<eosen> <sent_a> S1 <eosen> <sent_b> S2 ... <eosen>`` with no ``</s>``
(``encoder_decoder_utils/tokenizer_utils.py`` pads the marked-up text to 512 before appending
``</s>``, which the truncation to 512 then removes), one T5 noise mask over the whole sequence
(rolled, shifted by two, special tokens unmasked), sentinels drawn with replacement, targets
``<eosen> <sent_x> spans...`` in the original order without ``</s>`` and padded with trained
``<pad>`` targets, and shuffling decided once per batch, a shuffled input ending with
``<eosen> </s>`` in its last two positions (``encoder_decoder_utils/corruption.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from t5_helpers import bpe_tokenizer, tiny_t5, windows

from synthlm.data.mixture import Sample
from synthlm.errors import ConfigError, UserError
from synthlm.objectives.depth import Depth, hierarchical_masks
from synthlm.text.special_tokens import TextCodec, add_t5_special_tokens

SEQ_LEN = 160
MAX_SENTENCES = 8


@pytest.fixture(scope="module")
def tokenizer():
    tok = bpe_tokenizer()
    add_t5_special_tokens(tok, num_sentence_tokens=MAX_SENTENCES)
    return tok


def make(tokenizer, **options) -> Depth:
    options = {"construction": "paper", "splitter": "rules", **options}
    return Depth(tokenizer=tokenizer, max_sentences=MAX_SENTENCES, **options)


def documents(tokenizer, count: int, length: int = 120) -> list[Sample]:
    """Unpacked samples as ``data.packing: false`` hands them over: one document (segment 0)
    padded with EOS (segment -1) to the window length."""
    out = []
    for i, window in enumerate(windows(tokenizer, length, count, start=37)):
        tokens = np.full(SEQ_LEN, tokenizer.eos_token_id or 0, dtype=np.int64)
        take = length - 7 * (i % 3)
        tokens[:take] = window.input_ids[:take]
        segments = np.full(SEQ_LEN, -1, dtype=np.int32)
        segments[:take] = 0
        out.append(Sample(tokens, np.ones(SEQ_LEN, dtype=np.uint8), segments, 0))
    return out


def undo(objective: Depth, inputs: list[int], labels: list[int]) -> tuple[list[int], list[bool]]:
    """The DEPTH code's corruption run backwards (unshuffled input): (original sequence, noise
    flag per position). Labels hold every <eosen>/<sent_x> and, per span, its sentinel then its
    tokens; the input holds the non-noise tokens with one sentinel per span."""
    structural = {objective.eosen_id, *objective.sentence_token_ids.tolist()}
    sentinels = set(objective.sentinel_ids.tolist())
    sequence, noise, cursor = [], [], 0
    for token in inputs:
        if token in sentinels:
            assert labels[cursor] == token  # the span's sentinel, then its tokens
            cursor += 1
            while cursor < len(labels) and labels[cursor] not in sentinels | structural:
                sequence.append(labels[cursor])
                noise.append(True)
                cursor += 1
            continue
        if token in structural:
            assert labels[cursor] == token
            cursor += 1
        sequence.append(token)
        noise.append(False)
    assert cursor == len(labels)
    return sequence, noise


def test_paper_examples_have_the_depth_code_layout(tokenizer) -> None:
    objective = make(tokenizer)
    codec = TextCodec(tokenizer)
    eos, eosen = objective.eos_id, objective.eosen_id
    sent = set(objective.sentence_token_ids.tolist())
    for sample in documents(tokenizer, 6):
        inputs, _, labels = (
            a.tolist() for a in objective.paper_example(sample, SEQ_LEN, shuffle=False)
        )
        assert (
            eos not in labels and labels[0] == eosen and labels[1] in sent
        )  # "<eosen> <sent_i> ..." no </s>
        assert eos not in inputs  # the code's tokenizer always cuts </s> off
        sequence, noise = undo(objective, inputs, labels)
        assert len(sequence) <= SEQ_LEN and sequence[0] == eosen and sequence[1] in sent
        starts = [i for i, t in enumerate(sequence) if t in sent]
        assert all(sequence[i - 1] == eosen for i in starts)  # every <sent_x> follows an <eosen>
        ids = [sequence[i] for i in starts]
        assert len(set(ids)) == len(ids) <= MAX_SENTENCES  # a permutation, no repeats
        if len(sequence) < SEQ_LEN:  # the whole document fitted: "... <eosen>", then padding
            assert sequence[-1] == eosen
        text = [t for t in sequence if t not in sent | {eosen, eos}]
        document = sample.input_ids[sample.segment_ids == 0]
        assert codec.decode(document).startswith(codec.decode(text))  # the document, in order
        # one T5 mask over the whole sequence (specials counted), shifted by two, specials
        # unmasked: never positions 0-1 or a special, at most round(L * density) tokens, and at
        # least that less the specials and the two positions shifted out
        special = [t in sent | {eosen} for t in sequence]
        assert not any(noise[:2]) and not any(n and s for n, s in zip(noise, special))
        most = int(np.round(len(sequence) * 0.3))
        assert most - sum(special) - 2 <= sum(noise) <= most


def test_paper_sentinels_are_drawn_at_random_with_replacement(tokenizer) -> None:
    objective = make(tokenizer)
    pool = set(objective.sentinel_ids.tolist())
    repeated = 0
    for sample in documents(tokenizer, 8):
        inputs, _, _ = objective.paper_example(sample, SEQ_LEN, shuffle=False)
        used = [t for t in inputs.tolist() if t in pool]
        assert (
            used != objective.sentinel_ids[: len(used)].tolist()
        )  # not <extra_id_0>, <extra_id_1>, ...
        repeated += len(set(used)) < len(used)
    assert repeated > 0  # 100 sentinels, ~10 spans per example: repeats do happen


def test_paper_shuffling_is_decided_once_per_batch(tokenizer) -> None:
    """A batch is shuffled as a whole or not at all (corruption.py: one ``do_shuffle`` per
    collator call). A shuffled input holds the same corrupted segments "<sent_x> ... <eosen>"
    after the leading "<eosen>", in another order, then padding, then "<eosen> </s>" in the
    last two positions: the code finds no </s>, overwrites the last two padding slots with
    <eosen> and </s>, and its token type 0 sorts the padding after the sentences."""
    objective = make(tokenizer, sentence_shuffling_probability=0.5)
    samples = documents(tokenizer, 40, length=150)
    eos, eosen, pad = objective.eos_id, objective.eosen_id, objective.pad_id
    kinds = []
    for b in range(10):
        rows = samples[4 * b : 4 * b + 4]
        batch = objective.collate(rows)
        moved = []
        for i, (row, sample) in enumerate(zip(batch["input_ids"].tolist(), rows)):
            plain, owner, _ = objective.paper_example(sample, SEQ_LEN, shuffle=False)
            shuffled = eos in row
            if len(np.unique(owner)) >= 4:  # an unmoved one is not an identity permutation
                moved.append(shuffled)
            if not shuffled:
                assert row[: len(plain)] == plain.tolist()
                assert row[len(plain) :] == [pad] * (SEQ_LEN - len(plain))
                continue
            assert len(row) == SEQ_LEN and row[0] == eosen and row[-2:] == [eosen, eos]
            body = row[1 : len(plain)]
            assert row[len(plain) : -2] == [pad] * (SEQ_LEN - 2 - len(plain))
            assert sorted(split_segments(objective, body)) == sorted(
                split_segments(objective, plain[1:].tolist())
            )
            # padding is never attended (a declared difference); the tail belongs to no sentence
            attention = batch["attention_mask"][i].tolist()
            assert attention == [int(t != pad) for t in row]
            assert batch["encoder_sentence"][i, -2:].tolist() == [-1, -1]
        assert all(moved) or not any(moved)
        kinds.extend(moved[:1])
    assert True in kinds and False in kinds


def test_paper_sentence_tokens_see_their_segment_as_the_codes_token_types_say(tokenizer) -> None:
    """The DEPTH code (tokenizer_utils.py ``prepare_for_model``) gives the leading <eosen> the
    first sentence's token type and each <eosen> the type of the sentence it closes; a sentence
    token attends to exactly the tokens of its type (corruption.py
    ``create_depth_encoder_self_attention_mask``). Shuffled, the leading <eosen> takes the
    first shuffled sentence's type and the trailing "<eosen> </s>" type 0, which no sentence
    token sees."""
    for probability in (0.0, 1.0):
        objective = make(tokenizer, sentence_shuffling_probability=probability)
        batch = objective.collate(documents(tokenizer, 2))
        encoder, _, _ = hierarchical_masks(batch, objective.is_sentence_token)
        ids = batch["input_ids"][0].tolist()
        sent = set(objective.sentence_token_ids.tolist())
        starts = [i for i, t in enumerate(ids) if t in sent]
        if probability:  # the segments end where the padding before "<eosen> </s>" begins
            end = ids.index(objective.pad_id)
        else:
            end = int(batch["attention_mask"][0].sum())
        for k, start in enumerate(starts):
            stop = starts[k + 1] if k + 1 < len(starts) else end
            visible = set(range(start, stop)) | ({0} if k == 0 else set())
            assert set(torch.nonzero(encoder[0, 0, start]).flatten().tolist()) == visible


def split_segments(objective: Depth, body: list[int]) -> list[tuple[int, ...]]:
    sent = set(objective.sentence_token_ids.tolist())
    out: list[list[int]] = []
    for token in body:
        if token in sent:
            out.append([])
        out[-1].append(token)
    return [tuple(s) for s in out]


def test_paper_batches_train_a_tiny_t5_with_the_sentence_loss_weighted(tokenizer) -> None:
    """The sentence-loss coefficient (inert in the released DEPTH code) weighs <sent_x> targets."""
    model = tiny_t5(len(tokenizer), 0, 1).eval()
    sums = {}
    for coefficient in (1.0, 3.0):
        objective = make(tokenizer, sentence_loss_coefficient=coefficient)
        batch = objective.collate(documents(tokenizer, 4))
        assert batch["input_ids"].shape == batch["labels"].shape == (4, SEQ_LEN)
        with torch.no_grad():
            total, _ = objective.loss_sum(model, batch)
        sums[coefficient] = (total.item(), objective.last_metric_sums["sentence_loss_sum"].item())
    (one, sentence), (three, _) = sums[1.0], sums[3.0]
    assert sentence > 0 and three == pytest.approx(one + 2 * sentence, rel=1e-4)


def test_paper_construction_needs_one_document_per_sample(tokenizer) -> None:
    objective = make(tokenizer)
    assert objective.window_length(SEQ_LEN) == SEQ_LEN == objective.target_length(SEQ_LEN)
    with pytest.raises(ConfigError, match="data.packing: false"):
        objective.check_data(SimpleNamespace(packing=True))
    objective.check_data(SimpleNamespace(packing=False))
    make(tokenizer, construction="synthlm").check_data(SimpleNamespace(packing=True))


def test_nltk_splitter_without_its_model_names_the_download(
    tokenizer, tmp_path, monkeypatch
) -> None:
    """No silent fallback: the paper's splitter stops with the command that installs punkt."""
    import nltk

    from synthlm.text import sentences

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    sentences._punkt.cache_clear()
    try:
        with pytest.raises(UserError, match=r"python -m nltk\.downloader punkt_tab"):
            make(tokenizer, splitter="nltk")
    finally:
        sentences._punkt.cache_clear()


def test_nltk_splitter_cuts_where_nltk_sent_tokenize_does(tmp_path, monkeypatch) -> None:
    """With a punkt_tab model present (here a hand-written one knowing one abbreviation, as no
    download is possible), sentences are nltk.tokenize.sent_tokenize's, whitespace kept."""
    import nltk

    from synthlm.text import sentences

    model = tmp_path / "tokenizers" / "punkt_tab" / "english"
    model.mkdir(parents=True)
    for name in ("collocations.tab", "sent_starters.txt", "ortho_context.tab"):
        (model / name).write_text("")
    (model / "abbrev_types.txt").write_text("dr\n")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    sentences._punkt.cache_clear()
    try:
        text = "I met Dr. Smith today.  He said hi! Then we left... Did we? yes"
        got = sentences.split_sentences(text, "nltk")
        assert "".join(got) == text
        assert [s.strip() for s in got] == nltk.tokenize.sent_tokenize(text)
    finally:
        sentences._punkt.cache_clear()
