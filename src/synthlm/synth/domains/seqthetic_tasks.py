"""Seqthetic's domains as its code draws them (isen-zhang/metalang, ``synthetic_data/seqthetic/
domains/{identity,duplicate,deduplicate,delete}.py``), which Seqthetic's flat configs select.

What sets them apart from synthlm's ``identity``/``duplicate``/``deduplicate``/``delete``:
content ids are drawn *without replacement* (``Vocabulary.sample_vocab``), ``length`` is what
Seqthetic's ``sequence_length`` means for that domain (the input for identity, the whole sample
for duplicate and delete, the basis of the unique-token count for deduplicate), and the
delimiter ``<ans>`` stands for Seqthetic's ``-1`` delimiter token (delete also marks its query
with ``<qry>``, where Seqthetic repeats ``-1``). Deliberate differences from
the code (its bugs) are listed in docs/papers/seqthetic.md.

``seqthetic_sort_numbers`` and ``seqthetic_ngram`` follow ``domains/sort_numbers.py`` (one token
id per number, unlike synthlm's digit-token ``sort_numbers``) and ``domains/ngram.py`` (one
dense random transition matrix per dataset, unlike synthlm's sparse implicit ``ngram``).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from synthlm.config import Section
from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.domains.sampling import distinct_sorted, randint, random_order_within
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged
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
        return self.answered(x, y)

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
        return self.answered(x, x.repeated(k))

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
        order = random_order_within(
            owner, rng.random(len(owner))
        )  # which ids repeat: a random subset
        rank = np.empty(len(owner), np.int64)
        rank[order] = y.positions
        times = np.where(rank < doubled[owner], 2, 1)
        x = Ragged(
            np.repeat(y.values, times),
            np.bincount(owner, weights=times, minlength=n).astype(np.int64),
        )
        return self.answered(x, y)

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
        deleting = delete[owner]
        keys = rng.random(len(owner))  # a random subset for the absent case ...
        absent = np.flatnonzero(~deleting)  # ... ranked within its (whole) sequences only
        rank = np.zeros(len(owner), np.int64)
        rank[absent[random_order_within(owner[absent], keys[absent])]] = pos[absent]
        from_start = pos - start[owner]
        chosen = np.where(
            deleting, (from_start >= 0) & (from_start < size[owner]), rank < size[owner]
        )
        picked = np.flatnonzero(chosen)  # the query: by position (delete) or by rank (absent)
        q_order = picked[np.lexsort((np.where(deleting, pos, rank)[picked], owner[picked]))]

        def keep(mask: np.ndarray) -> Ragged:
            return Ragged(drawn.values[mask], np.bincount(owner[mask], minlength=n))

        query = Ragged(drawn.values[q_order], np.bincount(owner[picked], minlength=n))
        x = keep(~(chosen & ~deleting))  # the absent case removes the query from the input
        y = keep(~chosen)  # the delete case removes the slice; the absent case keeps x
        ones = np.ones(n, bool)
        return [
            (x, False),
            (Ragged.constant(self.mark("query"), ones), False),
            (query, False),
            (Ragged.constant(self.mark("answer"), ones), False),
            (y, True),
            (Ragged.constant(self.mark("empty"), y.lengths == 0), True),
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


class SortNumbersParams(DomainParams):
    nums: IntRange = Field(
        default_factory=lambda: IntRange(min=1, max=9999),
        description="The numbers drawn from, inclusive; each number is its own token id "
        "(Seqthetic's nums = Range(min, max + 1), drawn from np.arange(min, max)).",
    )
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=256, max=1023),
        description="Numbers per input (Seqthetic's sequence_length).",
    )

    _positive = at_least("length")

    @model_validator(mode="after")
    def _enough_numbers(self) -> SortNumbersParams:
        count = self.nums.max - self.nums.min + 1
        if self.length.max > count:
            raise ValueError(
                f"length: an input draws up to {self.length.max} distinct numbers, but nums "
                f"{self.nums} holds only {count}"
            )
        return self


@register_domain(
    "seqthetic_sort_numbers",
    family="seqthetic",
    reference=SOURCE + "sort_numbers.py)",
    description="`length` distinct numbers, one token id per number, then <ans> and the "
    "same numbers sorted.",
)
class SeqtheticSortNumbers(Domain):
    """Seqthetic's SortNumbers: ``rng.choice(nums, L, replace=False)``, its delimiter, then
    ``np.sort``. The token id of a number is the number itself, as in Seqthetic's output."""

    Params = SortNumbersParams
    markers = ("answer",)

    @classmethod
    def alphabet_size(cls, params):
        return params.nums.max + 1

    def body(self, rng, n):
        p = self.params
        # a uniform subset, sorted (the answer), and the same numbers in a uniformly random
        # order (the input): what rng.choice(nums, L, replace=False) and np.sort give
        y = distinct_sorted(rng, p.length.sample(rng, n), p.nums.max - p.nums.min + 1)
        y.values += p.nums.min
        order = np.argsort(y.seq_ids + rng.random(len(y.values)))  # shuffled within sequences
        return self.answered(Ragged(y.values[order], y.lengths), y)

    def mean_body_length(self):
        return 2 * self.params.length.mean + 1

    def solve(self, prompt):
        x = self.as_content(prompt)
        if len(set(x.tolist())) != len(x):
            raise Malformed("input numbers repeat (Seqthetic draws them without replacement)")
        if x.min() < self.params.nums.min or not self.params.length.contains(len(x)):
            raise Malformed(f"input outside nums {self.params.nums} or length {self.params.length}")
        return np.sort(x)


