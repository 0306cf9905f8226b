"""LIME (Wu et al. 2021): induct, deduct and abduct over rule / case / result.

A *rule* is a string of upper-case variables and math symbols; a *case* maps each variable of
the rule to a string of lower-case letters and math symbols; the *result* is the rule with every
variable replaced by its string. The three tasks show two of the three and ask for the third:

    deduct   <rule> rule  <case> case  <result> -> result
    abduct   <rule> rule  <result> result  <case> -> case
    induct   <case> case  <result> result  <rule> -> rule

A case is written as ``A a b c B d e``: each variable token starts its entry. Abduct and induct
can have several correct answers; ``verify`` accepts any rule or case that reproduces the result.

Content ids: variables ``0..V-1``, letters ``V..V+L-1``, math symbols after them.
"""

from __future__ import annotations

import string

import numpy as np
from pydantic import Field, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.domains.sampling import shuffle_within
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged, concat, group
from synthlm.synth.registry import register_domain

MATH = "+-*/=^<>()!%&|~:;,.?"


class LimeParams(DomainParams):
    num_variables: int = Field(26, ge=1, le=1024, description="Upper-case variable symbols.")
    num_letters: int = Field(26, ge=1, le=1024, description="Lower-case letter symbols.")
    num_math: int = Field(
        8, ge=1, le=1024, description="Math symbols (used in rules and case values)."
    )
    rule_length: IntRange = Field(
        default_factory=lambda: IntRange(min=5, max=20), description="Rule length in tokens."
    )
    variables: IntRange = Field(
        default_factory=lambda: IntRange(min=1, max=5), description="Distinct variables per rule."
    )
    value_length: IntRange = Field(
        default_factory=lambda: IntRange(min=1, max=8),
        description="Tokens in each variable's substituted string.",
    )
    math_prob: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="Chance that a rule position beyond the variables is a math symbol.",
    )

    _positive = at_least("rule_length", "variables", "value_length")

    @model_validator(mode="after")
    def _feasible(self) -> LimeParams:
        if self.variables.max > self.num_variables:
            raise ValueError(
                f"variables: cannot use {self.variables.max} distinct variables with "
                f"num_variables={self.num_variables}"
            )
        if self.variables.min > self.rule_length.max:
            raise ValueError(
                f"variables: a rule of at most {self.rule_length.max} tokens cannot hold "
                f"{self.variables.min} variables"
            )
        return self


