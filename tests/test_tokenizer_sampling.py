"""``--kind sentencepiece`` on more sentences than ``input_sentence_size``: a seeded sample.

sentencepiece 0.2 samples with a generator salted per process, so its own sample (and model)
changes from run to run whatever ``spm.set_random_generator_seed`` says. synthlm draws the
sample itself and hands the library exactly those sentences. These tests hold the rule (which
sentences count, how many are kept, what the seed changes), check it against the library's own
reading of sentences, and train twice in two processes for byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.tokenizers import train as train_module
from synthlm.tokenizers import train_tokenizer
from synthlm.tokenizers.train import SAMPLE_STREAM, eligible_sentence, sample_sentences

VOCAB = 400
SIZE = 500  # sentences sampled: well below the corpus's lines (the library needs > 100)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare: Path) -> Path:
    """4000 lines of tinyshakespeare: ~3300 sentences, blank lines between speeches."""
    path = tmp_path_factory.mktemp("sampling") / "lines.txt"
    path.write_text("\n".join(shakespeare.read_text().splitlines()[:4000]), encoding="utf-8")
    return path


def expected_sample(lines: list[str], size: int, *, max_length: int, seed: int) -> list[str]:
    """The documented rule, written out directly: which lines the library counts (stripped of
    trailing CR/LF; not empty, at most ``max_length`` UTF-8 bytes, no U+2585), the n-th of them
    drawing the n-th number of Philox((seed, SAMPLE_STREAM)), the ``size`` smallest kept, in
    corpus order."""
    counted = [line.rstrip("\r\n") for line in lines]
    counted = [
        line
        for line in counted
        if line and "\u2585" not in line and len(line.encode("utf-8")) <= max_length
    ]
    numbers = np.random.Philox(key=[seed, SAMPLE_STREAM]).random_raw(len(counted))
    chosen = sorted(sorted(range(len(counted)), key=lambda i: (int(numbers[i]), i))[:size])
    return [counted[i] for i in chosen]


def test_the_sample_follows_the_rule():
    lines = [f"sentence {i}" for i in range(300)]
    lines[3] = ""  # empty: not counted
    lines[4] = "\r"  # empty once the trailing CR is stripped, as the library's iterator does
    lines[5] = "with the reserved \u2585 character"
    lines[6] = "é" * 20  # 20 characters but 40 bytes: too long for 30
    lines[7] = "x" * 30  # exactly the limit: counted
    lines[8] = "crlf line\r"
    counted = [eligible_sentence(line, 30) for line in lines]
    assert counted[3:9] == [None, None, None, None, "x" * 30, "crlf line"]
    eligible = [line for line in counted if line is not None]

    sample, total = sample_sentences(iter(lines), 100, max_length=30, seed=0)
    assert total == len(eligible) == 296
    assert len(sample) == 100 and len(set(sample)) == 100
    assert set(sample) <= set(eligible)
    assert sample == [line for line in eligible if line in set(sample)]  # corpus order
    assert sample == expected_sample(lines, 100, max_length=30, seed=0)
    # the batch size is an implementation detail: the numbers follow the sentences
    assert sample_sentences(iter(lines), 100, max_length=30, seed=0, batch=7)[0] == sample
    other = sample_sentences(iter(lines), 100, max_length=30, seed=1)[0]
    assert other != sample and other == expected_sample(lines, 100, max_length=30, seed=1)
    # no more sentences than asked for: all of them, in order (what the library keeps too)
    assert sample_sentences(iter(lines), 1000, max_length=30, seed=0) == (eligible, 296)


def test_the_sample_is_uniform_enough_to_cover_the_corpus():
    """Not a test of uniformity itself: a sample that favoured the start (first-N) or the end of
    the corpus would fail it."""
    lines = [str(i) for i in range(20_000)]
    sample, _ = sample_sentences(iter(lines), 2000, max_length=100, seed=0)
    positions = np.array([int(line) for line in sample])
    counts = np.histogram(positions, bins=10, range=(0, 20_000))[0]
    assert counts.min() > 150 and counts.max() < 250  # 200 expected per tenth


def test_the_rule_counts_what_the_library_counts(tmp_path, shakespeare):
    """The library itself skips the lines the rule does not count: a character seen only in
    such lines never becomes a piece, one in a counted line of the same length does."""
    import sentencepiece as spm

    limit = 120
    lines = [line for line in shakespeare.read_text().splitlines()[:2000] if line.strip()]
    lines = [line for line in lines if len(line.encode()) <= limit]
    skipped = ["Ж" * 61, "Ψ \u2585 reserved"]  # 122 bytes in 61 characters; reserved char
    counted = ["Ω" * 60]  # 120 bytes: counted
    assert [eligible_sentence(line, limit) for line in skipped] == [None, None]
    assert eligible_sentence(counted[0], limit) == counted[0]
    feed = lines + skipped * 5 + counted * 5
    model = tmp_path / "lib"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(feed),
        model_prefix=str(model),
        vocab_size=VOCAB,
        max_sentence_length=limit,
        character_coverage=1.0,
        minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_file=str(model.with_suffix(".model")))
    pieces = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    assert not {"Ж", "Ψ"} & {c for piece in pieces for c in piece}
    assert any("Ω" in piece for piece in pieces)


def test_the_library_trains_on_exactly_the_sample(tmp_path, corpus, monkeypatch):
    """What reaches the library is the rule's sample, and the arguments make it keep all of it:
    the model equals one trained by the library on those sentences with no sampling at all."""
    import sentencepiece as spm

    calls = []
    library = spm.SentencePieceTrainer.train

    def recording(**kwargs):
        sentences = list(kwargs["sentence_iterator"])
        calls.append((sentences, kwargs))
        return library(**{**kwargs, "sentence_iterator": iter(sentences)})

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", recording)
    options = [f"input_sentence_size={SIZE}", "num_threads=1"]
    train_tokenizer(
        [corpus],
        "sentencepiece",
        VOCAB,
        tmp_path / "tok",
        txt_mode="line",
        sp_options=options,
        seed=3,
        quiet=True,
    )
    [(sentences, kwargs)] = calls
    lines = [line for line in corpus.read_text().split("\n") if line.strip()]
    assert sentences == expected_sample(lines, SIZE, max_length=1 << 16, seed=3)
    assert kwargs["input_sentence_size"] == SIZE and kwargs["shuffle_input_sentence"] is True
    monkeypatch.undo()

    arguments = {key: value for key, value in kwargs.items() if key != "model_writer"}
    direct = tmp_path / "direct"
    spm.SentencePieceTrainer.train(
        **{**arguments, "sentence_iterator": iter(sentences), "input_sentence_size": 0},
        model_prefix=str(direct),
    )
    ours = (tmp_path / "tok" / "tokenizer.model").read_bytes()
    from sentencepiece import sentencepiece_model_pb2 as pb

    theirs, mine = pb.ModelProto(), pb.ModelProto()
    theirs.ParseFromString(direct.with_suffix(".model").read_bytes())
    mine.ParseFromString(ours)
    assert [(p.piece, p.score) for p in mine.pieces] == [(p.piece, p.score) for p in theirs.pieces]


def cli_train(corpus: Path, out: Path, *extra: str) -> None:
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(corpus),
        "--txt-mode",
        "line",
        "--kind",
        "sentencepiece",
        "--vocab-size",
        str(VOCAB),
        "--sp-option",
        f"input_sentence_size={SIZE}",
        "--out",
        str(out),
        "-q",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_two_processes_train_byte_identical_tokenizers(tmp_path, corpus):
    """The audit's case: the library's own sampling gave 700 pieces at other ids in a second
    process, with num_threads=1 too. synthlm's sample repeats."""
    for name in ("a", "b"):
        cli_train(corpus, tmp_path / name)
    for file in ("tokenizer.model", "tokenizer.json", "synthlm_tokenizer.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    meta = json.loads((tmp_path / "a" / "synthlm_tokenizer.json").read_text())
    assert meta["options"]["seed"] == 0 and meta["repeatable"] is True
    cli_train(corpus, tmp_path / "c", "--seed", "1")
    other = (tmp_path / "c" / "tokenizer.model").read_bytes()
    assert other != (tmp_path / "a" / "tokenizer.model").read_bytes()
    assert (
        json.loads((tmp_path / "c" / "synthlm_tokenizer.json").read_text())["options"]["seed"] == 1
    )


def test_first_n_is_not_sampled(tmp_path, corpus, monkeypatch):
    """shuffle_input_sentence=false keeps the library's meaning (the first N): synthlm draws
    nothing and streams the sentences as they come."""

    def fail(*args, **kwargs):
        raise AssertionError("sampled although shuffle_input_sentence=false")

    monkeypatch.setattr(train_module, "sample_sentences", fail)
    options = [f"input_sentence_size={SIZE}", "shuffle_input_sentence=false", "num_threads=1"]
    train_tokenizer(
        [corpus], "sentencepiece", VOCAB, tmp_path / "t", txt_mode="line", sp_options=options
    )


def test_seed_is_for_sentencepiece_only(tmp_path, corpus):
    with pytest.raises(UserError, match="--seed applies to --kind sentencepiece"):
        train_tokenizer([corpus], "bpe", VOCAB, tmp_path / "t", seed=1)
    assert not (tmp_path / "t").exists()
