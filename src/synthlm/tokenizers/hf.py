"""Hugging Face ``tokenizers`` models (tokenizer.json, GPT-2 vocab + merges, trained bpe / unigram).

Batch encoding runs in Rust without the GIL; for byte-level BPE on ASCII text a piece cache
(:class:`PieceCache`) skips most of that work while giving exactly the same ids.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

import numpy as np

from synthlm.tokenizers.base import DEFAULT_TOKENS, BaseTokenizer

# GPT-2's pre-tokenizer pattern (tokenizers' ByteLevel regex) restricted to ASCII text, where
# Python's re and tokenizers' regex engine classify every character alike: letters A-Za-z, digits
# 0-9, whitespace \t\n\v\f\r and space (re.ASCII), everything else "other".
_ASCII_PIECES = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""", re.ASCII
)


class PieceCache:
    """Encode ASCII documents piece by piece through a cache, as tiktoken does.

    With byte-level BPE behind GPT-2's pre-tokenizer and nothing before it, a document's ids are
    the concatenation of its pieces' ids, and natural text repeats a few thousand pieces: each new
    piece is encoded once by the tokenizer itself (so the ids stay exact), every repeat is a dict
    lookup. This costs about a third of ``encode_batch``'s CPU on English text (benchmarks/).
    """

    LIMIT = 1 << 20  # pieces kept; the cache restarts when full

    def __init__(self, backend) -> None:
        self.backend = backend
        self.ids: dict[str, list[int]] = {}

    @staticmethod
    def applies(backend) -> bool:
        from tokenizers import pre_tokenizers

        pre = backend.pre_tokenizer
        return (
            backend.normalizer is None
            and isinstance(pre, pre_tokenizers.ByteLevel)
            and pre.use_regex
            and not pre.add_prefix_space
            and all(t.special for t in backend.get_added_tokens_decoder().values())
        )

    @staticmethod
    def split(texts: list[str]) -> list[str]:
        """Every piece of ``texts``, in order (for tests and inspection)."""
        return [p for t in texts for p in _ASCII_PIECES.findall(t)]

    def encode(self, texts: list[str]) -> list[list[int]]:
        pieces = [_ASCII_PIECES.findall(t) for t in texts]
        missing = {p for doc in pieces for p in doc if p not in self.ids}
        if len(self.ids) + len(missing) > self.LIMIT:
            self.ids.clear()
            missing = {p for doc in pieces for p in doc}
        unseen = list(missing)
        for piece, encoding in zip(
            unseen, self.backend.encode_batch_fast(unseen, add_special_tokens=False), strict=True
        ):
            self.ids[piece] = encoding.ids
        lookup = self.ids.__getitem__
        return [list(itertools.chain.from_iterable(map(lookup, doc))) for doc in pieces]


class HFTokenizer(BaseTokenizer):
    """A ``tokenizers.Tokenizer``; batch encoding runs in Rust without the GIL."""

    def __init__(
        self, backend, tokens: dict[str, str], *, kind: str = "hf", path: str | None = None
    ) -> None:
        backend.encode_special_tokens = True  # text is text: a literal "</s>" stays characters
        self._backend = backend
        # set to None to encode everything with encode_batch (the benchmark's "no cache" run)
        self.piece_cache = PieceCache(backend) if PieceCache.applies(backend) else None
        self.kind = kind
        super().__init__(tokens, path)

    def _id_of(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def _count_ids(self) -> int:
        return max(self._backend.get_vocab(with_added_tokens=True).values(), default=-1) + 1

    def _named_ids(self) -> dict[str, int]:
        return {t.content: i for i, t in self._backend.get_added_tokens_decoder().items()}

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [
            e.ids for e in self._backend.encode_batch_fast(list(texts), add_special_tokens=False)
        ]

    def encode_flat(self, texts: list[str], dtype: Any = np.int32) -> tuple[np.ndarray, np.ndarray]:
        """The pipeline's path: ASCII documents through the piece cache where it applies."""
        if self.piece_cache is None:
            ids = self.encode_batch(texts)
        else:
            ids = [None] * len(texts)
            plain = [i for i, t in enumerate(texts) if t.isascii()]
            other = [i for i, t in enumerate(texts) if not t.isascii()]
            for group, encoded in (
                (plain, self.piece_cache.encode([texts[i] for i in plain])),
                (other, self.encode_batch([texts[i] for i in other])),
            ):
                for i, doc in zip(group, encoded, strict=True):
                    ids[i] = doc
        sizes = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        return np.fromiter(
            itertools.chain.from_iterable(ids), dtype=dtype, count=int(sizes.sum())
        ), sizes

    def _decode(self, ids: list[int], skip_special: bool) -> str:
        return self._backend.decode(ids, skip_special_tokens=skip_special)

    def hf_backend(self):
        from tokenizers import Tokenizer as Backend

        return Backend.from_str(self._backend.to_str())

    def extend(self, *, pad: bool = False, extra_tokens: int = 0) -> HFTokenizer:
        from tokenizers import AddedToken

        backend = self.hf_backend()
        tokens = dict(self.tokens)
        new = self._new_extras(extra_tokens)
        if pad and "pad" not in tokens:
            tokens["pad"] = DEFAULT_TOKENS["pad"]
            new.insert(0, tokens["pad"])
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in new])
        return HFTokenizer(backend, tokens, kind=self.kind, path=None)

    def _digest(self) -> str:
        return hashlib.sha256(self._backend.to_str().encode("utf-8")).hexdigest()

    def __getstate__(self) -> dict:
        return {
            "json": self._backend.to_str(),
            "tokens": self.tokens,
            "kind": self.kind,
            "path": self.path,
        }

    def __setstate__(self, state: dict) -> None:
        from tokenizers import Tokenizer as Backend

        self.__init__(
            Backend.from_str(state["json"]), state["tokens"], kind=state["kind"], path=state["path"]
        )
