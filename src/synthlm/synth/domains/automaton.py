"""``cellular_automaton``: elementary cellular automata (Wolfram rules 0-255), as in
Zhang et al. 2024 ("Intelligence at the edge of chaos").

A random initial row of ``width`` cells evolves for ``steps`` steps on a ring (periodic
boundary). Rows are written as cell tokens 0/1 separated by ``<row>``; the prompt is the first
row and its ``<row>``, the answer the rows that follow. With several rules the rule is drawn per
sequence and ``verify`` accepts any allowed rule that explains every transition.

With a ``steps`` range the prompt does not say how many rows follow, so ``verify`` (and with it
synthetic exact match) accepts any row count in the range: an answer that stops after
``steps.min`` correct rows scores as correct. Accuracy then measures correct evolution, not
length; fix ``steps`` (``min == max``) to score the length too.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain


class AutomatonParams(DomainParams):
    rule: int | list[int] = Field(
        110, description="Wolfram rule number 0-255, or a list to draw from per sequence."
    )
    width: IntRange = Field(
        default_factory=lambda: IntRange(min=16, max=32), description="Cells per row."
    )
    steps: IntRange = Field(
        default_factory=lambda: IntRange(min=4, max=12), description="Rows after the initial one."
    )
    density: float = Field(0.5, gt=0, lt=1, description="Chance that an initial cell is alive.")

    @field_validator("rule")
    @classmethod
    def _rules(cls, value: int | list[int]) -> int | list[int]:
        rules = value if isinstance(value, list) else [value]
        if not rules or any(not 0 <= r <= 255 for r in rules):
            raise ValueError("rule numbers must be between 0 and 255 (at least one)")
        return value

    _sizes = at_least("width", "steps")

    @property
    def rules(self) -> np.ndarray:
        return np.asarray(self.rule if isinstance(self.rule, list) else [self.rule], dtype=np.int64)


def evolve(rows: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """One step for a batch of rows (n, width) with one rule per row."""
    neighbourhood = 4 * np.roll(rows, 1, axis=1) + 2 * rows + np.roll(rows, -1, axis=1)
    return (rules[:, None] >> neighbourhood) & 1


@register_domain(
    "cellular_automaton",
    family="automata",
    description="Elementary cellular automaton rows (rule, width, steps); answer = rows "
    "after the first (with a steps range, any row count in it is correct: fix steps to score "
    "the length).",
)
class CellularAutomaton(Domain):
    Params = AutomatonParams
    markers = ("row",)
    output_marker = "row"

    @classmethod
    def alphabet_size(cls, params):
        return 2

    def body(self, rng, n):
        p = self.params
        widths, steps = p.width.sample(rng, n), p.steps.sample(rng, n)
        rules = p.rules[rng.integers(0, len(p.rules), size=n)]
        firsts, rests, order = [], [], []
        for width in np.unique(widths):
            members = np.flatnonzero(widths == width)
            first, rest = self._run(rng, int(width), steps[members], rules[members])
            firsts.append(first)
            rests.append(rest)
            order.append(members)
        back = np.argsort(np.concatenate(order), kind="stable")
        first = _stack(firsts).take(back)
        rest = _stack(rests).take(back)
        return [
            (first, False),
            (Ragged.constant(self.mark("row"), np.ones(n, bool)), False),
            (rest, True),
        ]

    def _run(self, rng, width: int, steps: np.ndarray, rules: np.ndarray) -> tuple[Ragged, Ragged]:
        rows = [(rng.random((len(steps), width)) < self.params.density).astype(np.int64)]
        for _ in range(int(steps.max())):
            rows.append(evolve(rows[-1], rules))
        grid = np.stack(rows, axis=1)  # (members, steps + 1, width)
        marker = np.full((*grid.shape[:2], 1), self.mark("row"), dtype=np.int64)
        later = np.concatenate([grid[:, 1:], marker[:, 1:]], axis=2).reshape(len(steps), -1)
        sizes = steps * (width + 1) - 1
        rest = Ragged(later[np.arange(later.shape[1]) < sizes[:, None]], sizes)
        return Ragged(grid[:, 0].reshape(-1), np.full(len(steps), width, dtype=np.int64)), rest

    def mean_body_length(self):
        p = self.params
        return (p.steps.mean + 1) * (p.width.mean + 1)

    def check_answer(self, prompt, answer):
        rows = [prompt, *self.split_on(answer, "row")]
        width = len(prompt)
        if not self.params.width.contains(width) or any(len(r) != width for r in rows):
            raise Malformed("rows of different or out-of-range widths")
        if not self.params.steps.contains(len(rows) - 1):
            raise Malformed(f"{len(rows) - 1} steps, outside {self.params.steps}")
        grid = np.stack([self.as_content(r, "row") for r in rows])
        for rule in self.params.rules:
            if all(
                np.array_equal(evolve(grid[i : i + 1], np.array([rule]))[0], grid[i + 1])
                for i in range(len(grid) - 1)
            ):
                return
        raise Malformed("no allowed rule explains these rows")

    @property
    def unique_answer(self):
        return len(self.params.rules) == 1 and self.params.steps.min == self.params.steps.max

    def symbol(self, token):
        return {0: ".", 1: "#"}.get(int(token), super().symbol(token))


def _stack(parts: list[Ragged]) -> Ragged:
    return Ragged(
        np.concatenate([p.values for p in parts]), np.concatenate([p.lengths for p in parts])
    )
