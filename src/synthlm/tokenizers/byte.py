"""The byte tokenizer: UTF-8 bytes after the four specials, lossless for any text, no training.

Its tokenizer.json is a merge-free byte-level BPE over GPT-2's byte alphabet, so AutoTokenizer
gives the same ids (byte + 4) without synthlm installed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from synthlm.errors import UserError
from synthlm.tokenizers.base import BYTE_OFFSET, DEFAULT_TOKENS, EXTRA_TOKEN, ROLES, BaseTokenizer


def byte_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each byte 0..255, in byte order.

    ``tokenizers``' ByteLevel pre-tokenizer maps bytes through this table internally but exposes it
    only unordered, so the (standard, frozen) table is rebuilt here to lay out the byte vocabulary.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


class ByteTokenizer(BaseTokenizer):
    """UTF-8 bytes (id = byte + 4) plus the specials: lossless for any text, no training."""

    kind = "byte"

    def __init__(
        self,
        *,
        extra_tokens: int = 0,
        tokens: dict[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        tokens = dict(tokens or DEFAULT_TOKENS)
        if list(tokens) != list(ROLES):
            raise UserError(
                f"a byte tokenizer needs exactly the special tokens {', '.join(ROLES)} in "
                f"that order"
            )
        self._specials = list(tokens.values())
        self._extras = [EXTRA_TOKEN.format(n) for n in range(extra_tokens)]
        super().__init__(tokens, path)

    def _id_of(self, token: str) -> int | None:
        return self._specials.index(token) if token in self._specials else None

    def _count_ids(self) -> int:
        return BYTE_OFFSET + 256 + len(self._extras)

    def _named_ids(self) -> dict[str, int]:
        return {tok: BYTE_OFFSET + 256 + n for n, tok in enumerate(self._extras)}

    def encode_flat(self, texts: list[str], dtype: Any = np.int32) -> tuple[np.ndarray, np.ndarray]:
        encoded = [t.encode("utf-8") for t in texts]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        flat = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(dtype)
        flat += BYTE_OFFSET
        return flat, sizes

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        flat, sizes = self.encode_flat(texts, np.int64)
        return (
            [part.tolist() for part in np.split(flat, np.cumsum(sizes)[:-1])] if len(texts) else []
        )

    def _token(self, i: int) -> str:
        """A special or extra token (bytes are decoded in runs; :meth:`decode` checked ``i``)."""
        return self._specials[i] if i < BYTE_OFFSET else self._extras[i - BYTE_OFFSET - 256]

    def _decode(self, ids: list[int], skip_special: bool) -> str:
        out: list[str] = []
        run = bytearray()
        for i in ids:
            if BYTE_OFFSET <= i < BYTE_OFFSET + 256:
                run.append(i - BYTE_OFFSET)
                continue
            out.append(run.decode("utf-8", errors="replace"))
            run.clear()
            token = self._token(i)
            if not skip_special:
                out.append(token)
        out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)

    def hf_backend(self):
        from tokenizers import AddedToken, decoders, models, pre_tokenizers
        from tokenizers import Tokenizer as Backend

        vocab = {tok: i for i, tok in enumerate(self._specials)}
        vocab.update({char: BYTE_OFFSET + b for b, char in enumerate(byte_alphabet())})
        backend = Backend(models.BPE(vocab=vocab, merges=[]))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        backend.decoder = decoders.ByteLevel()
        backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in self._specials + self._extras]
        )
        return backend

    def extend(self, *, pad: bool = False, extra_tokens: int = 0) -> ByteTokenizer:
        tokens = dict(zip(ROLES, self._specials, strict=True))
        return ByteTokenizer(extra_tokens=len(self._extras) + extra_tokens, tokens=tokens)

    def _digest(self) -> str:
        layout = {
            "kind": "byte",
            "specials": self._specials,
            "offset": BYTE_OFFSET,
            "extras": len(self._extras),
        }
        return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()
