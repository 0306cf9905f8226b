"""Shared building blocks for the sequence-transformation tasks (Seqthetic and Wu et al. 2022).

Every such task reads one or two random inputs of content tokens and writes an output:

    promoter  input  [<qry> query]  <ans>  output          (single input, optional query)
    promoter  input1  <sep>  input2  <ans>  output          (two inputs: union, intersect, ...)

An output that is empty is written as the ``<empty>`` marker so the answer is never zero tokens.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import IntRange, at_least
from synthlm.synth.ragged import Ragged, concat
from synthlm.synth.vocab import TokenSampler, VocabParams


class SequenceParams(VocabParams):
    """Content vocabulary plus how inputs are drawn."""

    length: IntRange = Field(
        default_factory=lambda: IntRange(min=8, max=64),
        description="Input length in tokens (int or {min, max}).",
    )
    distinct: bool = Field(
        False, description="No token repeats inside one input (needs num_vocab >= length.max)."
    )
    repeat_prob: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance that an input token copies an earlier one (creates repeats).",
    )

    _length_positive = at_least("length")

    @model_validator(mode="after")
    def _feasible(self) -> SequenceParams:
        if self.distinct and self.vocab.support < self.length.max:
            raise ValueError(
                f"distinct: cannot draw {self.length.max} different tokens from a vocabulary of "
                f"{self.vocab.support} (raise vocab.num_vocab or lower length.max)"
            )
        if self.distinct and self.repeat_prob > 0:
            raise ValueError("distinct: true and repeat_prob > 0 contradict each other")
        return self


class SetRepeats(SequenceParams):
    repeat_prob: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Chance that an input token copies an earlier one (creates repeats).",
    )


def copy_earlier(
    rng: np.random.Generator, x: Ragged, prob: float, previous: bool = False
) -> Ragged:
    """With probability ``prob`` per position (not the first), copy an earlier token of the sequence.

    ``previous=True`` copies the token just before (runs, for deduplicate); otherwise a uniformly
    chosen earlier position. Copies of copies are resolved by pointer jumping, all vectorised.
    """
    if prob <= 0 or not len(x.values):
        return x
    positions = x.positions
    flat = np.arange(len(x.values), dtype=np.int64)
    flagged = (positions > 0) & (rng.random(len(flat)) < prob)
    if previous:
        source = np.maximum.accumulate(np.where(flagged, 0, flat))
    else:
        offset = np.floor(rng.random(len(flat)) * positions).astype(np.int64)
        source = np.where(flagged, flat - positions + offset, flat)
        while True:
            deeper = source[source]
            if np.array_equal(deeper, source):
                break
            source = deeper
    return Ragged(x.values[source], x.lengths)


class InputTask(Domain):
    """A task on one random input; subclasses implement ``transform`` (vectorised) and ``solve``."""

    Params = SequenceParams
    markers: tuple[str, ...] = ("answer",)
    runs = False  # repeats as runs of the previous token (deduplicate) instead of random copies

    def sampler(self) -> TokenSampler:
        if not hasattr(self, "_sampler"):
            self._sampler = TokenSampler(self.params.vocab)
        return self._sampler

    def sample_input(
        self, rng: np.random.Generator, n: int, length: IntRange | None = None
    ) -> Ragged:
        p = self.params
        lengths = (length or p.length).sample(rng, n)
        x = self.sampler().sample_ragged(rng, lengths, p.distinct)
        return copy_earlier(rng, x, p.repeat_prob, previous=self.runs)

    def body(self, rng: np.random.Generator, n: int) -> list[tuple[Ragged, bool]]:
        x = self.sample_input(rng, n)
        y = self.transform(rng, x)
        return self.answered(x, y)

    def transform(self, rng: np.random.Generator, x: Ragged) -> Ragged:
        raise NotImplementedError

    def mean_body_length(self) -> float:
        return 1 + self.params.length.mean * (1 + self.output_ratio())

    def output_ratio(self) -> float:
        """Output length relative to input length, for block sizing."""
        return 1.0

    def solve(self, prompt: np.ndarray) -> np.ndarray:
        return self.answer_of(self.as_content(prompt))

    def answer_of(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check_input_length(self, x: np.ndarray) -> None:
        """An input's length, and with ``distinct`` that no token repeats in it."""
        if not self.params.length.contains(len(x)):
            raise Malformed(f"input length {len(x)} outside {self.params.length}")
        if getattr(self.params, "distinct", False) and len(np.unique(x)) != len(x):
            raise Malformed("a token repeats inside an input of a distinct: true domain")


def with_empty(y: Ragged, empty_id: int) -> Ragged:
    """Outputs with no tokens become the single ``<empty>`` marker."""
    return concat([y, Ragged.constant(empty_id, y.lengths == 0)])


def first_occurrence_order(x: np.ndarray) -> np.ndarray:
    """Unique tokens in order of first appearance (the reference used by ``verify``)."""
    seen: set[int] = set()
    out = []
    for token in x.tolist():
        if token not in seen:
            seen.add(token)
            out.append(token)
    return np.asarray(out, dtype=np.int64)