class Lime(Domain):
    Params = LimeParams
    markers = ("rule", "case", "result")
    shown: tuple[str, str] = ("rule", "case")
    asked = "result"

    @classmethod
    def alphabet_size(cls, params):
        return params.num_variables + params.num_letters + params.num_math

    @property
    def output_marker(self):  # type: ignore[override]
        return self.asked

    # -- token classes -------------------------------------------------------------------------
    def is_variable(self, t: int) -> bool:
        return 0 <= t < self.params.num_variables

    def is_value_symbol(self, t: int) -> bool:
        return self.params.num_variables <= t < self.content

    def is_math(self, t: int) -> bool:
        return self.params.num_variables + self.params.num_letters <= t < self.content

    # -- generation (vectorised over the block) -------------------------------------------------
    def body(self, rng, n):
        rule = self.rules(rng, n)
        case, result = self.case_and_result(rng, rule)
        parts, content = [], {"rule": rule, "case": case, "result": result}
        for role in (*self.shown, self.asked):
            parts.append((Ragged.constant(self.mark(role), np.ones(n, bool)), False))
            parts.append((content[role], role == self.asked))
        return parts

    def rules(self, rng: np.random.Generator, n: int) -> Ragged:
        """Each rule holds ``count`` distinct variables (each at least once) and math symbols."""
        p = self.params
        counts = rng.integers(p.variables.min, min(p.variables.max, p.rule_length.max) + 1, size=n)
        low = np.maximum(p.rule_length.min, counts)
        lengths = low + (rng.random(n) * (p.rule_length.max + 1 - low)).astype(np.int64)
        shuffled = np.argsort(rng.random((n, p.num_variables)), axis=1)
        chosen = Ragged(shuffled[np.arange(p.num_variables) < counts[:, None]], counts)
        extra = lengths - counts
        owner = np.repeat(np.arange(n), extra)
        math = p.num_variables + p.num_letters + rng.integers(0, p.num_math, size=len(owner))
        variable = chosen.values[
            chosen.starts[owner] + (rng.random(len(owner)) * counts[owner]).astype(np.int64)
        ]
        filler = Ragged(np.where(rng.random(len(owner)) < p.math_prob, math, variable), extra)
        unshuffled = concat([chosen, filler])
        return shuffle_within(rng, unshuffled)

    def case_and_result(self, rng: np.random.Generator, rule: Ragged) -> tuple[Ragged, Ragged]:
        """A value per variable (listed in order of first appearance) and the substituted rule."""
        p = self.params
        is_variable = rule.values < p.num_variables
        defined = rule.keep(rule.first_occurrences(self.content) & is_variable)
        sizes = p.value_length.sample(rng, len(defined.values))
        values = Ragged(
            p.num_variables + rng.integers(0, p.num_letters + p.num_math, size=int(sizes.sum())),
            sizes,
        )
        heads = Ragged(defined.values, np.ones(len(defined.values), dtype=np.int64))
        case = group(concat([heads, values]), defined.lengths)
        keys = defined.seq_ids * p.num_variables + defined.values
        order = np.argsort(keys)
        where = order[
            np.searchsorted(keys[order], rule.seq_ids * p.num_variables + rule.values).clip(
                0, len(keys) - 1
            )
        ]
        slot = np.where(is_variable, where, 0)
        widths = np.where(is_variable, sizes[slot], 1)
        pieces = Ragged(np.zeros(int(widths.sum()), dtype=np.int64), widths)
        pieces.values = np.where(
            np.repeat(is_variable, pieces.lengths),
            values.values[np.repeat(values.starts[slot], pieces.lengths) + pieces.positions],
            np.repeat(rule.values, pieces.lengths),
        )
        return case, group(pieces, rule.lengths)

    def mean_body_length(self):
        p = self.params
        return 3 + p.rule_length.mean * 2 + p.variables.mean * (p.value_length.mean + 1) * 2

    # -- checking ------------------------------------------------------------------------------
    def check_answer(self, prompt, answer):
        sections = self.sections(prompt)
        sections[self.asked] = answer
        rule = self.parse_rule(sections["rule"])
        case = self.parse_case(sections["case"])
        result = self.as_content(sections["result"], "result").tolist()
        if set(case) != {t for t in rule if self.is_variable(t)}:
            raise Malformed("the case must define exactly the rule's variables")
        if substitute(rule, case) != result:
            raise Malformed("the rule with the case substituted is not the result")

    def sections(self, prompt: np.ndarray) -> dict[str, np.ndarray]:
        first, second = self.shown
        if not len(prompt) or prompt[0] != self.mark(first):
            raise Malformed(f"prompt must start with <{first}>")
        pieces = self.split_on(prompt[1:], second)
        if len(pieces) != 2:
            raise Malformed(f"expected one <{second}> marker")
        return {first: pieces[0], second: pieces[1]}

    def parse_rule(self, tokens: np.ndarray) -> list[int]:
        rule = self.as_content(tokens, "rule").tolist()
        if not self.params.rule_length.contains(len(rule)):
            raise Malformed(f"rule length {len(rule)} outside {self.params.rule_length}")
        if any(not (self.is_variable(t) or self.is_math(t)) for t in rule):
            raise Malformed("a rule holds only variables and math symbols")
        if not self.params.variables.contains(len({t for t in rule if self.is_variable(t)})):
            raise Malformed("number of variables outside the allowed range")
        return rule

    def parse_case(self, tokens: np.ndarray) -> dict[int, list[int]]:
        case: dict[int, list[int]] = {}
        current = None
        for t in self.as_content(tokens, "case").tolist():
            if self.is_variable(t):
                if t in case:
                    raise Malformed("a variable defined twice in the case")
                current = case[t] = []
            elif current is None or not self.is_value_symbol(t):
                raise Malformed(
                    "a case entry must be a variable followed by letters or math symbols"
                )
            else:
                current.append(t)
        if any(not self.params.value_length.contains(len(v)) for v in case.values()):
            raise Malformed("a case value length outside value_length")
        return case

    @property
    def unique_answer(self):
        return self.asked == "result"

    def symbol(self, token):
        p = self.params
        t = int(token)
        if self.is_variable(t):
            return _letter(string.ascii_uppercase, t)
        if self.is_math(t):
            i = t - p.num_variables - p.num_letters
            return MATH[i] if i < len(MATH) else f"m{i}"
        if self.is_value_symbol(t):
            return _letter(string.ascii_lowercase, t - p.num_variables)
        return super().symbol(t)


def substitute(rule: list[int], case: dict[int, list[int]]) -> list[int]:
    out: list[int] = []
    for t in rule:
        out += case.get(t, [t])
    return out


def _letter(alphabet: str, i: int) -> str:
    return alphabet[i] if i < len(alphabet) else f"{alphabet[0]}{i}"


@register_domain(
    "deduct", family="lime", description="LIME deduction: given rule and case, write the result."
)
class Deduct(Lime):
    shown, asked = ("rule", "case"), "result"


@register_domain(
    "abduct",
    family="lime",
    description="LIME abduction: given rule and result, write a case (variable substitutions).",
)
class Abduct(Lime):
    shown, asked = ("rule", "result"), "case"


@register_domain(
    "induct", family="lime", description="LIME induction: given case and result, write a rule."
)
class Induct(Lime):
    shown, asked = ("case", "result"), "rule"