DENSE_LIMIT = 1 << 24  # dense table entries: 128 MiB of int64 CDFs plus a guide table


class SeqtheticNgramParams(DomainParams):
    num_vocab: int = Field(100, ge=1, description="Token ids 0..num_vocab-1 (Seqthetic's).")
    gram_count: int = Field(
        2,
        ge=2,
        description="Seqthetic's gram_count: each token depends on the previous gram_count - 1; "
        "a sequence starts with gram_count uniform tokens.",
    )
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=256, max=1023),
        description="Sequence length (Seqthetic's sequence_length, max included; at least "
        "gram_count).",
    )

    _positive = at_least("length")

    @model_validator(mode="after")
    def _dense_fits(self) -> SeqtheticNgramParams:
        entries = self.num_vocab ** (self.gram_count - 1) * self.num_vocab
        if entries > DENSE_LIMIT:
            raise ValueError(
                f"num_vocab={self.num_vocab}, gram_count={self.gram_count}: the dense "
                f"transition table has num_vocab**gram_count = {entries} entries, more than "
                f"{DENSE_LIMIT} (Seqthetic stores it whole, and so does synthlm)"
            )
        return self


@register_domain(
    "seqthetic_ngram",
    family="seqthetic",
    reference=SOURCE + "ngram.py)",
    description="A random n-gram model with a dense uniform-random transition matrix, "
    "one per dataset.",
)
class SeqtheticNgram(Domain):
    """Seqthetic's NGram: one matrix of ``np.random.random`` rows, normalised, for the whole
    dataset; a sequence starts with ``gram_count`` uniform tokens and continues by drawing
    from the row of its last ``gram_count - 1`` tokens (index ``sum(w_i * V**i)``, oldest
    first). Only those ``V**(gram_count - 1)`` rows are ever read, so only they are drawn.

    Sampling is an inverse CDF for a batch of chains at once: the rows' CDFs as integers
    ``row * scale + floor(cdf * scale)`` form one sorted array, and a guide table (the first
    entry above each of ``>= V`` equal buckets of a row) starts every chain's search a step
    or two from its next token; the uniform draw is an integer in ``[0, scale)`` (the CDFs are
    resolved to ``1 / scale``, at least ``2**-38``)."""

    Params = SeqtheticNgramParams
    is_task = False
    block_tokens = 1 << 20  # one numpy step per position: wide batches amortise it

    @classmethod
    def alphabet_size(cls, params):
        return params.num_vocab

    def table(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """The flat integer CDFs, their guide table, scale and bucket shift, drawn once from
        the dataset key (the same matrix in every block and worker)."""
        if not hasattr(self, "_table"):
            v, rows = self.params.num_vocab, self.params.num_vocab ** (self.params.gram_count - 1)
            prob = np.random.default_rng(self.key).random((rows, v))
            prob /= prob.sum(axis=1)[:, None]
            cdf = np.cumsum(prob, axis=1)
            cdf /= cdf[:, -1:]  # as numpy's choice(p=...) does
            scale_bits = 62 - int(rows).bit_length()
            bucket_bits = max(int(v - 1).bit_length(), 0)  # at least v buckets per row
            scale = 1 << scale_bits
            flat = (cdf * scale).astype(np.int64)
            flat[:, -1] = scale
            flat += np.arange(rows, dtype=np.int64)[:, None] * scale
            flat = flat.reshape(-1)
            # guide[row, b]: the first entry above the bucket's lower edge, where a search for
            # any point of the bucket can start (a guide table: O(1) expected steps per draw)
            edges = np.arange(rows << bucket_bits, dtype=np.int64) << (scale_bits - bucket_bits)
            guide = np.searchsorted(flat, edges, side="right").astype(np.int32)
            self._table = (flat, guide, scale, scale_bits - bucket_bits)
        return self._table

    def mean_body_length(self):
        return max(self.params.length.mean, self.params.gram_count)

    def body(self, rng, n):
        p, (flat, guide, scale, shift) = self.params, self.table()
        v, g = p.num_vocab, p.gram_count
        lengths = np.maximum(p.length.sample(rng, n), g)  # the first gram_count always written
        order = np.argsort(-lengths, kind="stable")  # longest first: active chains are a prefix
        steps = int(lengths.max())
        out = np.zeros((steps, n), dtype=np.int64)
        out[:g] = rng.integers(0, v, size=(g, n))
        context = np.zeros(n, dtype=np.int64)
        for i in range(1, g):
            context += out[i] * v ** (i - 1)
        active = np.searchsorted(-lengths[order], -np.arange(steps), side="left")
        top = v ** (g - 2)
        for t in range(g, steps):
            a = int(active[t])  # chains longer than t
            c = context[:a]
            base = c * scale
            query = base + rng.integers(0, scale, size=a)  # u * scale, u uniform in [0, 1)
            at = guide[query >> shift]
            more = np.flatnonzero(flat[at] <= query)  # numpy's searchsorted(side="right")
            while len(more):
                at[more] += 1
                more = more[flat[at[more]] <= query[more]]
            token = at - c * v
            out[t, :a] = token
            context[:a] = token if g == 2 else c // v + token * top
        sized = out.T[np.argsort(order, kind="stable")]
        keep = np.arange(steps) < lengths[:, None]
        return [(Ragged(sized[keep], lengths), True)]

    def check_language(self, body):
        p = self.params
        self.as_content(body, "sequence")
        if not max(p.length.min, p.gram_count) <= len(body) <= max(p.length.max, p.gram_count):
            raise Malformed(f"length {len(body)} outside {p.length} (at least gram_count)")
