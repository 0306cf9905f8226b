"""Two-input set operations of Wu et al. 2022: union, intersect, set_1_minus_2, set_2_minus_1.

    promoter  input1  <sep>  input2  <ans>  output

Outputs list each token once, in order of first appearance (input1 before input2 for union).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from synthlm.synth.domain import Malformed
from synthlm.synth.domains.base import InputTask, SequenceParams, first_occurrence_order, with_empty
from synthlm.synth.ragged import Ragged, concat
from synthlm.synth.registry import register_domain


class PairParams(SequenceParams):
    repeat_prob: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Chance that an input token copies an earlier one (creates repeats).",
    )
    overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Chance that a token of input2 is copied from input1 (shared tokens).",
    )


class PairTask(InputTask):
    Params = PairParams
    markers = ("answer", "sep", "empty")

    def body(self, rng, n):
        a = self.sample_input(rng, n)
        b = self.sample_input(rng, n)
        owner = b.seq_ids
        offset = np.floor(rng.random(len(b.values)) * a.lengths[owner]).astype(np.int64)
        shared = rng.random(len(b.values)) < self.params.overlap
        if self.params.distinct:
            b.values = _share_distinct(a, b, shared, rng)
        else:
            b.values = np.where(shared, a.values[a.starts[owner] + offset], b.values)
        y = with_empty(self.combine(a, b), self.mark("empty"))
        ones = np.ones(n, dtype=bool)
        return [
            (a, False),
            (Ragged.constant(self.mark("sep"), ones), False),
            (b, False),
            (Ragged.constant(self.mark("answer"), ones), False),
            (y, True),
        ]

    def combine(self, a: Ragged, b: Ragged) -> Ragged:
        raise NotImplementedError

    def mean_body_length(self):
        return 3 + 3 * self.params.length.mean

    def solve(self, prompt):
        pieces = self.split_on(prompt, "sep")
        if len(pieces) != 2:
            raise Malformed("expected two inputs split by one <sep>")
        a, b = (self.as_content(p) for p in pieces)
        self.check_input_length(a)
        self.check_input_length(b)
        return self.answer_tokens(
            self.expected(first_occurrence_order(a), first_occurrence_order(b))
        )

    def expected(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _share_distinct(
    a: Ragged, b: Ragged, shared: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """input2 with its ``shared`` positions copied from input1, keeping every input distinct.

    Copying each shared position from a random token of input1 (the default) can copy one token
    twice, or onto a token input2 already holds; with ``distinct`` the shared positions take
    different tokens of input1 (as many as it has), and the others keep input2's own draws,
    skipping any that a copy now holds. A loop over sequences: only distinct inputs pay for it.
    """
    values = b.values.copy()
    a_starts = a.starts
    for i, (start, length) in enumerate(zip(b.starts, b.lengths, strict=True)):
        first = a.values[a_starts[i] : a_starts[i] + a.lengths[i]]
        row = values[start : start + length]
        positions = np.flatnonzero(shared[start : start + length])[: len(first)]
        picks = rng.choice(first, size=len(positions), replace=False)
        own = row[~np.isin(row, picks)]  # b's draw is distinct: at least length - k remain
        rest = np.ones(length, dtype=bool)
        rest[positions] = False
        row[positions] = picks
        row[rest] = own[: int(rest.sum())]
    return values


@register_domain(
    "union",
    family="sequence",
    description="Tokens in input1 or input2, once each, in order of first appearance.",
)
class Union(PairTask):
    def combine(self, a, b):
        both = concat([a, b])
        return both.keep(both.first_occurrences(self.content))

    def expected(self, a, b):
        return first_occurrence_order(np.concatenate([a, b]))


@register_domain(
    "intersect",
    family="sequence",
    description="Tokens of input1 that also occur in input2 (order of input1).",
)
class Intersect(PairTask):
    def combine(self, a, b):
        return a.keep(a.first_occurrences(self.content) & a.member_of(b, self.content))

    def expected(self, a, b):
        return np.asarray([t for t in a.tolist() if t in set(b.tolist())], dtype=np.int64)


@register_domain(
    "set_1_minus_2", family="sequence", description="Tokens of input1 that do not occur in input2."
)
class SetOneMinusTwo(PairTask):
    def combine(self, a, b):
        return a.keep(a.first_occurrences(self.content) & ~a.member_of(b, self.content))

    def expected(self, a, b):
        return np.asarray([t for t in a.tolist() if t not in set(b.tolist())], dtype=np.int64)


@register_domain(
    "set_2_minus_1", family="sequence", description="Tokens of input2 that do not occur in input1."
)
class SetTwoMinusOne(PairTask):
    def combine(self, a, b):
        return b.keep(b.first_occurrences(self.content) & ~b.member_of(a, self.content))

    def expected(self, a, b):
        return np.asarray([t for t in b.tolist() if t not in set(a.tolist())], dtype=np.int64)
