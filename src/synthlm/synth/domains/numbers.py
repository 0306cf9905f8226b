"""``sort_numbers``: sort multi-digit numbers (Seqthetic).

promoter  12 <w> 7 <w> 305  <ans>  7 <w> 12 <w> 305        (numbers as digit tokens)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged, concat, digits, group
from synthlm.synth.registry import register_domain


class SortNumbersParams(DomainParams):
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=2, max=16), description="How many numbers per input."
    )
    max_value: int = Field(
        999, ge=0, le=10**12, description="Numbers are drawn uniformly from 0..max_value."
    )

    _count = at_least("length")


@register_domain(
    "sort_numbers",
    family="sequence",
    description="Sort decimal numbers (separated by <w>) in ascending order.",
)
class SortNumbers(Domain):
    Params = SortNumbersParams
    markers = ("answer", "word")
    uses_digits = True

    @classmethod
    def alphabet_size(cls, params):
        return 0  # digits have their own ids; no content ids needed

    def body(self, rng, n):
        count = self.params.length.sample(rng, n)
        values = rng.integers(0, self.params.max_value + 1, size=int(count.sum()), dtype=np.int64)
        owner = np.repeat(np.arange(n), count)
        ordered = values[np.lexsort((values, owner))]
        return self.answered(self.write(values, count), self.write(ordered, count))

    def write(self, values: np.ndarray, count: np.ndarray) -> Ragged:
        last = np.zeros(len(values), dtype=bool)
        last[np.cumsum(count) - 1] = True
        numbers = concat(
            [digits(values, self.layout.digit(0)), Ragged.constant(self.mark("word"), ~last)]
        )
        return group(numbers, count)

    def mean_body_length(self):
        width = len(str(self.params.max_value)) + 1
        return 1 + 2 * self.params.length.mean * width

    def solve(self, prompt):
        values = self.parse(prompt)
        if not self.params.length.contains(len(values)):
            raise Malformed(f"{len(values)} numbers, outside {self.params.length}")
        if max(values) > self.params.max_value:
            raise Malformed("number above max_value")
        out: list[int] = []
        for value in sorted(values):
            out += [*self.number_tokens(value).tolist(), self.mark("word")]
        return np.asarray(out[:-1], dtype=np.int64)

    def parse(self, tokens: np.ndarray) -> list[int]:
        return [self.parse_number(piece) for piece in self.split_on(tokens, "word")]
