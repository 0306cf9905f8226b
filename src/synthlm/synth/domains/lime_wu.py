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

Generation draws every choice for a whole block at once with numpy (padded arrays and masks,
the rule shuffled by sorting random keys): the same distributions as the original's
one-example-at-a-time ``random`` calls, in a different draw order, so the bytes differ from
a Python loop's but the counter-based determinism of every other domain is kept.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.domains.sampling import randint
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain

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
    mode: ClassVar[str] = ""  # deduct / abduct / induct: which parts are input and output

    @model_validator(mode="after")
    def _fits(self) -> LimeWuParams:
        if self.num_upper + self.num_lower + self.num_math > self.num_vocab:
            raise ValueError("num_upper + num_lower + num_math must not exceed num_vocab")
        if self.num_chars.max > self.num_upper:
            raise ValueError(
                f"num_chars: a rule offers up to {self.num_chars.max} variables but "
                f"num_upper is {self.num_upper}"
            )
        if self.mode:
            self._reachable()
        return self

    def _reachable(self) -> None:
        """Refuse a ``length`` no example can meet: the redraw loop would never end (the
        original's too). The bounds are the shortest and longest input and output the other
        ranges can produce, taken part by part."""
        c, math = self.num_chars, self.pattern_length
        parts = {  # (shortest, longest) in tokens
            "pattern": (2 * c.min + math.min, 2 * c.max + math.max),
            "subst": (4 + 2, c.max * (4 + 8)),  # 'V : [ .. ]' with 2-8 values per variable used
            "result": (math.min + 2 * c.min * 2, math.max + 2 * c.max * 8),
        }
        first, second, answer = LIME_PARTS[self.mode]
        fixed = 5 + self.num_lower + self.num_math  # header markers, letters, math, two <sep>
        prompt = (
            fixed + 1 + parts[first][0] + parts[second][0],
            fixed + c.max + parts[first][1] + parts[second][1],
        )
        for what, (low, high) in (("input", prompt), ("output", parts[answer])):
            if high < self.length.min or low > self.length.max:
                raise ValueError(
                    f"length: {self.mode}'s {what} is {low}-{high} tokens with these ranges, "
                    f"outside length {self.length.min}-{self.length.max}; no example could be "
                    "kept"
                )


# which parts make the input (first <sep> second) and the output, per mode
LIME_PARTS = {
    "deduct": ("pattern", "subst", "result"),
    "abduct": ("pattern", "result", "subst"),
    "induct": ("result", "subst", "pattern"),
}


def distinct_rows(rng: np.random.Generator, n: int, size: int, pool: int) -> np.ndarray:
    """``n`` rows of ``size`` distinct ids from ``range(pool)``, in random order (like
    ``random.sample``): rows that repeat an id are redrawn whole, which keeps every ordered
    distinct row equally likely."""
    if 4 * size > pool:  # dense: a random permutation per row, cut
        return np.argsort(rng.random((n, pool)), axis=1)[:, :size]
    rows = rng.integers(0, pool, size=(n, size))
    while True:
        ordered = np.sort(rows, axis=1)
        bad = (ordered[:, 1:] == ordered[:, :-1]).any(1)
        if not bad.any():
            return rows
        rows[bad] = rng.integers(0, pool, size=(int(bad.sum()), size))


