"""T5 / DEPTH special tokens on top of a natural tokenizer, and a tokenizer-agnostic adapter.

Encoder-decoder objectives need ids a natural tokenizer does not have: 100 sentinels
``<extra_id_0..99>``, ``</s>``, a pad token (T5's decoder start), and for DEPTH ``<eosen>`` and
``<sent_0..N-1>``. They are added once, before training (:func:`add_t5_special_tokens` in place
on Hugging Face tokenizers, :func:`with_t5_tokens` for any tokenizer); the objectives then look
every id up *by name*, so any vocabulary order works and existing token stores stay valid.

synthlm's own tokenizers (``synthlm.tokenizers``) can only grow by reserved ``<extra_id_N>``
ids. For them DEPTH uses the extra ids after the sentinels: ``<extra_id_{S}>`` is ``<eosen>``
and ``<extra_id_{S+1+i}>`` is ``<sent_i>`` (S = number of sentinels) whenever the named tokens
are absent. Same model, different display names.

The adapter accepts Hugging Face tokenizers (``get_vocab``, ``eos_token_id``),
``tokenizers.Tokenizer`` (``get_vocab``, ``Encoding.ids``) and synthlm's (``hf_backend``,
``eos_id``, ``pad_id``, ``vocab_size``, ``extend``); duck typing keeps the objectives free of a
hard dependency on any of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from synthlm.errors import UserError

if TYPE_CHECKING:
    from synthlm.protocols import AnyTokenizer

EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
EOSEN_TOKEN = "<eosen>"


def sentinel_names(count: int, start: int = 0) -> list[str]:
    return [f"<extra_id_{i}>" for i in range(start, start + count)]


def sentence_token_names(count: int) -> list[str]:
    return [f"<sent_{i}>" for i in range(count)]


def required_tokens(num_sentinels: int = 100, num_sentence_tokens: int = 0) -> list[str]:
    """Token names an objective needs besides EOS and pad."""
    names = sentinel_names(num_sentinels)
    if num_sentence_tokens:
        names += [EOSEN_TOKEN, *sentence_token_names(num_sentence_tokens)]
    return names


def vocabulary(tokenizer: AnyTokenizer) -> dict[str, int]:
    """Token string -> id, added tokens included."""
    if callable(getattr(tokenizer, "get_vocab", None)):
        return dict(tokenizer.get_vocab())
    if callable(
        getattr(tokenizer, "hf_backend", None)
    ):  # synthlm tokenizer: same ids as its tokenizer.json
        return dict(tokenizer.hf_backend().get_vocab(with_added_tokens=True))
    raise UserError(
        f"tokenizer {type(tokenizer).__name__} exposes no vocabulary (get_vocab or hf_backend); "
        "pass a synthlm, Hugging Face or tokenizers.Tokenizer tokenizer"
    )


def _special_id(
    tokenizer: AnyTokenizer, vocab: dict[str, int], attributes: tuple[str, ...], name: str
) -> int | None:
    for attribute in attributes:
        value = getattr(tokenizer, attribute, None)
        if isinstance(value, int):
            return value
    return vocab.get(name)


def depth_token_names(
    vocab: dict[str, int], num_sentinels: int, num_sentence_tokens: int
) -> tuple[str, list[str]]:
    """Names of ``<eosen>`` and the sentence tokens: the named ones, else the extra ids after
    the sentinels (how synthlm tokenizers hold them)."""
    named = (EOSEN_TOKEN, sentence_token_names(num_sentence_tokens))
    extras = sentinel_names(1 + num_sentence_tokens, start=num_sentinels)
    if EOSEN_TOKEN not in vocab and all(name in vocab for name in extras):
        return extras[0], extras[1:]
    return named


def resolve_ids(
    tokenizer: AnyTokenizer, names: Sequence[str], vocab: dict[str, int] | None = None
) -> dict[str, int]:
    """Ids of ``names`` plus ``eos`` and ``pad``; one error listing everything missing."""
    vocab = vocabulary(tokenizer) if vocab is None else vocab
    found: dict[str, int | None] = {name: vocab.get(name) for name in names}
    found["eos"] = _special_id(tokenizer, vocab, ("eos_id", "eos_token_id"), EOS_TOKEN)
    found["pad"] = _special_id(tokenizer, vocab, ("pad_id", "pad_token_id"), PAD_TOKEN)
    missing = [
        EOS_TOKEN if k == "eos" else PAD_TOKEN if k == "pad" else k
        for k, v in found.items()
        if v is None
    ]
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        raise UserError(
            f"the tokenizer lacks {len(missing)} token(s) this objective needs: {shown}; "
            f"extend it once with "
            "synthlm.text.special_tokens.with_t5_tokens(tokenizer, ...) and train with "
            "the extended tokenizer"
        )
    return {k: int(v) for k, v in found.items() if v is not None}


def other_special_ids(tokenizer: AnyTokenizer) -> list[int]:
    """Ids of the tokenizer's unk and bos tokens, where it has them (T5: ``<unk>``, no bos): the
    special tokens besides EOS, pad and the added ones that Hugging Face's ``all_special_ids``
    lists."""
    vocab = vocabulary(tokenizer)
    found = [
        _special_id(tokenizer, vocab, ("unk_id", "unk_token_id"), "<unk>"),
        _special_id(tokenizer, vocab, ("bos_id", "bos_token_id"), "<s>"),
    ]
    return sorted({int(i) for i in found if i is not None})


def vocab_size(tokenizer: AnyTokenizer) -> int:
    """Number of ids including added tokens (HF's ``tokenizer.vocab_size`` leaves them out)."""
    if callable(getattr(tokenizer, "get_vocab_size", None)):
        return int(tokenizer.get_vocab_size(with_added_tokens=True))
    if hasattr(tokenizer, "__len__"):
        return len(tokenizer)
    return int(tokenizer.vocab_size)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def add_t5_special_tokens(
    tokenizer: AnyTokenizer,
    *,
    num_sentinels: int = 100,
    num_sentence_tokens: int = 0,
    multiple: int = 8,
) -> int:
    """Add the missing T5 (and, with ``num_sentence_tokens``, DEPTH) tokens to a Hugging Face
    tokenizer or a ``tokenizers.Tokenizer`` in place; return the new vocabulary size rounded up
    to ``multiple`` (the model's embedding rows). Existing tokens keep their ids."""
    if _is_synthlm(tokenizer):
        raise UserError(
            "synthlm tokenizers are immutable; use `tokenizer = with_t5_tokens(tokenizer, ...)`"
        )
    vocab = vocabulary(tokenizer)
    wanted = required_tokens(num_sentinels, num_sentence_tokens)
    if _special_id(tokenizer, vocab, ("eos_token_id",), EOS_TOKEN) is None:
        wanted.append(EOS_TOKEN)
    if _special_id(tokenizer, vocab, ("pad_token_id",), PAD_TOKEN) is None:
        wanted.append(PAD_TOKEN)
    missing = [name for name in wanted if name not in vocab]
    if missing:
        _add_special(tokenizer, missing)
    _name_hf_specials(tokenizer)
    return round_up(vocab_size(tokenizer), multiple)


def with_t5_tokens(
    tokenizer: AnyTokenizer, *, num_sentinels: int = 100, num_sentence_tokens: int = 0
) -> Any:
    """The tokenizer, extended with what span corruption / DEPTH need, for any tokenizer kind.

    Hugging Face tokenizers are extended in place and returned; synthlm tokenizers return an
    extended copy (``extend``: pad plus enough ``<extra_id_N>``, see the module docs).
    """
    if not _is_synthlm(tokenizer):
        add_t5_special_tokens(
            tokenizer, num_sentinels=num_sentinels, num_sentence_tokens=num_sentence_tokens
        )
        return tokenizer
    if tokenizer.eos_id is None:
        raise UserError(
            "the tokenizer has no eos token, which T5 objectives end every sequence with"
        )
    needed = num_sentinels + (1 + num_sentence_tokens if num_sentence_tokens else 0)
    vocab = vocabulary(tokenizer)
    if num_sentence_tokens and EOSEN_TOKEN in vocab:  # named DEPTH tokens already there
        needed = num_sentinels
    more = max(0, needed - len(tokenizer.extra_ids))
    if more or tokenizer.pad_id is None:
        return tokenizer.extend(pad=True, extra_tokens=more)
    return tokenizer


def _is_synthlm(tokenizer: AnyTokenizer) -> bool:
    return callable(getattr(tokenizer, "extend", None)) and hasattr(tokenizer, "extra_ids")


def _add_special(tokenizer: AnyTokenizer, names: list[str]) -> None:
    from tokenizers import AddedToken

    tokens = [AddedToken(name, special=True, normalized=False) for name in names]
    if hasattr(tokenizer, "convert_tokens_to_ids"):  # Hugging Face tokenizer
        tokenizer.add_tokens(tokens, special_tokens=True)
    elif callable(getattr(tokenizer, "add_special_tokens", None)):  # tokenizers.Tokenizer
        tokenizer.add_special_tokens(tokens)
    else:
        raise UserError(
            f"cannot add tokens to a {type(tokenizer).__name__}; pass a Hugging Face "
            f"tokenizer or a tokenizers.Tokenizer"
        )


def _name_hf_specials(tokenizer: AnyTokenizer) -> None:
    """Name EOS and pad on Hugging Face tokenizers so ``eos_token_id`` / ``pad_token_id`` work."""
    if not hasattr(tokenizer, "convert_tokens_to_ids"):
        return
    if getattr(tokenizer, "eos_token", None) is None:
        tokenizer.eos_token = EOS_TOKEN
    if getattr(tokenizer, "pad_token", None) is None:
        tokenizer.pad_token = PAD_TOKEN


class TextCodec:
    """Encode / decode text with any tokenizer, never adding BOS/EOS on its own."""

    def __init__(self, tokenizer: AnyTokenizer) -> None:
        self.tokenizer = tokenizer
        try:
            parameters = inspect.signature(tokenizer.encode).parameters
        except (TypeError, ValueError):  # builtins without a signature
            parameters = {}
        self._kwargs = {"add_special_tokens": False} if "add_special_tokens" in parameters else {}

    def encode(self, text: str) -> list[int]:
        out = self.tokenizer.encode(text, **self._kwargs)
        return list(getattr(out, "ids", out))  # tokenizers.Tokenizer returns an Encoding

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])
