"""Decoding an id the tokenizer does not have is an error naming the id and the size, for every
kind: HF ``tokenizers`` used to drop it silently, sentencepiece to raise a bare IndexError
(``piece id is out of range``), so a model's padded rows surfaced as a crash or vanished."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthlm.tokenizers import load_tokenizer, train_tokenizer

KINDS = {"bpe": 400, "sentencepiece": 400, "byte": None}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory, shakespeare: Path) -> dict[str, object]:
    root = tmp_path_factory.mktemp("decode-range")
    text = root / "corpus.txt"
    text.write_text(shakespeare.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    for kind, size in KINDS.items():
        train_tokenizer([text], kind, size, root / kind, extra_tokens=2, quiet=True)
    return {kind: load_tokenizer(root / kind) for kind in KINDS}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("offset", [0, 12])
def test_an_id_past_the_vocabulary_is_named(tokenizers, kind, offset):
    tok = tokenizers[kind]
    bad = tok.vocab_size + offset
    ids = [*tok.encode("to be or not"), bad]
    with pytest.raises(ValueError) as caught:
        tok.decode(ids, skip_special=True)
    message = str(caught.value)
    assert f"id {bad}" in message and f"has {tok.vocab_size} ids" in message, message


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_negative_id_is_named(tokenizers, kind):
    tok = tokenizers[kind]
    with pytest.raises(ValueError, match=r"cannot decode id -1: "):
        tok.decode([*tok.encode("to be"), -1])


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_real_id_still_decodes(tokenizers, kind):
    """The check costs nothing valid: the last id (an extra token) and the specials decode."""
    tok = tokenizers[kind]
    ids = [*tok.encode("to be"), tok.eos_id, tok.vocab_size - 1]
    assert tok.decode(ids, skip_special=True).startswith("to be")
    assert tok.decode(ids).endswith("<extra_id_1>")