class LimeWu(Domain):
    Params = LimeWuParams
    markers = ("answer", "sep", "colon", "lbracket", "rbracket", "upper", "lower", "math")
    block_tokens = 1 << 17  # drawn as padded arrays for the whole block

    @property
    def mode(self) -> str:
        """deduct / abduct / induct, declared once on each task's ``Params``."""
        return self.Params.mode

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
        low, high = self.params.length.min, self.params.length.max
        prompt, prompt_mask, answer, answer_mask = self.draw(rng, n)
        while True:  # examples outside ``length`` are redrawn whole, roles included
            sizes = np.stack([prompt_mask.sum(1), answer_mask.sum(1)])
            bad = ((sizes < low) | (sizes > high)).any(0)
            if not bad.any():
                break
            again = self.draw(rng, int(bad.sum()))
            for array, redrawn in zip((prompt, prompt_mask, answer, answer_mask), again):
                array[bad] = redrawn
        return self.answered(
            Ragged(prompt[prompt_mask], prompt_mask.sum(1)),
            Ragged(answer[answer_mask], answer_mask.sum(1)),
        )

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        """``n`` examples as padded (prompt, prompt mask, answer, answer mask) arrays.

        Every random choice of ``gen_one_lime_data`` is drawn for the block at once, padded to
        its largest size and masked (in the original's order: roles, rule, substitution)."""
        p, m = self.params, self.mark
        roles = distinct_rows(rng, n, p.num_upper + p.num_lower + p.num_math, p.num_vocab)
        chars = roles[:, : p.num_chars.max]  # the first num_chars variables are offered
        math = roles[:, p.num_upper + p.num_lower :]
        rule = self.rule(rng, chars, math)
        subst, result = self.substitution(rng, chars, roles[:, p.num_upper :], rule)
        used = subst[0][:, :: 3 + 8 + 1]  # each entry starts with its variable
        header = [
            (np.full((n, 1), m("upper")), np.ones((n, 1), bool)),
            (used, subst[1][:, :: 3 + 8 + 1]),
            (np.full((n, 1), m("lower")), np.ones((n, 1), bool)),
            (roles[:, p.num_upper : p.num_upper + p.num_lower], np.ones((n, p.num_lower), bool)),
            (np.full((n, 1), m("math")), np.ones((n, 1), bool)),
            (math, np.ones(math.shape, bool)),
            (np.full((n, 1), m("sep")), np.ones((n, 1), bool)),
        ]
        parts = {"pattern": rule[:2], "subst": subst, "result": result}
        first, second, answer = (parts[name] for name in LIME_PARTS[self.mode])
        pieces = [*header, first, header[-1], second]
        prompt = np.concatenate([a for a, _ in pieces], axis=1)
        prompt_ok = np.concatenate([b for _, b in pieces], axis=1)
        return prompt, prompt_ok, answer[0], answer[1]

    def rule(self, rng: np.random.Generator, chars: np.ndarray, math: np.ndarray) -> tuple:
        """The rule: ``2 * num_chars`` draws of the first ``num_chars`` variables and
        ``pattern_length`` math symbols, shuffled by sorting random keys (a uniform permutation,
        like ``random.shuffle``). Returns tokens, mask, and per slot whether it is a variable
        and which (index into ``chars``)."""
        p, n = self.params, len(chars)
        rows, c_max, l_max = np.arange(n)[:, None], chars.shape[1], p.pattern_length.max
        c = randint(rng, np.full(n, p.num_chars.min), p.num_chars.max)
        drawn = np.floor(rng.random((n, 2 * c_max)) * c[:, None]).astype(np.int64)
        drawn_ok = np.arange(2 * c_max) < 2 * c[:, None]
        count = randint(rng, np.full(n, p.pattern_length.min), p.pattern_length.max)
        math_drawn = math[rows, np.floor(rng.random((n, l_max)) * p.num_math).astype(np.int64)]
        is_var = np.concatenate([np.ones_like(drawn_ok), np.zeros((n, l_max), bool)], axis=1)
        value = np.concatenate([drawn, math_drawn], axis=1)
        ok = np.concatenate([drawn_ok, np.arange(l_max) < count[:, None]], axis=1)
        shuffle = np.argsort(np.where(ok, rng.random(ok.shape), 2.0), axis=1)
        is_var, value, ok = (np.take_along_axis(a, shuffle, 1) for a in (is_var, value, ok))
        var = np.where(is_var, value, 0)
        return np.where(is_var, chars[rows, var], value), ok, is_var, var

    def substitution(
        self, rng: np.random.Generator, chars: np.ndarray, letters: np.ndarray, rule: tuple
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Per variable 2-8 draws from letters + math; the substitution ``V : [ .. ]`` for the
        variables the rule uses, in ascending id order, and the rule with them substituted
        (both padded, with masks)."""
        m, (pattern, ok, is_var, var) = self.mark, rule
        n, c_max = chars.shape
        rows = np.arange(n)[:, None]
        used = np.zeros((n, c_max), dtype=bool)
        used[np.broadcast_to(rows, var.shape)[ok & is_var], var[ok & is_var]] = True
        order = np.argsort(np.where(used, chars, np.iinfo(np.int64).max), axis=1)
        k = randint(rng, np.full((n, c_max), 2), 8)
        table = letters[
            rows[:, :, None],
            np.floor(rng.random((n, c_max, 8)) * letters.shape[1]).astype(np.int64),
        ]
        result = np.where(is_var[:, :, None], table[rows, var], pattern[:, :, None])
        result_ok = ok[:, :, None] & np.where(
            is_var[:, :, None], (np.arange(8) < k[:, :, None])[rows, var], np.arange(8) == 0
        )
        subst = np.empty((n, c_max, 12), dtype=np.int64)  # V : [ up to 8 ] per variable
        subst[:, :, 0] = np.take_along_axis(chars, order, 1)
        subst[:, :, 1], subst[:, :, 2] = m("colon"), m("lbracket")
        subst[:, :, 3:11] = table[rows, order]
        k_sorted = np.take_along_axis(k, order, 1)
        np.put_along_axis(subst, (3 + k_sorted)[:, :, None], m("rbracket"), 2)
        listed = np.arange(c_max) < used.sum(1)[:, None]
        subst_ok = (np.arange(12) <= 3 + k_sorted[:, :, None]) & listed[:, :, None]
        return (subst.reshape(n, -1), subst_ok.reshape(n, -1)), (
            result.reshape(n, -1),
            result_ok.reshape(n, -1),
        )

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
        given = dict(zip(LIME_PARTS[self.mode], (first, second, answer)))
        pattern, subst, result = given["pattern"], given["subst"], given["result"]
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
    class Params(LimeWuParams):
        mode: ClassVar[str] = "deduct"


@register_domain(
    "lime_abduct",
    family="lime",
    reference=REFERENCE.format("abduct"),
    description="LIME abduct with per-example roles and header: rule <sep> result -> substitution.",
)
class LimeAbduct(LimeWu):
    class Params(LimeWuParams):
        mode: ClassVar[str] = "abduct"


@register_domain(
    "lime_induct",
    family="lime",
    reference=REFERENCE.format("induct"),
    description="LIME induct with per-example roles and header: result <sep> substitution -> rule.",
)
class LimeInduct(LimeWu):
    class Params(LimeWuParams):
        mode: ClassVar[str] = "induct"
