"""``ngram``: text from a random n-gram language model with a seeded transition table.

Each context (the previous ``n - 1`` tokens) has ``branching`` ranked successor slots with Zipf
weights over their ranks. The table is never stored: successor ``r`` of context ``c`` is
``splitmix64(key ^ splitmix64(c * branching + r)) mod num_vocab`` with a key drawn from the
dataset seed and the domain's index, so any vocabulary size and order cost no memory, and
``verify`` can recompute the table to check that every transition is allowed.

Two slots of one context can hash to the same token, whose weights then add up: a context has
*at most* ``branching`` distinct successors (with 100 ids and 8 slots, a quarter of the
contexts have fewer; ``branching = num_vocab`` reaches about 63% of the vocabulary, not all of
it). ``vocab.prob`` draws only the first ``n - 1`` tokens of a sequence; every later token
comes from the table.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import IntRange, at_least
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain
from synthlm.synth.rng import splitmix64
from synthlm.synth.vocab import TokenSampler, VocabParams


class NgramParams(VocabParams):
    n: int = Field(3, ge=1, le=16, description="Order: each token depends on the previous n-1.")
    branching: int = Field(8, ge=1, description="Successors per context (the table's sparsity).")
    exponent: float = Field(
        1.0, ge=0, description="Zipf exponent over successor ranks (0 = uniform)."
    )
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=16, max=128), description="Sequence length in tokens."
    )

    _positive = at_least("length")

    @model_validator(mode="after")
    def _fits(self) -> NgramParams:
        if self.branching > self.vocab.num_vocab:
            raise ValueError(
                f"branching ({self.branching}) cannot exceed vocab.num_vocab "
                f"({self.vocab.num_vocab})"
            )
        if self.vocab.num_vocab ** max(self.n - 1, 0) >= 2**62:
            raise ValueError(
                f"n={self.n} with num_vocab={self.vocab.num_vocab}: too many contexts to "
                f"index (num_vocab**(n-1) must be < 2**62)"
            )
        return self


@register_domain(
    "ngram",
    family="stochastic",
    description="A random n-gram language model with a seeded sparse transition table (at most "
    "`branching` successors per context; vocab.prob draws only the first n-1 tokens).",
)
class Ngram(Domain):
    Params = NgramParams
    is_task = False

    def rank_cdf(self) -> np.ndarray:
        weights = (np.arange(self.params.branching) + 1.0) ** -self.params.exponent
        return np.cumsum(weights / weights.sum())

    def successors(self, context: np.ndarray, rank: np.ndarray) -> np.ndarray:
        mixed = context.astype(np.uint64) * np.uint64(self.params.branching) + rank.astype(
            np.uint64
        )
        hashed = splitmix64(np.uint64(self.key) ^ splitmix64(mixed))
        return (hashed % np.uint64(self.params.vocab.num_vocab)).astype(np.int64)

    def body(self, rng, n):
        p = self.params
        vocab = p.vocab.num_vocab
        lengths = p.length.sample(rng, n)
        steps = int(lengths.max())
        out = np.zeros((n, steps), dtype=np.int64)
        head = min(p.n - 1, steps)
        out[:, :head] = TokenSampler(p.vocab).sample(rng, n * head).reshape(n, head)
        ranks = np.searchsorted(self.rank_cdf(), rng.random((steps, n)), side="right").clip(
            0, p.branching - 1
        )
        top = np.uint64(vocab ** max(p.n - 2, 0))
        context = np.zeros(n, dtype=np.uint64)
        for j in range(head):
            context += out[:, j].astype(np.uint64) * np.uint64(vocab**j)
        for t in range(head, steps):
            out[:, t] = self.successors(context, ranks[t])
            if p.n > 1:
                context = context // np.uint64(vocab) + out[:, t].astype(np.uint64) * top
        return [(Ragged(out[np.arange(steps) < lengths[:, None]], lengths), True)]

    def mean_body_length(self):
        return self.params.length.mean

    def check_language(self, body):
        p = self.params
        if not p.length.contains(len(body)):
            raise Malformed(f"length {len(body)} outside {p.length}")
        tokens = self.as_content(body, "sequence")
        order = p.n - 1
        if len(tokens) <= order:
            return
        context = np.zeros(len(tokens) - order, dtype=np.uint64)
        for j in range(order):
            context += tokens[j : len(tokens) - order + j].astype(np.uint64) * np.uint64(
                p.vocab.num_vocab**j
            )
        ranks = np.arange(p.branching)
        allowed = self.successors(
            np.repeat(context, p.branching), np.tile(ranks, len(context))
        ).reshape(-1, p.branching)
        if not (allowed == tokens[order:, None]).any(axis=1).all():
            raise Malformed("a transition the n-gram table does not allow")

    @property
    def unique_answer(self):
        return False
