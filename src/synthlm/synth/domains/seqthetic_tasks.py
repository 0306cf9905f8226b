"""Seqthetic's domains as its code draws them (isen-zhang/metalang, ``synthetic_data/seqthetic/
domains/{identity,duplicate,deduplicate,delete}.py``), which Seqthetic's flat configs select.

What sets them apart from synthlm's ``identity``/``duplicate``/``deduplicate``/``delete``:
content ids are drawn *without replacement* (``Vocabulary.sample_vocab``), ``length`` is what
Seqthetic's ``sequence_length`` means for that domain (the input for identity, the whole sample
for duplicate and delete, the basis of the unique-token count for deduplicate), and the
delimiter ``<ans>`` stands for Seqthetic's ``-1`` delimiter token. Deliberate differences from
the code (its bugs) are listed in docs/papers/seqthetic.md.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from synthlm.config import Section
from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.domains.sampling import randint
from synthlm.synth.params import IntRange, at_least
from synthlm.synth.ragged import Ragged, concat
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabParams, VocabSpec

SOURCE = "Seqthetic (isen-zhang/metalang synthetic_data/seqthetic/domains/"


class FloatRange(Section):
    """A float drawn uniformly from ``[min, max]`` per sequence (Seqthetic's ratio ranges)."""

    min: float = Field(..., ge=0)
    max: float = Field(..., ge=0)

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, value):
        return (
            {"min": value, "max": value}
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else value
        )

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.min) if self.min == self.max else rng.uniform(self.min, self.max, n)


class SeqtheticParams(VocabParams):
    vocab: VocabSpec = Field(
        default_factory=lambda: VocabSpec(num_vocab=10000),
        description="Content vocabulary (Seqthetic's vocab_size; its configs use 10000).",
    )
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=256, max=1023),
        description="Seqthetic's sequence_length (see the domain for what it counts).",
    )

    _positive = at_least("length", low=4)

    def distinct_ids(self) -> int:
        """Most ids one sequence draws without replacement."""
        return self.length.max

    @model_validator(mode="after")
    def _enough_ids(self) -> SeqtheticParams:
        if self.distinct_ids() > self.vocab.support:
            raise ValueError(
                f"vocab: a sequence draws up to {self.distinct_ids()} distinct ids, but "
                f"only {self.vocab.support} can be drawn"
            )
        return self


class SeqtheticTask(Domain):
    Params = SeqtheticParams
    markers: tuple[str, ...] = ("answer",)

    def sampler(self) -> TokenSampler:
        if not hasattr(self, "_sampler"):
            self._sampler = TokenSampler(self.params.vocab)
        return self._sampler

    def distinct(self, rng, lengths) -> Ragged:
        return self.sampler().sample_distinct(rng, np.asarray(lengths, dtype=np.int64))

    def mean_body_length(self):
        return float(self.params.length.mean) + 1

    def check_distinct(self, x: np.ndarray) -> None:
        if len(set(x.tolist())) != len(x):
            raise Malformed("input ids repeat (Seqthetic draws them without replacement)")


class IdentityParams(SeqtheticParams):
    reverse: bool = Field(
        False, description="Write the input reversed (Seqthetic's Identity(reverse=True))."
    )


@register_domain(
    "seqthetic_identity",
    family="seqthetic",
    reference=SOURCE + "identity.py)",
    description="Input of `length` distinct ids, then <ans> and the same ids (reversed "
    "with reverse: true).",
)
class SeqtheticIdentity(SeqtheticTask):
    Params = IdentityParams

    def body(self, rng, n):
        x = self.distinct(rng, self.params.length.sample(rng, n))
        y = x.reversed() if self.params.reverse else Ragged(x.values.copy(), x.lengths)
        return [
            (x, False),
            (Ragged.constant(self.mark("answer"), np.ones(n, bool)), False),
            (y, True),
        ]

    def mean_body_length(self):
        return 2 * self.params.length.mean + 1

    def solve(self, prompt):
        x = self.as_content(prompt)
        self.check_distinct(x)
        if not self.params.length.contains(len(x)):
            raise Malformed(f"input length {len(x)} outside {self.params.length}")
        return x[::-1] if self.params.reverse else x


