"""Synthetic ids as readable symbols, and prompts written in them, for a trained checkpoint.

A synthetic dataset's ids only mean something through its layout (manifest.json): ``17`` is
content, ``<ans>`` the answer marker, ``d3`` the digit three, ``P.copy0`` the first promoter id
of domain ``copy``. These are exactly the names ``synthlm synth preview`` shows
(:meth:`synthlm.synth.role_ids.Layout.symbol`), so a prompt copied from a preview, from an eval
predictions dump or from a ``generate --synthetic`` output reads back to the same ids.

Inside a model the ids sit shifted into the meta-language range (``layout.meta_offset + id``, as
the training mixture feeds them); :class:`SymbolTable` converts both ways. Model ids outside the
dataset's range decode to ``<eos>`` or ``<tok:N>`` (N = the model id) so nothing is hidden.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthlm.errors import UserError

EOS_SYMBOL = "<eos>"


@dataclass(frozen=True)
class SymbolTable:
    """Local synthetic id <-> symbol for one dataset, and local <-> model ids for one model."""

    symbols: tuple[str, ...]  # symbols[local id]
    ids: dict[str, int]  # symbol -> local id
    meta_offset: int  # model id of local id 0
    eos_id: int
    source: str  # the dataset dir, for error messages
    hints: tuple[str, ...] = ()  # a few symbols of every role, for error messages
    ambiguous: frozenset[str] = frozenset()  # symbols two ids share (write the local id)

    @classmethod
    def from_dataset(cls, directory: str | Path, *, meta_offset: int, eos_id: int) -> SymbolTable:
        from synthlm.synth import load_synthetic

        layout = load_synthetic(directory).layout
        symbols = tuple(layout.symbol(i) for i in range(layout.vocab_size))
        ids: dict[str, int] = {}
        for local, symbol in enumerate(symbols):
            ids.setdefault(symbol, local)
        # promoter names end in a number, so domains "copy" and "copy1" could both have "P.copy10"
        ambiguous = frozenset(s for s, n in Counter(symbols).items() if n > 1)
        hints = [
            *symbols[:2],
            *(s for s in symbols if s.startswith("<")),
            *(s for s in ("d0", "d9") if s in ids),
            *(f"P.{n}0" for n, p in layout.promoters.items() if p),
        ]
        return cls(symbols, ids, meta_offset, eos_id, str(directory), tuple(hints), ambiguous)

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    # -- local ids ----------------------------------------------------------------------------
    def decode(self, local_ids: Sequence[int]) -> str:
        """Space-separated symbols of local ids (-1, an id the model wrote outside the range,
        shows as ``?``)."""
        return " ".join(self.symbols[i] if 0 <= i < self.vocab_size else "?" for i in local_ids)

    def encode(self, text: str, *, what: str = "prompt") -> list[int]:
        """Local ids of a space-separated prompt: symbols (``<ans>``, ``d3``, ``P.copy0``, ``17``)
        or plain local ids (``0 .. vocab_size-1``)."""
        out = []
        for word in text.split():
            if word in self.ambiguous:
                raise UserError(
                    f"{what}: {word!r} names several ids of {self.source}; write the local "
                    f"id instead"
                )
            if word in self.ids:
                out.append(self.ids[word])
            elif word.lstrip("-").isdigit() and 0 <= int(word) < self.vocab_size:
                out.append(int(word))
            else:
                raise UserError(self._unknown(word, what))
        if not out:
            raise UserError(f"{what} is empty; write synthetic symbols such as {self._examples()}")
        return out

    def _unknown(self, word: str, what: str) -> str:
        return (
            f"{what}: {word!r} is not a symbol of {self.source} (manifest.json layout); use its "
            f"symbols, e.g. {self._examples()}, or local ids 0..{self.vocab_size - 1}"
        )

    def _examples(self) -> str:
        return ", ".join(self.hints or self.symbols[:3])

    # -- model ids ----------------------------------------------------------------------------
    def to_model(self, local_ids: Sequence[int]) -> list[int]:
        return [self.meta_offset + int(i) for i in local_ids]

    def to_local(self, model_ids: Sequence[int]) -> list[int]:
        """Local ids of model ids; anything outside the dataset's range becomes -1."""
        ids = np.asarray(list(model_ids), dtype=np.int64) - self.meta_offset
        ids[(ids < 0) | (ids >= self.vocab_size)] = -1
        return ids.tolist()

    def decode_model(self, model_ids: Sequence[int]) -> str:
        """Symbols of model ids: the dataset's symbols, ``<eos>``, or ``<tok:N>`` for other ids."""
        words = []
        for token in model_ids:
            local = int(token) - self.meta_offset
            if 0 <= local < self.vocab_size:
                words.append(self.symbols[local])
            else:
                words.append(EOS_SYMBOL if token == self.eos_id else f"<tok:{int(token)}>")
        return " ".join(words)


def check_fits(directory: str | Path, layout) -> None:
    """The checkpoint's meta range must hold the dataset's ids (else the model never saw them)."""
    from synthlm.data.mixture import synthetic_vocab_needed

    needed = synthetic_vocab_needed(Path(directory))
    if needed > layout.meta_size:
        raise UserError(
            f"--synthetic {directory}: needs {needed} meta-language ids but the checkpoint "
            f"reserves {layout.meta_size} (model.num_meta_tokens); it was not trained on this "
            "dataset"
        )
