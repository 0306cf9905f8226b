"""Bracket languages: ``dyck`` and TILT's ``nested_parens`` (nested, a stack), ``shuffle_dyck``
(k-Shuffle-Dyck, Hu et al. 2025) and TILT's ``flat_parens`` (crossing dependencies, a bag).

Type ``t`` opens with id ``t`` and closes with id ``types + t``. Generation runs one step per
position for a whole block of sequences at once: at each step a sequence opens a new bracket
(probability ``p_open``) or closes one, and is forced to close when the remaining positions are
only just enough to close everything, so every sequence is balanced. Odd lengths are rounded
down to even. Nested languages close the most recent open bracket; shuffled ones close a random
open bracket, which lets dependencies cross.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import Field

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabParams

OPEN_SYMBOLS, CLOSE_SYMBOLS = "([{<", ")]}>"


class BracketFields(DomainParams):
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=16, max=128),
        description="Sequence length in tokens (even; odd draws are rounded down).",
    )
    p_open: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Chance of opening a bracket when both opening and closing are possible.",
    )
    max_depth: int | None = Field(
        None, ge=1, description="Most brackets open at once (None: unbounded)."
    )

    _even_room = at_least("length", low=2)


class DyckParams(BracketFields):
    k: int = Field(2, ge=1, le=4096, description="Number of bracket types.")


class ParensParams(BracketFields, VocabParams):
    pass


def _draw_steps(
    rng: np.random.Generator,
    lengths: np.ndarray,
    p_open: float,
    max_open: int | None,
    draw_type: Callable[[int], np.ndarray],
):
    """Shared per-step state: lengths rounded to even, random numbers, the type of each opening."""
    lengths = lengths - lengths % 2
    steps = int(lengths.max()) if len(lengths) else 0
    limit = steps // 2 if max_open is None else min(max_open, steps // 2)
    u = rng.random((steps, len(lengths)))
    pick = rng.random((steps, len(lengths)))
    types = draw_type(steps * len(lengths)).reshape(steps, len(lengths))
    return lengths, steps, max(limit, 1), u, pick, types


def _decide(
    t: int, lengths: np.ndarray, open_count: np.ndarray, limit: int, u: np.ndarray, p_open: float
):
    remaining = lengths - t
    active = remaining > 0
    must_close = open_count >= remaining
    may_open = (open_count < limit) & (open_count + 1 <= remaining - 1)
    opening = active & ~must_close & ((open_count == 0) | (may_open & (u < p_open)))
    return opening, active & ~opening


def nested(rng, lengths, types_count, p_open, max_depth, draw_type) -> Ragged:
    """Balanced sequences closing the most recent open bracket (Dyck / nested parentheses)."""
    lengths, steps, limit, u, _, types = _draw_steps(rng, lengths, p_open, max_depth, draw_type)
    n = len(lengths)
    out = np.zeros((n, steps), dtype=np.int64)
    stack = np.zeros((n, limit + 1), dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for t in range(steps):
        opening, closing = _decide(t, lengths, depth, limit, u[t], p_open)
        o, c = rows[opening], rows[closing]
        stack[o, depth[o]] = types[t, o]
        out[o, t] = types[t, o]
        depth[o] += 1
        depth[c] -= 1
        out[c, t] = types_count + stack[c, depth[c]]
    return Ragged(out[np.arange(steps) < lengths[:, None]], lengths)


def shuffled(rng, lengths, types_count, p_open, max_open, draw_type) -> Ragged:
    """Balanced sequences closing a uniformly chosen open bracket (shuffle Dyck / flat parens)."""
    lengths, steps, limit, u, pick, types = _draw_steps(rng, lengths, p_open, max_open, draw_type)
    n = len(lengths)
    out = np.zeros((n, steps), dtype=np.int64)
    bag = np.zeros((n, limit + 1), dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for t in range(steps):
        opening, closing = _decide(t, lengths, size, limit, u[t], p_open)
        o, c = rows[opening], rows[closing]
        bag[o, size[o]] = types[t, o]
        out[o, t] = types[t, o]
        size[o] += 1
        slot = np.floor(pick[t, c] * size[c]).astype(np.int64)
        out[c, t] = types_count + bag[c, slot]
        size[c] -= 1
        bag[c, slot] = bag[c, size[c]]
    return Ragged(out[np.arange(steps) < lengths[:, None]], lengths)


class BracketLanguage(Domain):
    is_task = False
    shuffle = False

    def type_count(self) -> int:
        raise NotImplementedError

    def draw_type(self, rng: np.random.Generator) -> Callable[[int], np.ndarray]:
        raise NotImplementedError

    def body(self, rng, n):
        p = self.params
        lengths = p.length.sample(rng, n)
        engine = shuffled if self.shuffle else nested
        return [
            (
                engine(rng, lengths, self.type_count(), p.p_open, p.max_depth, self.draw_type(rng)),
                True,
            )
        ]

    def mean_body_length(self):
        return self.params.length.mean

    def check_language(self, body):
        k = self.type_count()
        low = self.params.length.min - self.params.length.min % 2
        if len(body) % 2 or not low <= len(body) <= self.params.length.max:
            raise Malformed(f"length {len(body)} is odd or outside {self.params.length}")
        self.as_content(body, "sequence")
        (self._check_shuffled if self.shuffle else self._check_nested)(body.tolist(), k)

    def _check_nested(self, tokens: list[int], k: int) -> None:
        stack: list[int] = []
        for token in tokens:
            if token < k:
                stack.append(token)
                if self.params.max_depth is not None and len(stack) > self.params.max_depth:
                    raise Malformed("deeper than max_depth")
            elif not stack or stack.pop() != token - k:
                raise Malformed("a closing bracket does not match the most recent open one")
        if stack:
            raise Malformed("unclosed brackets")

    def _check_shuffled(self, tokens: list[int], k: int) -> None:
        open_count: dict[int, int] = {}
        total = 0
        for token in tokens:
            kind = token % k
            change = 1 if token < k else -1
            open_count[kind] = open_count.get(kind, 0) + change
            total += change
            if open_count[kind] < 0:
                raise Malformed("a bracket closes before it was opened")
            if self.params.max_depth is not None and total > self.params.max_depth:
                raise Malformed("more open brackets than max_depth")
        if total:
            raise Malformed("unclosed brackets")

    def symbol(self, token):
        k = self.type_count()
        if not 0 <= token < 2 * k:
            return super().symbol(token)
        if k <= len(OPEN_SYMBOLS):
            return (OPEN_SYMBOLS + CLOSE_SYMBOLS)[
                token % k + (len(OPEN_SYMBOLS) if token >= k else 0)
            ]
        return f"{'(' if token < k else ')'}{token % k}"


@register_domain(
    "dyck",
    family="formal",
    description="Dyck language: k bracket types, properly nested, optional max depth.",
)
class Dyck(BracketLanguage):
    Params = DyckParams

    @classmethod
    def alphabet_size(cls, params):
        return 2 * params.k

    def type_count(self):
        return self.params.k

    def draw_type(self, rng):
        return lambda count: rng.integers(0, self.params.k, size=count, dtype=np.int64)


@register_domain(
    "shuffle_dyck",
    family="formal",
    description="k-Shuffle-Dyck, balanced per sequence, closing a uniformly chosen open "
    "bracket (Hu et al.'s generator is hu_shuffle_dyck).",
)
class ShuffleDyck(Dyck):
    shuffle = True


@register_domain(
    "nested_parens",
    family="formal",
    description="Nested parentheses with separate close ids, balanced per sequence "
    "(TILT's stream is tilt_nested_parens).",
)
class NestedParens(BracketLanguage):
    Params = ParensParams

    @classmethod
    def alphabet_size(cls, params):
        return 2 * params.vocab.num_vocab

    def type_count(self):
        return self.params.vocab.num_vocab

    def draw_type(self, rng):
        sampler = TokenSampler(self.params.vocab)
        return lambda count: sampler.sample(rng, count)


@register_domain(
    "flat_parens",
    family="formal",
    description="Paired tokens closed in random order, balanced per sequence (TILT's flat "
    "parens is tilt_flat_parens).",
)
class FlatParens(NestedParens):
    shuffle = True