class DuplicateParams(SeqtheticParams):
    num_duplicate: IntRange = Field(
        default_factory=lambda: IntRange(min=2, max=2),
        description="Copies of each id (Seqthetic's num_duplicate).",
    )

    _k_positive = at_least("num_duplicate")

    def distinct_ids(self) -> int:
        return (self.length.max - 1) // (self.num_duplicate.min + 1)


@register_domain(
    "seqthetic_duplicate",
    family="seqthetic",
    reference=SOURCE + "duplicate.py)",
    description="int((length - 1) / (k + 1)) distinct ids, <ans>, each id k times (length "
    "= whole sample).",
)
class SeqtheticDuplicate(SeqtheticTask):
    Params = DuplicateParams

    def body(self, rng, n):
        p = self.params
        total, k = p.length.sample(rng, n), p.num_duplicate.sample(rng, n)
        x = self.distinct(rng, (total - 1) // (k + 1))
        return [
            (x, False),
            (Ragged.constant(self.mark("answer"), np.ones(n, bool)), False),
            (x.repeated(k), True),
        ]

    def check_answer(self, prompt, answer):
        x = self.as_content(prompt)
        self.check_distinct(x)
        k = len(answer) // max(len(x), 1)
        if (
            not len(x)
            or not self.params.num_duplicate.contains(k)
            or not np.array_equal(np.repeat(x, k), answer)
        ):
            raise Malformed("answer is not each input id repeated num_duplicate times")
        if not any(
            self.params.length.contains(t)
            for t in range(len(x) * (k + 1) + 1, (len(x) + 1) * (k + 1) + 1)
        ):
            raise Malformed("input size does not follow from any length in range")

    @property
    def unique_answer(self):
        return self.params.num_duplicate.min == self.params.num_duplicate.max


class DeduplicateParams(SeqtheticParams):
    unique_token_ratio: FloatRange = Field(
        default_factory=lambda: FloatRange(min=0.3, max=0.4),
        description="Unique ids as a fraction of length.",
    )
    repeat_token_ratio: FloatRange = Field(
        default_factory=lambda: FloatRange(min=0.4, max=0.8),
        description="Fraction of the unique ids written twice in a row.",
    )
    shuffle_ratio: FloatRange | None = Field(
        None,
        description="Accepted from Seqthetic configs; Seqthetic's Deduplicate ignores it, "
        "and so does synthlm.",
    )

    def distinct_ids(self) -> int:
        return int(self.unique_token_ratio.max * self.length.max)


@register_domain(
    "seqthetic_deduplicate",
    family="seqthetic",
    reference=SOURCE + "deduplicate.py)",
    description="Distinct ids, some doubled in place; the answer keeps each id once "
    "(first occurrence).",
)
class SeqtheticDeduplicate(SeqtheticTask):
    Params = DeduplicateParams

    def body(self, rng, n):
        p = self.params
        unique = p.unique_token_ratio.sample(rng, n) * p.length.sample(rng, n)
        count = unique.astype(np.int64)
        doubled = (p.repeat_token_ratio.sample(rng, n) * unique).astype(np.int64)
        y = self.distinct(rng, count)
        owner = y.seq_ids
        order = np.lexsort((rng.random(len(owner)), owner))  # which ids repeat: a random subset
        rank = np.empty(len(owner), np.int64)
        rank[order] = y.positions
        times = np.where(rank < doubled[owner], 2, 1)
        x = Ragged(
            np.repeat(y.values, times),
            np.bincount(owner, weights=times, minlength=n).astype(np.int64),
        )
        return [
            (x, False),
            (Ragged.constant(self.mark("answer"), np.ones(n, bool)), False),
            (y, True),
        ]

    def mean_body_length(self):
        p = self.params
        u = (p.unique_token_ratio.min + p.unique_token_ratio.max) / 2 * p.length.mean
        return 1 + u * (2 + (p.repeat_token_ratio.min + p.repeat_token_ratio.max) / 2)

    def solve(self, prompt):
        x = self.as_content(prompt, allow_empty=True)
        seen: dict[int, None] = {}
        for token in x.tolist():
            seen.setdefault(token)
        return np.asarray(list(seen), dtype=np.int64)


class DeleteParams(SeqtheticParams):
    should_delete_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Chance the query is a slice of the input (else ids absent from it).",
    )
    seq_to_delete_length: IntRange = Field(
        default_factory=lambda: IntRange(min=10, max=99), description="Query length in ids."
    )

    _q_positive = at_least("seq_to_delete_length")

    def distinct_ids(self) -> int:
        return (self.length.max + self.seq_to_delete_length.max) // 2

    @model_validator(mode="after")
    def _fits(self) -> DeleteParams:
        source = self.length.min // 2 - 1
        if self.should_delete_ratio > 0 and self.seq_to_delete_length.max > source:
            raise ValueError(
                f"seq_to_delete_length.max ({self.seq_to_delete_length.max}) exceeds the "
                f"input length length.min // 2 - 1 = {source}"
            )
        return self


