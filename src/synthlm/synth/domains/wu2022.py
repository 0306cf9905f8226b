"""Wu et al. 2022 ("Insights into pre-training via simpler synthetic tasks") exactly as their
generator draws them: felixzli/synthetic_pretraining, ``simpler_tasks_data_gen/tasks_with_tokens.py``.

    promoter  seq  <ans>  output                  (unary tasks)
    promoter  seq  <sep>  query  <ans>  output    (binary tasks; <sep> is Wu's ARG_DIVIDER)

``length`` is Wu's ``length_range``: the length of the whole input (``seq <sep> query`` for binary
tasks), enforced by the same rejection sampling as the original. An empty output is written as
``<empty>`` (Wu's ADD_TO_OUTPUT_IF_OUTPUT_EMPTY); the task-name prefix of the original is the
promoter. Each generator below follows the named function of that file; differences are listed in
docs/papers/wu2022.md.
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.domains.base import first_occurrence_order, with_empty
from synthlm.synth.domains.sampling import (
    cut_slice,
    find_first,
    first_match,
    partition,
    pick_distinct,
    pieces,
    randint,
    shuffle_within,
)
from synthlm.synth.params import IntRange
from synthlm.synth.ragged import Ragged, concat, digits
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabParams

SOURCE = (
    "Wu et al. 2022, felixzli/synthetic_pretraining simpler_tasks_data_gen/tasks_with_tokens.py"
)


def ref(function: str) -> str:
    return f"{SOURCE} ({function})"


class WuParams(VocabParams):
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=10, max=50),
        description="Wu's length_range: tokens in the whole input (seq, <sep> and query).",
    )
    least: ClassVar[int] = 1  # smallest length.min the original generator accepts
    least_max: ClassVar[int] = 1  # smallest length.max it accepts
    distinct_share: ClassVar[int] = 0  # draws up to length.max // share distinct ids (0: none)
    gap: ClassVar[int] = 0  # smallest length.max - length.min
    least_order: ClassVar[bool] = False  # wu_sort's bound on the order length

    @model_validator(mode="after")
    def _wu_bounds(self) -> WuParams:
        if self.length.min < self.least or self.length.max < self.least_max:
            raise ValueError(
                f"length: this task needs length.min >= {self.least} and length.max >= "
                f"{self.least_max} (the bounds of Wu et al.'s generator)"
            )
        if self.length.max - self.length.min < self.gap:
            raise ValueError(
                f"length: this task needs length.max - length.min >= {self.gap} (Wu et "
                f"al.'s randint bounds)"
            )
        if self.least_order and self.length.min // 2 > (self.length.max - 1) // 2:
            raise ValueError(
                "length: needs length.min // 2 <= (length.max - 1) // 2 (Wu et al.'s "
                "order-length bounds)"
            )
        need = self.length.max // self.distinct_share if self.distinct_share else 0
        if need > self.vocab.support:
            raise ValueError(
                f"vocab: draws up to {need} distinct ids, but only {self.vocab.support} "
                f"can be drawn"
            )
        return self


class AtLeast2(WuParams):
    least: ClassVar[int] = 2
    least_max: ClassVar[int] = 4


class QueryParams(AtLeast2):
    gap: ClassVar[int] = 1


class SortParams(AtLeast2):
    least_order: ClassVar[bool] = True


class RemoveParams(AtLeast2):
    gap: ClassVar[int] = 2


class AtLeast3(WuParams):
    least: ClassVar[int] = 3
    least_max: ClassVar[int] = 3


class SetOpParams(AtLeast3):
    distinct_share: ClassVar[int] = 2


class AtLeast4(WuParams):
    least: ClassVar[int] = 4
    least_max: ClassVar[int] = 4


class ReplaceManyParams(WuParams):
    least_max: ClassVar[int] = 7
    distinct_share: ClassVar[int] = 3


class RearrangeParams(WuParams):
    distinct_share: ClassVar[int] = 2


class WuTask(Domain):
    """Shared layout and checking; subclasses implement ``draw``, ``outputs`` and ``answer``."""

    Params = WuParams
    binary = True
    markers: tuple[str, ...] = ("answer", "sep", "empty")

    def sampler(self) -> TokenSampler:
        if not hasattr(self, "_sampler"):
            self._sampler = TokenSampler(self.params.vocab)
        return self._sampler

    def tokens(self, rng, lengths) -> Ragged:
        return Ragged(self.sampler().sample(rng, int(np.sum(lengths))), lengths)

    def draw(self, rng: np.random.Generator, n: int) -> tuple[Ragged, Ragged | None]:
        raise NotImplementedError

    def outputs(self, x: Ragged, q: Ragged | None) -> Ragged:
        return Ragged.from_list(
            [
                self.answer(a, b)
                for a, b in zip(pieces(x), pieces(q) if q is not None else [None] * len(x))
            ]
        )

    def answer(self, x: np.ndarray, q: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def examples(self, rng, n) -> tuple[Ragged, Ragged | None, Ragged]:
        """Inputs and outputs of ``n`` examples (a task may compute both from its draws)."""
        x, q = self.draw(rng, n)
        return x, q, self.outputs(x, q)

    def body(self, rng, n):
        x, q, y = self.examples(rng, n)
        if "empty" in self.markers:
            y = with_empty(y, self.mark("empty"))
        ones = np.ones(n, dtype=bool)
        parts = [(x, False)]
        if q is not None:
            parts += [(Ragged.constant(self.mark("sep"), ones), False), (q, False)]
        return [*parts, (Ragged.constant(self.mark("answer"), ones), False), (y, True)]

    def mean_body_length(self):
        return 2 + 2 * self.params.length.mean

    def solve(self, prompt):
        if self.binary:
            parts = self.split_on(prompt, "sep")
            if len(parts) != 2:
                raise Malformed("expected seq <sep> query")
            x = self.as_content(parts[0], "seq", allow_empty=True)
            q = self.as_content(parts[1], "query", allow_empty=True)
            size = len(x) + 1 + len(q)
        else:
            x, q = self.as_content(prompt, "seq"), None
            size = len(x)
        if not self.params.length.contains(size):
            raise Malformed(f"input of {size} tokens outside length {self.params.length}")
        out = np.asarray(self.answer(x, q), dtype=np.int64)
        return self.answer_tokens(out) if "empty" in self.markers else out


def _accept(rng, n: int, candidate, low: int, high: int) -> tuple[Ragged, Ragged]:
    """Wu's outer rejection loop: redraw whole examples until ``len(seq) + 1 + len(query)`` lies
    in ``[low, high]``; candidates are drawn in batches, each sized by the acceptance rate seen
    so far, and the accepted ones are kept in order."""
    xs, qs, have, drawn = [], [], 0, 0
    while have < n:
        rate = max(have / drawn, 0.02) if drawn else 1.0
        count = int((n - have) / rate * 1.1) + 16
        x, q = candidate(rng, count)
        ok = (x.lengths + 1 + q.lengths >= low) & (x.lengths + 1 + q.lengths <= high)
        index = np.flatnonzero(ok)[: n - have]
        xs.append(x.take(index))
        qs.append(q.take(index))
        have, drawn = have + len(index), drawn + count
    return _cat(xs), _cat(qs)


def _cat(parts: list[Ragged]) -> Ragged:
    return Ragged(
        np.concatenate([p.values for p in parts]), np.concatenate([p.lengths for p in parts])
    )


class QueryTask(WuTask):
    """Tasks sampled by ``generate_delete_data`` and friends: with probability ``p_present`` the
    query is planted one or more times (``generate_at_least_one_query_in_seq_data``), else it is a
    random string that does not occur (``generate_no_query_in_seq_data``)."""

    Params = QueryParams
    p_present = 0.75

    def draw(self, rng, n):
        p = self.params
        return _accept(rng, n, self._candidates, p.length.min, p.length.max)

    def _candidates(self, rng, count):
        present = rng.random(count) > 1 - self.p_present
        x1, q1 = self._planted(rng, int(present.sum()))
        x2, q2 = self._absent(rng, int((~present).sum()))
        return _merge(present, x1, x2), _merge(present, q1, q2)

    def _planted(self, rng, n):
        top = self.params.length.max - 1  # max_total_chars
        max_q = int(top / 3)  # query_seq_max_proportion = 0.5
        q = randint(rng, np.ones(n, np.int64), np.full(n, max(max_q, 1)))
        s = randint(rng, 2 * q, top - q)
        occ = randint(rng, np.ones(n, np.int64), s // q)
        gaps = partition(rng, s - occ * q, occ + 1, nonzero=False)
        query = self.tokens(rng, q)
        seg_len = np.empty(
            int(gaps.lengths.sum() + occ.sum()), np.int64
        )  # gap, q, gap, q, ..., gap
        seg_owner = np.repeat(np.arange(n), 2 * occ + 1)
        seg_rank = np.arange(len(seg_len)) - np.repeat(
            np.r_[0, np.cumsum(2 * occ + 1)[:-1]], 2 * occ + 1
        )
        is_gap = seg_rank % 2 == 0
        seg_len[is_gap] = gaps.values
        seg_len[~is_gap] = q[seg_owner[~is_gap]]
        segments = Ragged(np.zeros(int(seg_len.sum()), np.int64), seg_len)
        owner = np.repeat(seg_owner, seg_len)
        from_query = np.repeat(~is_gap, seg_len)
        values = self.sampler().sample(rng, len(owner))
        values[from_query] = query.values[
            query.starts[owner[from_query]] + segments.positions[from_query]
        ]
        return Ragged(values, s), query

    def _absent(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        longer = rng.random(n) < 0.01
        q = np.where(longer, randint(rng, np.full(n, low + 1), np.full(n, max(high, low + 1))), 0)
        s = np.where(
            longer,
            randint(rng, np.zeros(n, np.int64), np.maximum(q - 1, 0)),
            randint(rng, np.full(n, low), np.full(n, high)),
        )
        q = np.where(longer, q, randint(rng, np.full(n, low), s))
        x, query = self.tokens(rng, s), self.tokens(rng, q)
        while True:  # redraw pairs where the query occurs (Wu compares list reprs; see docs)
            bad = (first_match(x, query) >= 0) & ~longer
            if not bad.any():
                return x, query
            x = _replace_rows(x, bad, self.tokens(rng, s[bad]))
            query = _replace_rows(query, bad, self.tokens(rng, q[bad]))


def _merge(first: np.ndarray, a: Ragged, b: Ragged) -> Ragged:
    """Rows of ``a`` where ``first`` is true and of ``b`` elsewhere, in row order."""
    lengths = np.zeros(len(first), np.int64)
    lengths[first], lengths[~first] = a.lengths, b.lengths
    out = Ragged(np.zeros(int(lengths.sum()), np.int64), lengths)
    owner = out.seq_ids
    mask = first[owner]
    out.values[mask], out.values[~mask] = a.values, b.values
    return out


def _pop_matches(x: Ragged, q: Ragged) -> Ragged:
    """Per row, the stack pass of ``WuFilter``: push each token, pop ``len(q)`` tokens whenever the
    stack ends with ``q`` (``q`` non-empty). Rows run in lockstep, longest first, so the rows still
    reading at step ``t`` are a prefix and most updates are slices."""
    by_length = np.argsort(-x.lengths, kind="stable")
    x, q = x.take(by_length), q.take(by_length)
    m, width = len(x), int(x.lengths[0])
    seq = np.zeros((width, m), np.int64)  # seq[t] is step t's token of every row
    seq[x.positions, x.seq_ids] = x.values
    query = np.zeros((m, int(q.lengths.max())), np.int64)
    query[q.seq_ids, q.positions] = q.values
    size, ks = q.lengths, np.arange(query.shape[1])
    ends = seq == q.last()  # a token that may complete the query
    rel = ks - size[:, None]  # window offsets from the stack top; past the query: masked
    outside = rel >= 0
    base = np.arange(m) * width
    floor, top = base + size, base.copy()  # top: the next free stack slot of every row
    stack = np.zeros(m * width + len(ks), np.int64)  # padded: masked slots may look past a row
    reading = np.searchsorted(-x.lengths, -np.arange(width), side="left")  # rows longer than t
    for t, k in enumerate(reading.tolist()):
        head = top[:k]
        stack[head] = seq[t, :k]
        head += 1
        maybe = np.flatnonzero(ends[t, :k] & (head >= floor[:k]))
        if len(maybe):
            same = stack[top[maybe, None] + rel[maybe]] == query[maybe]
            found = maybe[(same | outside[maybe]).all(axis=1)]
            top[found] -= size[found]
    depth = top - base
    out = Ragged(np.zeros(int(depth.sum()), np.int64), depth)
    out.values = stack[base[out.seq_ids] + out.positions]
    back = np.empty(m, np.int64)
    back[by_length] = np.arange(m)
    return out.take(back)


def _put_rows(x: Ragged, updates: list[tuple[np.ndarray, Ragged]]) -> Ragged:
    """``x`` with the rows ``index`` replaced by ``rows``, for each ``(index, rows)``."""
    index = np.concatenate([i for i, _ in updates]) if updates else np.zeros(0, np.int64)
    if not len(index):
        return x
    new = _cat([r for _, r in updates])
    lengths = x.lengths.copy()
    lengths[index] = new.lengths
    replaced = np.zeros(len(x), dtype=bool)
    replaced[index] = True
    out = Ragged(np.empty(int(lengths.sum()), np.int64), lengths)
    from_x = np.repeat(~replaced, lengths)
    out.values[from_x] = x.values[np.repeat(~replaced, x.lengths)]
    starts = out.starts[index]  # destination of each replaced row's items, in update order
    out.values[np.repeat(starts, new.lengths) + new.positions] = new.values
    return out


def _replace_rows(x: Ragged, rows: np.ndarray, new: Ragged) -> Ragged:
    return _merge(~rows, x.take(np.flatnonzero(~rows)), new)


@register_domain(
    "wu_delete",
    family="wu2022",
    reference=ref("generate_delete_data, delete"),
    description="Remove the first occurrence of the multi-token query (Wu et al. 2022).",
)
class WuDelete(QueryTask):
    def outputs(self, x, q):
        return cut_slice(x, first_match(x, q), q.lengths)

    def answer(self, x, q):
        at = find_first(x, q)
        return x if at < 0 else np.concatenate([x[:at], x[at + len(q) :]])


@register_domain(
    "wu_filter",
    family="wu2022",
    reference=ref("generate_filter_data, filt"),
    description="Delete the first occurrence of the query again and again until none is left.",
)
class WuFilter(QueryTask):
    def outputs(self, x, q):
        """``filt`` deletes the leftmost occurrence until none is left. That equals one left-to-right
        pass that pushes each token on a stack and pops the query whenever the stack ends with it
        (the first pop is always at the end of the leftmost occurrence, after which both see
        ``seq[:at] + seq[at + len(query):]``); the pass runs for all rows at once, one position a
        step. One-token queries just drop every equal token."""
        head = q.values[np.minimum(q.starts, max(len(q.values) - 1, 0))] if len(q.values) else 0
        single = np.repeat(q.lengths == 1, x.lengths)
        x = x.keep(~single | (x.values != np.repeat(head, x.lengths)))
        rows = np.flatnonzero((q.lengths > 1) & (first_match(x, q) >= 0))
        if not len(rows):
            return x
        return _put_rows(x, [(rows, _pop_matches(x.take(rows), q.take(rows)))])

    def answer(self, x, q):
        while True:
            at = find_first(x, q)
            if at < 0 or not len(q):
                return x
            x = np.concatenate([x[:at], x[at + len(q) :]])


@register_domain(
    "wu_get_index",
    family="wu2022",
    reference=ref("generate_get_index_data, get_index"),
    description="Index of the first occurrence of the query in decimal digits, or -1.",
)
class WuGetIndex(QueryTask):
    markers = ("answer", "sep", "minus")
    uses_digits = True

    def outputs(self, x, q):
        at = first_match(x, q)
        number = digits(np.maximum(at, 0), self.layout.digit(0))
        minus = Ragged.constant(self.mark("minus"), at < 0)
        return concat(
            [
                minus,
                Ragged(
                    np.where(
                        np.repeat(at < 0, number.lengths), self.layout.digit(1), number.values
                    ),
                    number.lengths,
                ),
            ]
        )

    def answer(self, x, q):
        at = find_first(x, q)
        return np.r_[self.mark("minus"), self.layout.digit(1)] if at < 0 else self.number_tokens(at)


@register_domain(
    "wu_search",
    family="wu2022",
    reference=ref("generate_search_data, search"),
    description="<yes> if the query occurs in the seq as a contiguous slice, else <no>.",
)
class WuSearch(QueryTask):
    markers = ("answer", "sep", "yes", "no")
    p_present = 0.5

    def outputs(self, x, q):
        found = first_match(x, q) >= 0
        return Ragged(
            np.where(found, self.mark("yes"), self.mark("no")), np.ones(len(x), dtype=np.int64)
        )

    def answer(self, x, q):
        return np.array([self.mark("yes" if find_first(x, q) >= 0 else "no")], dtype=np.int64)


@register_domain(
    "wu_sort",
    family="wu2022",
    reference=ref("generate_sort_data, sort"),
    description="Sort the seq by the position of each token in the query permutation.",
)
class WuSort(WuTask):
    Params = SortParams

    def draw(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        k = randint(rng, np.full(n, low // 2), np.full(n, (high - 1) // 2))
        order = self.tokens(rng, k)
        m = randint(rng, k, high - 1 - k)
        parts = partition(rng, m, k, nonzero=True)  # one part per order slot, each >= 1 token
        owner = np.repeat(np.arange(n), k)
        chars = order.values[
            order.starts[owner] + np.floor(rng.random(len(owner)) * k[owner]).astype(np.int64)
        ]
        return shuffle_within(rng, Ragged(np.repeat(chars, parts.values), m)), order

    def outputs(self, x, q):
        span, positions = self.content, q.positions
        order_keys = q.seq_ids * span + q.values
        width = int(q.lengths.max()) + 1 if len(q.values) else 1
        # per key, its last position comes last (one stable sort of a packed key, as lexsort)
        last = np.argsort(order_keys * width + positions, kind="stable")
        keys_sorted = order_keys[last]
        final = np.r_[keys_sorted[1:] != keys_sorted[:-1], True]
        keys, ranks = keys_sorted[final], positions[last][final]
        rank = ranks[np.searchsorted(keys, x.seq_ids * span + x.values)]
        order = np.argsort(x.seq_ids * width + rank, kind="stable")  # ties keep seq order
        return Ragged(x.values[order], x.lengths.copy())

    def answer(self, x, q):
        rank = {int(t): i for i, t in enumerate(q)}
        if any(int(t) not in rank for t in x):
            raise Malformed("a seq token is missing from the order query")
        return np.asarray(sorted(x.tolist(), key=rank.__getitem__), dtype=np.int64)


class ReplaceBase(WuTask):
    def outputs(self, x, q):
        span = self.content
        keys = q.values[0::2] + q.seq_ids[0::2] * span
        values = q.values[1::2]
        x_keys = x.seq_ids * span + x.values
        order = np.argsort(keys, kind="stable")
        at = np.minimum(np.searchsorted(keys[order], x_keys), len(keys) - 1)
        hit = keys[order][at] == x_keys
        return Ragged(np.where(hit, values[order][at], x.values), x.lengths.copy())

    def answer(self, x, q):
        if len(q) % 2:
            raise Malformed("the query must be key value pairs")
        table = {int(q[i]): int(q[i + 1]) for i in range(0, len(q), 2)}
        return np.asarray([table.get(int(t), int(t)) for t in x], dtype=np.int64)


@register_domain(
    "wu_replace",
    family="wu2022",
    reference=ref("generate_replace_data, replace"),
    description="Replace every occurrence of key (a token of the seq) by value; query is "
    "'key value'.",
)
class WuReplace(ReplaceBase):
    Params = AtLeast4
    markers = ("answer", "sep")

    def draw(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        x = self.tokens(rng, randint(rng, np.full(n, low - 3), np.full(n, high - 3)))
        keys = pick_distinct(rng, x, np.ones(n, np.int64), self.content)
        return x, _pairs(keys, self.sampler().sample(rng, n))


def _pairs(keys: Ragged, values: np.ndarray) -> Ragged:
    return Ragged(np.stack([keys.values, values], axis=1).reshape(-1), 2 * keys.lengths)


@register_domain(
    "wu_replace_many",
    family="wu2022",
    reference=ref("generate_replace_many_data, replace_many"),
    description="Replace several distinct seq tokens at once; query is 'k1 v1 k2 v2 ...'.",
)
class WuReplaceMany(ReplaceBase):
    Params = ReplaceManyParams
    markers = ("answer", "sep")

    def draw(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        r = randint(rng, np.full(n, 2), np.full(n, max((high - 1) // 3, 2)))
        s = randint(rng, np.maximum(r, low - 1 - 2 * r), high - 1 - 2 * r)
        seed = self.sampler().sample_distinct(rng, r)
        rest = self.tokens(rng, s - r)
        x = shuffle_within(rng, concat([seed, rest]))
        keys = pick_distinct(rng, x, r, self.content)
        return x, _pairs(keys, self.sampler().sample(rng, int(r.sum())))


@register_domain(
    "wu_count",
    family="wu2022",
    reference=ref("generate_count_data, count"),
    description="How often the one-token query occurs in the seq (decimal digits).",
)
class WuCount(WuTask):
    Params = AtLeast3
    markers = ("answer", "sep")
    uses_digits = True

    def draw(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        s = randint(rng, np.full(n, low - 2), np.full(n, high - 2))
        query = self.sampler().sample(rng, n)
        c = randint(rng, np.zeros(n, np.int64), s)
        planted = Ragged(np.repeat(query, c), c)
        x = shuffle_within(rng, concat([planted, self.tokens(rng, s - c)]))
        return x, Ragged(query, np.ones(n, np.int64))

    def outputs(self, x, q):
        return digits(x.count(x.values == np.repeat(q.values, x.lengths)), self.layout.digit(0))

    def answer(self, x, q):
        if len(q) != 1:
            raise Malformed("the query is one token")
        return self.number_tokens(int(np.sum(x == q[0])))


class RunsTask(WuTask):
    """Inputs of ``_generate_deduplicate_data``: a random number of runs of random tokens."""

    binary = False
    markers = ("answer",)
    shuffled = False

    def draw(self, rng, n):
        size = randint(rng, np.full(n, self.params.length.min), np.full(n, self.params.length.max))
        runs = randint(rng, np.ones(n, np.int64), size)
        parts = partition(rng, size, runs, nonzero=True)
        x = Ragged(np.repeat(self.sampler().sample(rng, len(parts.values)), parts.values), size)
        return (shuffle_within(rng, x) if self.shuffled else x), None


@register_domain(
    "wu_deduplicate",
    family="wu2022",
    reference=ref("generate_deduplicate_data, deduplicate"),
    description="Collapse runs of the same token (a a b b a -> a b a).",
)
class WuDeduplicate(RunsTask):
    def outputs(self, x, q):
        keep = np.ones(len(x.values), dtype=bool)
        keep[1:] = x.values[1:] != x.values[:-1]
        keep[x.starts] = True
        return x.keep(keep)

    def answer(self, x, q):
        return x[np.r_[True, x[1:] != x[:-1]]]


@register_domain(
    "wu_set",
    family="wu2022",
    reference=ref("generate_set_data, set_task"),
    description="Unique tokens in order of first appearance (runs shuffled as in Wu's sampler).",
)
class WuSet(RunsTask):
    shuffled = True

    def outputs(self, x, q):
        return x.keep(x.first_occurrences(self.content))

    def answer(self, x, q):
        return first_occurrence_order(x)


@register_domain(
    "wu_longest_word",
    family="wu2022",
    reference=ref("generate_longest_word_data, longest_word"),
    description="The first longest word of words split by <w> (Wu's WORD_DIVIDER).",
)
class WuLongestWord(WuTask):
    binary = False
    markers = ("answer", "word")

    def draw(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        words = randint(rng, np.ones(n, np.int64), np.full(n, max(high // 2, 1)))
        chars = randint(rng, np.maximum(low - (words - 1), words), high - (words - 1))
        lengths = partition(rng, chars, words, nonzero=True)
        w = self.tokens(rng, lengths.values)
        w.lengths = lengths.values
        last = np.zeros(len(lengths.values), dtype=bool)
        last[np.cumsum(words) - 1] = True
        joined = concat([w, Ragged.constant(self.mark("word"), ~last)])
        return Ragged(
            joined.values, np.add.reduceat(joined.lengths, np.r_[0, np.cumsum(words)[:-1]])
        ), None

    def outputs(self, x, q):
        """Per row, the first longest word, in one pass over the tokens: words are the runs
        between ``<w>`` markers (every drawn row has at least one word)."""
        marker = x.values == self.mark("word")
        start = np.zeros(len(x.values), dtype=bool)  # the first token of every word
        start[x.starts] = True
        start[1:] |= marker[:-1]
        word = np.cumsum(start) - 1
        size = np.bincount(word, weights=~marker).astype(np.int64)
        owner = x.seq_ids[start]
        best = np.maximum.reduceat(size, word[x.starts])
        longest = np.flatnonzero(size == best[owner])
        first = longest[np.r_[True, owner[longest][1:] != owner[longest][:-1]]]
        chosen = np.zeros(len(size), dtype=bool)
        chosen[first] = True
        return x.keep(chosen[word] & ~marker)

    def answer(self, x, q):
        best, current = [], []
        for token in x.tolist():
            if token == self.mark("word"):
                current = []
                continue
            current = [*current, token]
            if len(current) > len(best):
                best = current
        return np.asarray(best, dtype=np.int64)

    def solve(self, prompt):
        x = np.asarray(prompt, dtype=np.int64)
        for word in self.split_on(x, "word"):
            self.as_content(word, "word")
        if not self.params.length.contains(len(x)):
            raise Malformed(f"input of {len(x)} tokens outside length {self.params.length}")
        return self.answer(x, None)


class SetOpTask(WuTask):
    """``generate_set_op_data``: two seqs drawn from a shared pool of ``total // 2`` distinct ids.
    The output is the set, written in ascending id order (Wu returns ``list(set(...))``, whose
    order is CPython's hash-table order; see docs/papers/wu2022.md)."""

    Params = SetOpParams

    def draw(self, rng, n):
        pool, a, b = self._slots(rng, n)
        return _from_slots(pool, a), _from_slots(pool, b)

    def _slots(self, rng, n) -> tuple[Ragged, Ragged, Ragged]:
        """The per-example pool of distinct ids and, for each seq, the pool slot of every token
        (a slot is a flat index into ``pool.values``)."""
        low, high = self.params.length.min, self.params.length.max
        total = randint(rng, np.full(n, low - 1), np.full(n, high - 1))
        s1 = randint(rng, np.zeros(n, np.int64), total)
        pool = self.sampler().sample_distinct(rng, np.maximum(total // 2, 1))

        def from_pool(lengths):
            owner = np.repeat(np.arange(n), lengths)
            pick = np.floor(rng.random(len(owner)) * pool.lengths[owner]).astype(np.int64)
            return Ragged(pool.starts[owner] + pick, lengths)

        return pool, from_pool(s1), from_pool(total - s1)

    def examples(self, rng, n):
        """Set algebra on pool slots: slots are distinct per example (the pool has no repeated
        id), so membership is one boolean array over the pool, no per-example sets or hashing."""
        pool, a, b = self._slots(rng, n)
        in_a, in_b = np.zeros(len(pool.values), bool), np.zeros(len(pool.values), bool)
        in_a[a.values], in_b[b.values] = True, True
        chosen = np.flatnonzero(self.keep_slot(in_a, in_b))
        owner = pool.seq_ids[chosen]
        keys = np.sort(owner * self.content + pool.values[chosen])  # ascending ids per example
        y = Ragged(keys % self.content, np.bincount(owner, minlength=n).astype(np.int64))
        return _from_slots(pool, a), _from_slots(pool, b), y

    @staticmethod
    def keep_slot(in_a: np.ndarray, in_b: np.ndarray) -> np.ndarray:
        """The set operation on membership masks (over the pool, or one example's ids)."""
        raise NotImplementedError

    def answer(self, x, q):
        """The same operation for one example: membership masks over its ids, ascending."""
        ids = np.union1d(x, q).astype(np.int64)
        return ids[self.keep_slot(np.isin(ids, x), np.isin(ids, q))]


def _from_slots(pool: Ragged, slots: Ragged) -> Ragged:
    return Ragged(pool.values[slots.values], slots.lengths)


@register_domain(
    "wu_union",
    family="wu2022",
    reference=ref("generate_set_op_data, union"),
    description="set(seq1) | set(seq2), ascending ids.",
)
class WuUnion(SetOpTask):
    @staticmethod
    def keep_slot(in_a, in_b):
        return in_a | in_b


@register_domain(
    "wu_intersect",
    family="wu2022",
    reference=ref("generate_set_op_data, intersect"),
    description="set(seq1) & set(seq2), ascending ids.",
)
class WuIntersect(SetOpTask):
    @staticmethod
    def keep_slot(in_a, in_b):
        return in_a & in_b


@register_domain(
    "wu_set_1_minus_2",
    family="wu2022",
    reference=ref("generate_set_op_data, set_1_minus_2"),
    description="set(seq1) - set(seq2), ascending ids.",
)
class WuSetOneMinusTwo(SetOpTask):
    @staticmethod
    def keep_slot(in_a, in_b):
        return in_a & ~in_b


@register_domain(
    "wu_set_2_minus_1",
    family="wu2022",
    reference=ref("generate_set_op_data, set_2_minus_1"),
    description="set(seq2) - set(seq1), ascending ids.",
)
class WuSetTwoMinusOne(SetOpTask):
    @staticmethod
    def keep_slot(in_a, in_b):
        return in_b & ~in_a


@register_domain(
    "wu_remove_fl_occ",
    family="wu2022",
    reference=ref("gen_remove_fl_occ_data, remove_fl_occ"),
    description="MBPP task: remove the first and the last occurrence of the query token.",
)
class WuRemoveFirstLast(WuTask):
    Params = RemoveParams

    def draw(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        x = self.tokens(rng, randint(rng, np.full(n, low), np.full(n, high - 2)))
        pick = np.floor(rng.random(n) * x.lengths).astype(np.int64)
        return x, Ragged(x.gather(np.arange(n), pick), np.ones(n, np.int64))

    def solve(self, prompt):
        parts = self.split_on(prompt, "sep")
        if len(parts) != 2:
            raise Malformed("expected seq <sep> query")
        x, q = self.as_content(parts[0], "seq"), self.as_content(parts[1], "query")
        return self.answer_tokens(self.answer(x, q))

    def outputs(self, x, q):
        hit = x.values == np.repeat(q.values, x.lengths)
        owner, pos = x.seq_ids[hit], x.positions[hit]
        first = np.full(len(x), -1)
        last = np.full(len(x), -1)
        np.maximum.at(last, owner, pos)
        first[owner[::-1]] = pos[::-1]  # the last write per owner is its first hit
        p, o = x.positions, x.seq_ids
        return x.keep((p != first[o]) & (p != last[o]))

    def answer(self, x, q):
        hits = np.flatnonzero(x == q[0])
        drop = {int(hits[0]), int(hits[-1])} if len(hits) else set()
        return np.asarray([t for i, t in enumerate(x.tolist()) if i not in drop], dtype=np.int64)


@register_domain(
    "wu_rearrange_string",
    family="wu2022",
    reference=ref("gen_rearrange_string_data, rearrange_string"),
    description="MBPP task: reorder so no two neighbours are equal (greedy by count), or <empty>.",
)
class WuRearrangeString(WuTask):
    Params = RearrangeParams
    binary = False

    def draw(self, rng, n):
        low, high = max(self.params.length.min, 1), self.params.length.max
        size = randint(rng, np.full(n, low), np.full(n, high))
        pool = self.sampler().sample_distinct(
            rng, randint(rng, np.ones(n, np.int64), np.maximum(size // 2, 1))
        )
        owner = np.repeat(np.arange(n), size)
        pick = np.floor(rng.random(len(owner)) * pool.lengths[owner]).astype(np.int64)
        return Ragged(pool.values[pool.starts[owner] + pick], size), None

    def answer(self, x, q):
        counts = Counter(x.tolist())
        heap = [(-c, t) for t, c in counts.items()]
        heapq.heapify(heap)
        if -heap[0][0] * 2 > len(x) + 1:
            return np.zeros(0, np.int64)
        out: list[int] = []
        while len(heap) >= 2:
            (c1, t1), (c2, t2) = heapq.heappop(heap), heapq.heappop(heap)
            out += [t1, t2]
            for c, t in ((c1 + 1, t1), (c2 + 1, t2)):
                if c:
                    heapq.heappush(heap, (c, t))
        return np.asarray(out + ([heap[0][1]] if heap else []), dtype=np.int64)

    def outputs(self, x, q):
        """The heap loop of ``rearrange_string`` for all rows in lockstep: a row's distinct ids are
        the columns of a matrix of keys ``count * width + (width - 1 - column)`` (columns in id
        order), so one ``argmax`` is the heap's pop (largest count, then smallest id) and a
        decrement subtracts ``width``; a key below ``width`` is an id used up. When the output is
        not empty (largest count <= ceil(n / 2)) that bound holds after every step (the third
        largest count is at most n / 3), so the loop pops two ids exactly n // 2 times and leaves
        one id when n is odd: the output has all n tokens. Rows are ordered by their number of
        steps so the rows still popping at step ``t`` are a prefix."""
        span = self.content
        keys = np.sort(x.seq_ids * span + x.values)
        new = np.r_[True, keys[1:] != keys[:-1]]
        ids, counts = keys[new], np.diff(np.r_[np.flatnonzero(new), len(keys)])
        row = ids // span
        per_row = np.bincount(row, minlength=len(x))
        width = int(per_row.max())
        col = np.arange(len(ids)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        top = np.zeros(len(x), np.int64)
        np.maximum.at(top, row, counts)
        feasible = 2 * top <= x.lengths + 1
        steps = np.where(feasible, x.lengths // 2, 0)
        order = np.argsort(-steps, kind="stable")
        rank = np.empty(len(x), np.int64)
        rank[order] = np.arange(len(x))
        key = np.tile(width - 1 - np.arange(width), (len(x), 1))
        key[rank[row], col] += counts * width
        token = np.zeros((len(x), width), np.int64)
        token[rank[row], col] = ids % span
        steps = steps[order]
        picked = np.zeros((len(x), 2 * int(steps.max()) + 1), np.int64)
        flat, base = key.reshape(-1), np.arange(len(x)) * width
        below = width * (int(top.max()) + 2)  # subtracted: a popped id is out of the second pop
        live = np.searchsorted(-steps, -np.arange(int(steps.max())), side="left")  # steps > t
        for t, k in enumerate(live.tolist()):
            sub = key[:k]
            first = sub.argmax(axis=1)
            at1 = base[:k] + first
            flat[at1] -= below
            second = sub.argmax(axis=1)
            flat[at1] += below - width
            flat[base[:k] + second] -= width
            picked[:k, 2 * t], picked[:k, 2 * t + 1] = first, second
        odd = np.flatnonzero(feasible[order] & (x.lengths[order] % 2 == 1))
        picked[odd, 2 * steps[odd]] = key[odd].argmax(axis=1)
        lengths = np.where(feasible[order], x.lengths[order], 0)
        out = Ragged(np.zeros(int(lengths.sum()), np.int64), lengths)
        lane = np.repeat(np.arange(len(x)), lengths)
        out.values = token[lane, picked[lane, out.positions]]
        return out.take(rank)
