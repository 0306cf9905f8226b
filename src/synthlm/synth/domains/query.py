"""Tasks with a query after the input: count, delete, replace, search (Wu et al. 2022), and
longest_word, whose input is words separated by a word marker.

    promoter  input  <qry>  query  <ans>  output
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from synthlm.synth.domain import Malformed
from synthlm.synth.domains.base import InputTask, SequenceParams, with_empty
from synthlm.synth.params import IntRange, at_least
from synthlm.synth.ragged import Ragged, concat, digits, group
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import VocabParams


class QueryParams(SequenceParams):
    repeat_prob: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Chance that an input token copies an earlier one (creates repeats).",
    )
    query_in_input: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Chance the query is taken from the input (else drawn from the vocabulary).",
    )


class QueryTask(InputTask):
    """``input <qry> query <ans> output``; subclasses draw the query and compute the output."""

    Params = QueryParams
    markers = ("answer", "query")
    query_size = 1

    def pick_tokens(self, rng: np.random.Generator, x: Ragged) -> np.ndarray:
        """One token per sequence: from the input with ``query_in_input``, else from the vocabulary."""
        n = len(x)
        from_input = rng.random(n) < self.params.query_in_input
        offset = np.floor(rng.random(n) * x.lengths).astype(np.int64)
        random = self.sampler().sample(rng, n)
        return np.where(from_input, x.gather(np.arange(n), offset), random)

    def body(self, rng, n):
        x = self.sample_input(rng, n)
        q = self.draw_query(rng, x)
        y = self.output(x, q)
        ones = np.ones(n, dtype=bool)
        return [
            (x, False),
            (Ragged.constant(self.mark("query"), ones), False),
            (q, False),
            (Ragged.constant(self.mark("answer"), ones), False),
            (y, True),
        ]

    def draw_query(self, rng, x: Ragged) -> Ragged:
        return Ragged(self.pick_tokens(rng, x), np.ones(len(x), dtype=np.int64))

    def output(self, x: Ragged, q: Ragged) -> Ragged:
        raise NotImplementedError

    def mean_body_length(self):
        return 3 + self.query_size + self.params.length.mean * (1 + self.output_ratio())

    def solve(self, prompt):
        pieces = self.split_on(prompt, "query")
        if len(pieces) != 2:
            raise Malformed("expected exactly one query marker")
        x, q = self.as_content(pieces[0]), self.as_content(pieces[1], "query")
        self.check_input_length(x)
        return self.answer_for(x, q)

    def answer_for(self, x: np.ndarray, q: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def one_token(self, q: np.ndarray) -> int:
        if len(q) != 1:
            raise Malformed(f"query must be one token, got {len(q)}")
        return int(q[0])


@register_domain(
    "count",
    family="sequence",
    description="How often the query token occurs in the input (decimal digits); Wu's "
    "sampler is wu_count.",
)
class Count(QueryTask):
    uses_digits = True

    def output(self, x, q):
        hits = x.values == np.repeat(q.values, x.lengths)
        return digits(x.count(hits), self.layout.digit(0))

    def output_ratio(self):
        return 1 / max(1.0, self.params.length.mean)

    def answer_for(self, x, q):
        return self.number_tokens(int(np.sum(x == self.one_token(q))))


@register_domain(
    "delete",
    family="sequence",
    description="The input with every occurrence of one query token removed (Wu's is "
    "wu_delete, Seqthetic's seqthetic_delete).",
)
class Delete(QueryTask):
    markers = ("answer", "query", "empty")

    def output(self, x, q):
        return with_empty(x.keep(x.values != np.repeat(q.values, x.lengths)), self.mark("empty"))

    def answer_for(self, x, q):
        return self.answer_tokens(x[x != self.one_token(q)])


@register_domain(
    "replace",
    family="sequence",
    description="Every occurrence of query token a replaced by b; a may be absent (Wu's "
    "is wu_replace).",
)
class Replace(QueryTask):
    query_size = 2

    def draw_query(self, rng, x):
        a = self.pick_tokens(rng, x)
        b = self.sampler().sample(rng, len(x))
        return Ragged(np.stack([a, b], axis=1).reshape(-1), np.full(len(x), 2, dtype=np.int64))

    def output(self, x, q):
        pairs = q.values.reshape(-1, 2)
        a, b = np.repeat(pairs[:, 0], x.lengths), np.repeat(pairs[:, 1], x.lengths)
        return Ragged(np.where(x.values == a, b, x.values), x.lengths)

    def answer_for(self, x, q):
        if len(q) != 2:
            raise Malformed("replace needs a query of two tokens")
        return np.where(x == q[0], q[1], x)


class SearchParams(QueryParams):
    query_in_input: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Chance the query is a slice of the input (else random tokens).",
    )
    query_length: IntRange = Field(
        default_factory=lambda: IntRange(min=1, max=4),
        description="Query length (capped at the input length).",
    )

    _query_positive = at_least("query_length")


@register_domain(
    "search",
    family="sequence",
    description="Whether the query occurs as a contiguous slice of the input "
    "(<yes>/<no>); Wu's sampler is wu_search.",
)
class Search(QueryTask):
    Params = SearchParams
    markers = ("answer", "query", "yes", "no")

    @property
    def query_size(self):
        return self.params.query_length.mean

    def draw_query(self, rng, x):
        n = len(x)
        size = np.minimum(self.params.query_length.sample(rng, n), x.lengths)
        start = np.floor(rng.random(n) * (x.lengths - size + 1)).astype(np.int64)
        from_input = rng.random(n) < self.params.query_in_input
        q = Ragged(self.sampler().sample(rng, int(size.sum())), size)
        taken = x.values[np.repeat(x.starts + start, size) + q.positions]
        q.values = np.where(np.repeat(from_input, size), taken, q.values)
        return q

    def output(self, x, q):
        found = np.array([_contains(a, b) for a, b in zip(_pieces(x), _pieces(q))], dtype=bool)
        return Ragged(
            np.where(found, self.mark("yes"), self.mark("no")), np.ones(len(x), dtype=np.int64)
        )

    def output_ratio(self):
        return 1 / max(1.0, self.params.length.mean)

    def answer_for(self, x, q):
        if not self.params.query_length.contains(len(q)) and len(q) != len(x):
            raise Malformed("query length outside query_length")
        windows = (
            np.lib.stride_tricks.sliding_window_view(x, len(q))
            if len(q) <= len(x)
            else np.zeros((0, len(q)))
        )
        found = bool((windows == q).all(axis=1).any())
        return np.array([self.mark("yes" if found else "no")], dtype=np.int64)


def _pieces(r: Ragged) -> list[np.ndarray]:
    return np.split(r.values, np.cumsum(r.lengths)[:-1])


def _contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    """Substring search on the int32 bytes (C speed), accepting only aligned hits."""
    hay, pin = haystack.astype("<i4").tobytes(), needle.astype("<i4").tobytes()
    at = hay.find(pin)
    while at != -1 and at % 4:
        at = hay.find(pin, at + 1)
    return at != -1


class WordsParams(VocabParams):
    words: IntRange = Field(
        default_factory=lambda: IntRange(min=2, max=8), description="Words per input."
    )
    word_length: IntRange = Field(
        default_factory=lambda: IntRange(min=1, max=8), description="Tokens per word."
    )

    _sizes = at_least("words", "word_length")


@register_domain(
    "longest_word",
    family="sequence",
    description="The longest word of the input (words split by <w>; first one on ties); "
    "Wu's sampler is wu_longest_word.",
)
class LongestWord(InputTask):
    Params = WordsParams
    markers = ("answer", "word")

    def body(self, rng, n):
        p = self.params
        count = p.words.sample(rng, n)
        words = self.sampler().sample_ragged(rng, p.word_length.sample(rng, int(count.sum())))
        last = np.zeros(len(words), dtype=bool)
        last[np.cumsum(count) - 1] = True
        sep = Ragged.constant(self.mark("word"), ~last)
        x = group(concat([words, sep]), count)
        owner = np.repeat(np.arange(n), count)
        best = np.lexsort(
            (np.arange(len(words)), -words.lengths, owner)
        )  # per owner: longest, then first
        first_of_owner = np.r_[0, np.cumsum(count)[:-1]]
        y = words.take(best[first_of_owner])
        return self.answered(x, y)

    def mean_body_length(self):
        p = self.params
        return 1 + p.words.mean * (p.word_length.mean + 1) + p.word_length.max

    def answer_of(self, x):
        words = self.split_on(x, "word")
        if not self.params.words.contains(len(words)):
            raise Malformed(f"{len(words)} words, outside {self.params.words}")
        for word in words:
            self.as_content(word, "word")
        return max(words, key=len)

    def solve(self, prompt):
        return self.answer_of(np.asarray(prompt, dtype=np.int64))