@register_domain(
    "seqthetic_delete",
    family="seqthetic",
    reference=SOURCE + "delete.py)",
    description="Delete the multi-token query from the input: a slice of it, or ids it "
    "lacks (then unchanged).",
)
class SeqtheticDelete(SeqtheticTask):
    Params = DeleteParams
    markers = ("answer", "query", "empty")

    def body(self, rng, n):
        p = self.params
        total = p.length.sample(rng, n)
        size = p.seq_to_delete_length.sample(rng, n)
        delete = rng.random(n) < p.should_delete_ratio
        source = np.where(delete, total // 2 - 1, ((total + size) / 2 - 1).astype(np.int64))
        size = np.minimum(size, source)
        drawn = self.distinct(rng, source)
        start = randint(rng, np.zeros(n, np.int64), np.maximum(source - size, 0))
        pos, owner = drawn.positions, drawn.seq_ids
        in_slice = (pos >= start[owner]) & (pos < start[owner] + size[owner])
        order = np.lexsort((rng.random(len(owner)), owner))  # a random subset for the absent case
        rank = np.empty(len(owner), np.int64)
        rank[order] = pos
        chosen = np.where(delete[owner], in_slice, rank < size[owner])
        q_order = np.lexsort((np.where(delete[owner], pos, rank), owner))
        q_order = q_order[chosen[q_order]]
        query = Ragged(
            drawn.values[q_order], np.bincount(owner[chosen], minlength=n).astype(np.int64)
        )
        x = drawn.keep(
            ~(chosen & ~delete[owner])
        )  # the absent case removes the query from the input
        y = x.keep(~np.repeat(delete, x.lengths) | ~_in_slice(x, start, size))
        y = concat([y, Ragged.constant(self.mark("empty"), y.lengths == 0)])
        ones = np.ones(n, bool)
        return [
            (x, False),
            (Ragged.constant(self.mark("query"), ones), False),
            (query, False),
            (Ragged.constant(self.mark("answer"), ones), False),
            (y, True),
        ]

    def solve(self, prompt):
        parts = self.split_on(prompt, "query")
        if len(parts) != 2:
            raise Malformed("expected input <qry> query")
        x, q = self.as_content(parts[0], allow_empty=True), self.as_content(parts[1], "query")
        self.check_distinct(x)
        for at in range(len(x) - len(q) + 1):
            if np.array_equal(x[at : at + len(q)], q):
                return self.answer_tokens(np.concatenate([x[:at], x[at + len(q) :]]))
        if set(q.tolist()) & set(x.tolist()):
            raise Malformed("query ids partly in the input but not as one slice")
        return self.answer_tokens(x)


def _in_slice(x: Ragged, start: np.ndarray, size: np.ndarray) -> np.ndarray:
    owner, pos = x.seq_ids, x.positions
    return (pos >= start[owner]) & (pos < start[owner] + size[owner])
