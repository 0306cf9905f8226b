"""Text utilities shared by objectives: sentence splitting and special-token handling."""

from synthlm.text.sentences import SPLITTERS, get_splitter, register_splitter, split_sentences
from synthlm.text.special_tokens import TextCodec, add_t5_special_tokens, with_t5_tokens

__all__ = [
    "SPLITTERS",
    "TextCodec",
    "add_t5_special_tokens",
    "get_splitter",
    "register_splitter",
    "split_sentences",
    "with_t5_tokens",
]
