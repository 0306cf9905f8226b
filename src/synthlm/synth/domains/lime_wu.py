"""LIME's induct / deduct / abduct as its generator draws them (Wu et al. 2021; the code used by
Wu et al. 2022: felixzli/synthetic_pretraining ``lime_datagen/generate_data.py``, ``gen_data``
with ``gen_one_lime_data`` and the symbol mapping of ``tasks_with_tokens.generate_example``).

Every example draws its own roles: ``num_upper + num_lower + num_math`` distinct ids, split into
upper-case variables, lower-case letters and math symbols, announced by a header:

    <UPPER> u1 u2 .. <LOWER> l1 .. <MATH> m1 .. <sep>  (task input)  <ans>  (task output)

A rule (``pattern``) mixes ``2 * num_chars`` draws of the first ``num_chars`` variables with
``pattern_length`` math symbols, shuffled; each variable used is substituted by 2-8 draws from
letters + math (``A : [ x y ]`` per variable, the original's commas being removed); the result
is the substituted rule. deduct: rule <sep> substitution -> result; abduct: rule <sep> result ->
substitution; induct: result <sep> substitution -> rule. Examples whose input or output falls
outside ``length`` are redrawn, as in ``gen_one_lime_data``.

Generation draws from Python's ``random.Random`` seeded per block by the block's generator, so
it keeps the counter-based determinism of every other domain.
"""

from __future__ import annotations

import random

import numpy as np
from pydantic import Field, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabSpec

REFERENCE = "Wu et al. 2021 (LIME), felixzli/synthetic_pretraining lime_datagen/generate_data.py (gen_data, mode {})"


class LimeWuParams(DomainParams):
    num_vocab: int = Field(
        32000, ge=3, description="Pool of content ids each example samples its symbols from."
    )
    num_upper: int = Field(
        24, ge=1, description="Upper-case variables per example (the paper's division: 24)."
    )
    num_lower: int = Field(24, ge=1, description="Lower-case letters per example (24).")
    num_math: int = Field(20, ge=1, description="Math symbols per example (20).")
    num_chars: IntRange = Field(
        default_factory=lambda: IntRange(min=3, max=5),
        description="ida_num_chars_range: variables offered to a rule.",
    )
    pattern_length: IntRange = Field(
        default_factory=lambda: IntRange(min=5, max=19),
        description="ida_pattern_length_range: math symbols in a rule.",
    )
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=1, max=512),
        description="length_range: input and output lengths (tokens) kept.",
    )

    _positive = at_least("num_chars", "pattern_length", "length")

    @model_validator(mode="after")
    def _fits(self) -> LimeWuParams:
        if self.num_upper + self.num_lower + self.num_math > self.num_vocab:
            raise ValueError("num_upper + num_lower + num_math must not exceed num_vocab")
        if self.num_chars.max > self.num_upper:
            raise ValueError(
                f"num_chars: a rule offers up to {self.num_chars.max} variables but "
                f"num_upper is {self.num_upper}"
            )
        return self


