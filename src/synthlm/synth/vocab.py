"""Content vocabularies: how many ids a domain draws from and with what probabilities.

``prob`` is ``uniform``, ``zipf`` (Zipf-Mandelbrot: ``p(rank r) ∝ (r + 1 + shift) ** -exponent``,
rank 0 = id 0 the most frequent), or an explicit list with one weight per id.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from synthlm.config import Section
from synthlm.synth.params import DomainParams
from synthlm.synth.ragged import Ragged

MAX_VOCAB = 1 << 22  # content ids per domain (the card counts each one)


class Zipf(Section):
    """Zipf-Mandelbrot weights over ranks."""

    exponent: float = Field(1.0, gt=0, description="Power-law exponent (larger = more skewed).")
    shift: float = Field(0.0, ge=0, description="Mandelbrot shift (flattens the head).")


class VocabSpec(Section):
    """The ids ``0..num_vocab-1`` a domain samples content from."""

    num_vocab: int = Field(100, ge=1, le=MAX_VOCAB, description="Number of content ids.")
    prob: Literal["uniform", "zipf"] | Zipf | list[float] = Field(
        "uniform", description="uniform | zipf | {exponent, shift} | explicit weights."
    )

    @model_validator(mode="before")
    @classmethod
    def _zipf_shorthand(cls, value: Any) -> Any:
        if (
            isinstance(value, dict)
            and isinstance(value.get("prob"), dict)
            and set(value["prob"]) == {"zipf"}
        ):
            value = {**value, "prob": value["prob"]["zipf"] or {}}
        return value

    @model_validator(mode="after")
    def _check_weights(self) -> VocabSpec:
        if isinstance(self.prob, list):
            if len(self.prob) != self.num_vocab:
                raise ValueError(
                    f"prob has {len(self.prob)} weights but num_vocab is {self.num_vocab}"
                )
            if min(self.prob) < 0 or not sum(self.prob) > 0:
                raise ValueError("prob weights must be >= 0 with a positive sum")
        return self

    def probabilities(self) -> np.ndarray | None:
        """Normalised weights per id, or None for uniform."""
        if self.prob == "uniform":
            return None
        if isinstance(self.prob, list):
            weights = np.asarray(self.prob, dtype=np.float64)
        else:
            zipf = Zipf() if self.prob == "zipf" else self.prob
            weights = (
                np.arange(self.num_vocab, dtype=np.float64) + 1.0 + zipf.shift
            ) ** -zipf.exponent
        return weights / weights.sum()

    @property
    def support(self) -> int:
        """How many ids can actually be drawn."""
        p = self.probabilities()
        return self.num_vocab if p is None else int((p > 0).sum())


class VocabParams(DomainParams):
    """Base for domains that draw content tokens from a vocabulary."""

    vocab: VocabSpec = Field(
        default_factory=VocabSpec, description="Content vocabulary: num_vocab and prob."
    )


class TokenSampler:
    """Draws content ids from a :class:`VocabSpec`, vectorised."""

    def __init__(self, vocab: VocabSpec) -> None:
        self.size = vocab.num_vocab
        p = vocab.probabilities()
        self.p = p
        self.cdf = None if p is None else np.cumsum(p)
        self.support = vocab.support

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.cdf is None:
            return rng.integers(0, self.size, size=count, dtype=np.int64)
        index = np.searchsorted(self.cdf, rng.random(count) * self.cdf[-1], side="right")
        return np.minimum(index, self.size - 1).astype(np.int64)

    def sample_ragged(
        self, rng: np.random.Generator, lengths: np.ndarray, distinct: bool = False
    ) -> Ragged:
        if distinct:
            return self.sample_distinct(rng, lengths)
        return Ragged(self.sample(rng, int(np.sum(lengths))), lengths)

    def sample_distinct(self, rng: np.random.Generator, lengths: np.ndarray) -> Ragged:
        """Per sequence, ids without repetition (duplicates are redrawn, or Gumbel top-k when dense)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if len(lengths) and 4 * int(lengths.max()) > self.support:
            return self._gumbel_top_k(rng, lengths)
        ragged = Ragged(self.sample(rng, int(lengths.sum())), lengths)
        index = np.arange(len(ragged.values), dtype=np.int64)  # items still being checked
        seqs, part = np.arange(len(ragged), dtype=np.int64), ragged
        while True:
            local = ~part.first_occurrences(self.size)
            repeats = index[local]
            if not len(repeats):
                return ragged
            ragged.values[repeats] = self.sample(rng, len(repeats))
            # only sequences that just drew again can repeat now: check those alone
            redrawn = np.zeros(len(part), dtype=bool)
            redrawn[part.seq_ids[local]] = True
            index, seqs = index[redrawn[part.seq_ids]], seqs[redrawn]
            part = Ragged(ragged.values[index], ragged.lengths[seqs])

    def _gumbel_top_k(self, rng: np.random.Generator, lengths: np.ndarray) -> Ragged:
        log_p = (
            np.zeros(self.size)
            if self.p is None
            else np.log(np.where(self.p > 0, self.p, np.finfo(float).tiny))
        )
        if self.p is not None:
            log_p[self.p == 0] = -np.inf
        rows_per_chunk = max(1, (1 << 22) // self.size)
        chunks = []
        for start in range(0, len(lengths), rows_per_chunk):
            rows = lengths[start : start + rows_per_chunk]
            keys = log_p + rng.gumbel(size=(len(rows), self.size))
            order = np.argsort(-keys, axis=1, kind="stable")
            chunks += [order[i, : rows[i]] for i in range(len(rows))]
        return Ragged.from_list(chunks) if chunks else Ragged(np.zeros(0, np.int64), lengths)
