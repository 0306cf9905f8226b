"""Tokenizers behind one small interface: load the common formats, train four kinds, save anywhere.

One id convention for every tokenizer synthlm trains, so configs and stores can rely on it:

    0 <unk>   1 <s> (bos)   2 </s> (eos: the end-of-document token)   3 <pad>
    then the learned vocabulary (``byte``: the 256 bytes, id = byte + 4)
    then ``extra_tokens`` reserved ids <extra_id_0>, <extra_id_1>, ... at the very end

``vocab_size`` counts all of them. Text is always text: a literal ``</s>`` inside a document is
encoded as characters, never as the eos id (the GPT-2 ``<|endoftext|>`` injection bug); special
ids enter token streams only by id. A saved directory holds ``tokenizer.json`` for every kind, so
``transformers.AutoTokenizer.from_pretrained(dir)`` loads it and encodes identically; synthlm
reads ``synthlm_tokenizer.json`` beside it to restore the exact kind (a SentencePiece model keeps
its ``tokenizer.model`` and is encoded by sentencepiece itself).

Modules: :mod:`.base` (convention, interface, saving), :mod:`.hf`, :mod:`.byte` and
:mod:`.sentencepiece` (the kinds), :mod:`.load` (format detection), :mod:`.train` (the
``@trainer(kind)`` registry), :mod:`.sp_options` (sentencepiece trainer options). Everything
public is re-exported here, so callers import from ``synthlm.tokenizers`` and never depend on
the split.
"""

from synthlm.tokenizers.base import (
    BYTE_OFFSET,
    DEFAULT_TOKENS,
    EXTRA_RE,
    EXTRA_TOKEN,
    META_FILE,
    ROLES,
    TOKENIZER_FILES,
    BaseTokenizer,
    Tokenizer,
)
from synthlm.tokenizers.byte import ByteTokenizer, byte_alphabet
from synthlm.tokenizers.hf import HFTokenizer, PieceCache
from synthlm.tokenizers.load import load_tokenizer, to_hf
from synthlm.tokenizers.sentencepiece import SentencePieceTokenizer
from synthlm.tokenizers.train import MIN_LEARNED, TRAINERS, Trainer, train_tokenizer, trainer

__all__ = [
    "BYTE_OFFSET",
    "DEFAULT_TOKENS",
    "EXTRA_RE",
    "EXTRA_TOKEN",
    "META_FILE",
    "MIN_LEARNED",
    "ROLES",
    "TOKENIZER_FILES",
    "TRAINERS",
    "BaseTokenizer",
    "ByteTokenizer",
    "HFTokenizer",
    "PieceCache",
    "SentencePieceTokenizer",
    "Tokenizer",
    "Trainer",
    "byte_alphabet",
    "load_tokenizer",
    "to_hf",
    "train_tokenizer",
    "trainer",
]