class LimeWu(Domain):
    Params = LimeWuParams
    markers = ("answer", "sep", "colon", "lbracket", "rbracket", "upper", "lower", "math")
    mode = ""
    block_tokens = 1 << 14

    @classmethod
    def alphabet_size(cls, params):
        return params.num_vocab

    def mean_body_length(self):
        p = self.params
        return (
            4
            + p.num_upper
            + p.num_lower
            + p.num_math
            + 3 * (p.pattern_length.mean + 2 * p.num_chars.mean * 5)
        )

    def body(self, rng, n):
        p = self.params
        size = p.num_upper + p.num_lower + p.num_math
        roles = (
            TokenSampler(VocabSpec(num_vocab=p.num_vocab))
            .sample_distinct(rng, np.full(n, size))
            .values.reshape(n, size)
        )
        r = random.Random(int(rng.integers(0, 2**63)))
        prompts, answers = [], []
        for row in roles.tolist():  # the role ids of every example are drawn for the block at once
            prompt, answer = self.example(r, row)
            prompts.append(prompt)
            answers.append(answer)
        ones = np.ones(n, dtype=bool)
        return [
            (Ragged.from_list(prompts), False),
            (Ragged.constant(self.mark("answer"), ones), False),
            (Ragged.from_list(answers), True),
        ]

    def example(self, r: random.Random, ids: list[int]) -> tuple[list[int], list[int]]:
        p, low, high = self.params, self.params.length.min, self.params.length.max
        while True:
            upper, lower, math = (
                ids[: p.num_upper],
                ids[p.num_upper : p.num_upper + p.num_lower],
                ids[p.num_upper + p.num_lower :],
            )
            chars = upper[: r.randint(p.num_chars.min, p.num_chars.max)]
            drawn = r.choices(chars, k=2 * len(chars))
            used = sorted(
                set(drawn)
            )  # the original lists list(set(...)): CPython's order; see docs
            pattern = drawn + r.choices(
                math, k=r.randint(p.pattern_length.min, p.pattern_length.max)
            )
            r.shuffle(pattern)
            table = {v: r.choices(lower + math, k=r.randint(2, 8)) for v in used}
            subst = [
                t
                for v in used
                for t in (
                    v,
                    self.mark("colon"),
                    self.mark("lbracket"),
                    *table[v],
                    self.mark("rbracket"),
                )
            ]
            result = [t for c in pattern for t in table.get(c, [c])]
            header = [
                self.mark("upper"),
                *used,
                self.mark("lower"),
                *lower,
                self.mark("math"),
                *math,
                self.mark("sep"),
            ]
            first, second, answer = {
                "deduct": (pattern, subst, result),
                "abduct": (pattern, result, subst),
                "induct": (result, subst, pattern),
            }[self.mode]
            prompt = [*header, *first, self.mark("sep"), *second]
            if low <= len(prompt) <= high and low <= len(answer) <= high:
                return prompt, answer
            ids = r.sample(range(p.num_vocab), len(ids))  # redrawn whole, roles included

    # -- checking ------------------------------------------------------------------------------
    def parse_header(
        self, prompt: np.ndarray
    ) -> tuple[list[int], set[int], set[int], list[int], list[int]]:
        tokens = [int(t) for t in prompt]
        m = self.layout.markers
        try:
            a, b, c = tokens.index(m["upper"]), tokens.index(m["lower"]), tokens.index(m["math"])
            s1 = tokens.index(m["sep"])
            s2 = tokens.index(m["sep"], s1 + 1)
        except ValueError:
            raise Malformed("header or <sep> missing") from None
        if not a == 0 < b < c < s1 < s2:
            raise Malformed("header out of order")
        upper, lower, math = tokens[a + 1 : b], set(tokens[b + 1 : c]), set(tokens[c + 1 : s1])
        if (
            len(tokens[b + 1 : c]) != self.params.num_lower
            or len(tokens[c + 1 : s1]) != self.params.num_math
        ):
            raise Malformed("wrong number of letters or math symbols in the header")
        if len(set(upper) | lower | math) != len(upper) + len(lower) + len(math):
            raise Malformed("roles overlap")
        return upper, lower, math, tokens[s1 + 1 : s2], tokens[s2 + 1 :]

    def parse_subst(
        self, tokens: list[int], upper: list[int], allowed: set[int]
    ) -> dict[int, list[int]]:
        m, table, i = self.layout.markers, {}, 0
        while i < len(tokens):
            if (
                i + 2 >= len(tokens)
                or tokens[i + 1] != m["colon"]
                or tokens[i + 2] != m["lbracket"]
            ):
                raise Malformed("substitution entries are 'V : [ ... ]'")
            end = tokens.index(m["rbracket"], i + 3) if m["rbracket"] in tokens[i + 3 :] else -1
            value = tokens[i + 3 : end]
            if end < 0 or not 2 <= len(value) <= 8 or not set(value) <= allowed:
                raise Malformed("a substituted string has 2-8 letters or math symbols")
            table[tokens[i]] = value
            i = end + 1
        if list(table) != upper:
            raise Malformed("the substitution lists exactly the header's variables, in its order")
        return table

    def check_answer(self, prompt, answer):
        upper, lower, math, first, second = self.parse_header(prompt)
        answer = [int(t) for t in answer]
        pattern, subst, result = {
            "deduct": (first, second, answer),
            "abduct": (first, answer, second),
            "induct": (answer, second, first),
        }[self.mode]
        if not set(pattern) <= set(upper) | math or not set(upper) <= set(pattern):
            raise Malformed("the rule uses exactly the header's variables, plus math symbols")
        table = self.parse_subst(subst, upper, lower | math)
        if [t for c in pattern for t in table.get(c, [c])] != result:
            raise Malformed("the result is not the rule with each variable substituted")
        if not self.params.length.contains(len(prompt)) or not self.params.length.contains(
            len(answer)
        ):
            raise Malformed("input or output length outside length")

    @property
    def unique_answer(self):
        return self.mode == "deduct"


@register_domain(
    "lime_deduct",
    family="lime",
    reference=REFERENCE.format("deduct"),
    description="LIME deduct with per-example roles and header: rule <sep> substitution -> result.",
)
class LimeDeduct(LimeWu):
    mode = "deduct"


@register_domain(
    "lime_abduct",
    family="lime",
    reference=REFERENCE.format("abduct"),
    description="LIME abduct with per-example roles and header: rule <sep> result -> substitution.",
)
class LimeAbduct(LimeWu):
    mode = "abduct"


@register_domain(
    "lime_induct",
    family="lime",
    reference=REFERENCE.format("induct"),
    description="LIME induct with per-example roles and header: result <sep> substitution -> rule.",
)
class LimeInduct(LimeWu):
    mode = "induct"
