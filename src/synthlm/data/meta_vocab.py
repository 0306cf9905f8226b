"""A natural vocabulary of special tokens only, for runs that train on synthetic data alone.

A synthetic-only run needs no natural tokenizer, yet the id layout puts the natural vocabulary
first: a borrowed BPE of 50k ids would sit in the embedding unused, dominating a tiny model's
parameters. ``data.tokenizer: meta`` (the default when no source or eval set is natural) is
four ids (unk, bos, eos, pad); the meta-language range follows at id 4. It saves and loads like
any tokenizer, so checkpoints stay self-describing.
"""

from __future__ import annotations

from typing import Any

META_TOKENIZER = "meta"


def meta_only_tokenizer() -> Any:
    from tokenizers import Tokenizer, models

    from synthlm.tokenizers.base import DEFAULT_TOKENS, ROLES
    from synthlm.tokenizers.hf import HFTokenizer

    vocab = {DEFAULT_TOKENS[role]: i for i, role in enumerate(ROLES)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=DEFAULT_TOKENS["unk"]))
    backend.add_special_tokens(list(vocab))
    tokenizer = HFTokenizer(backend, dict(DEFAULT_TOKENS), kind="meta")
    tokenizer.path = META_TOKENIZER
    return tokenizer


def wants_meta_tokenizer(data: Any) -> bool:
    """``data.tokenizer: meta``, or unset with nothing natural to tokenize."""
    if data.tokenizer == META_TOKENIZER:
        return True
    natural = [s for s in [*data.sources, *data.eval] if s.kind == "natural"]
    return data.tokenizer is None and not natural
