"""Extending natural tokenizers with T5 / DEPTH tokens and finding their ids."""

from __future__ import annotations

import pytest
from t5_helpers import bpe_tokenizer

from synthlm.errors import UserError
from synthlm.text.special_tokens import (
    TextCodec,
    add_t5_special_tokens,
    depth_token_names,
    required_tokens,
    resolve_ids,
    vocabulary,
    with_t5_tokens,
)
from synthlm.tokenizers import ByteTokenizer


def test_adds_missing_tokens_keeps_old_ids_and_rounds_to_8() -> None:
    tok = bpe_tokenizer()
    before = dict(tok.get_vocab())
    size = add_t5_special_tokens(tok, num_sentence_tokens=20)
    vocab = tok.get_vocab()
    assert size % 8 == 0 and len(tok) <= size < len(tok) + 8
    assert all(vocab[token] == i for token, i in before.items())
    ids = resolve_ids(tok, required_tokens(100, 20))
    assert len(set(ids.values())) == 100 + 1 + 20 + 2  # sentinels, <eosen>, <sent_i>, eos, pad
    assert tok.eos_token_id == ids["eos"] and tok.pad_token_id == ids["pad"]
    # idempotent: a second call adds nothing
    assert add_t5_special_tokens(tok, num_sentence_tokens=20) == size
    assert len(tok.get_vocab()) == len(vocab)


def test_special_tokens_are_never_split_and_text_stays_text() -> None:
    tok = bpe_tokenizer()
    add_t5_special_tokens(tok)
    codec = TextCodec(tok)
    sentinel = tok.convert_tokens_to_ids("<extra_id_7>")
    assert codec.encode("<extra_id_7>") == [sentinel]
    assert codec.decode(codec.encode("To be, or not to be")) == "To be, or not to be"


def test_tokenizers_library_tokenizer_is_extended_in_place() -> None:
    backend = bpe_tokenizer().backend_tokenizer
    size = add_t5_special_tokens(backend, num_sentinels=10)
    assert backend.token_to_id("<extra_id_9>") is not None
    assert backend.token_to_id("</s>") is not None and backend.token_to_id("<pad>") is not None
    assert size % 8 == 0


def test_synthlm_tokenizer_gets_extra_ids_used_as_depth_tokens() -> None:
    base = ByteTokenizer()
    with pytest.raises(UserError, match="immutable"):
        add_t5_special_tokens(base)
    extended = with_t5_tokens(base, num_sentinels=100, num_sentence_tokens=20)
    assert len(extended.extra_ids) == 121 and extended.vocab_size == base.vocab_size + 121
    eosen, sentences = depth_token_names(vocabulary(extended), 100, 20)
    assert (
        eosen == "<extra_id_100>"
        and sentences[0] == "<extra_id_101>"
        and sentences[-1] == "<extra_id_120>"
    )
    assert with_t5_tokens(extended, num_sentinels=100, num_sentence_tokens=20) is extended


def test_missing_tokens_are_listed_in_one_error() -> None:
    with pytest.raises(UserError, match=r"lacks 102 token\(s\).*<extra_id_0>.*with_t5_tokens"):
        resolve_ids(bpe_tokenizer(), required_tokens(100))
