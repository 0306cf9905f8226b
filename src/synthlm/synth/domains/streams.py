"""Bracket streams as their papers generate them: TILT's nested and flat parentheses
(Papadimitriou & Jurafsky 2020) and Hu et al. 2025's k-Shuffle-Dyck.

Unlike ``dyck``/``shuffle_dyck``/``nested_parens``/``flat_parens`` (balanced, one sample per
sequence, separate close ids), these are unbounded streams cut into fixed-length documents, so a
document may start or end with brackets open, exactly as the originals feed their models:

* TILT (toizzy/tilt-transfer, ``corpora/constructed_corpora/hierarchical_parens.py``): one
  stream; at each position a new word opens (probability ``p_open``, or always when nothing is
  open) or the most recently opened word is repeated to close it. Open and close are the *same*
  token id.
* TILT flat parens (``flat_parens.py``): each free position opens a word whose closing copy is
  placed ``d`` positions later, ``d`` drawn from a dependency-length distribution; a taken spot
  moves to the nearest free one (below first, then above).
* Hu et al. 2025 (michahu/pre-pretraining, ``src/grammar.py``, ``generate_shuff_dyck``): opens
  type ``t`` as ``t`` and closes as ``t + k``; closes a uniformly chosen open *type*; must open at
  depth 0 and close at ``max_depth``; stops at ``length`` tokens (not balanced).

A stream restarts (nothing open) at every generation block; see docs/papers/tilt.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator, model_validator

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import DomainParams
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabParams

TILT = "Papadimitriou & Jurafsky 2020 (TILT), toizzy/tilt-transfer corpora/constructed_corpora/"
HU = "Hu et al. 2025, michahu/pre-pretraining src/grammar.py (generate_shuff_dyck)"


class StreamFields(DomainParams):
    length: int = Field(
        512,
        ge=1,
        description="Tokens per document (documents are consecutive chunks of one stream).",
    )


class TiltNestedParams(StreamFields, VocabParams):
    p_open: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Chance to open when something is open (the code's "
        "np.random.choice([0, 1]) is 0.5).",
    )


class TiltFlatParams(StreamFields, VocabParams):
    dep_lengths: dict[int, float] | None = Field(
        None, description="Dependency length -> count (TILT's deplength counter), inline."
    )
    dep_lengths_file: str | None = Field(
        None, description="JSON file {length: count} (e.g. counted from a UD treebank)."
    )

    @field_validator("dep_lengths")
    @classmethod
    def _positive(cls, value):
        if value is not None and (
            not value or min(value) < 1 or min(value.values()) < 0 or not sum(value.values()) > 0
        ):
            raise ValueError("needs lengths >= 1 with counts >= 0 and a positive total")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> TiltFlatParams:
        if (self.dep_lengths is None) == (self.dep_lengths_file is None):
            raise ValueError(
                "dep_lengths / dep_lengths_file: give exactly one (TILT draws close "
                "distances from real dependency lengths)"
            )
        if self.dep_lengths_file is not None:
            path = Path(self.dep_lengths_file)
            if not path.is_file():
                raise ValueError(f"dep_lengths_file: {path} does not exist")
            try:
                table = {int(k): float(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError) as exc:
                raise ValueError(
                    f"dep_lengths_file: {path} is not a JSON object of length -> count ({exc})"
                ) from None
            self.dep_lengths = type(self)._positive(table)
            self.dep_lengths_file = None
        return self


class StreamDomain(Domain):
    is_task = False
    truncatable = True
    block_tokens = 1 << 18

    def body(self, rng, n):
        size = self.params.length
        return [(Ragged(self.stream(rng, n * size), np.full(n, size, dtype=np.int64)), True)]

    def stream(self, rng: np.random.Generator, total: int) -> np.ndarray:
        raise NotImplementedError

    def mean_body_length(self):
        return self.params.length

    def check_language(self, body):
        if not 1 <= len(body) <= self.params.length:
            raise Malformed(f"length {len(body)} outside 1..{self.params.length}")
        self.as_content(body, "sequence")


def nested_stream(opens: np.ndarray) -> np.ndarray:
    """For a stream of open decisions (forced open at depth 0), the index of the open each close
    repeats (-1 for opens). Depth is a random walk reflected at 0: ``d = W + 2 * ceil(-min W / 2)``;
    a close from depth ``h`` pairs with the latest open that reached ``h``, and at each depth
    opens and closes alternate in time, so one sort by (depth, time) pairs them all."""
    steps = np.where(opens, 1, -1)
    walk = np.cumsum(steps)
    low = np.minimum.accumulate(np.minimum(walk, 0))
    depth = walk + 2 * ((-low + 1) // 2)
    before = np.r_[0, depth[:-1]]
    is_open = depth > before
    level = np.where(is_open, depth, before)
    small = np.int16 if len(level) and level.max() < np.iinfo(np.int16).max else np.int64
    order = np.argsort(level.astype(small), kind="stable")  # radix sort for 16-bit keys
    partner = np.full(len(depth), -1, dtype=np.int64)
    closes = ~is_open[order]
    partner[order[closes]] = order[np.flatnonzero(closes) - 1]
    return partner


@register_domain(
    "tilt_nested_parens",
    family="tilt",
    reference=TILT + "hierarchical_parens.py",
    description="TILT nested parens: one stream, a word closes with the same id, most "
    "recent first.",
)
class TiltNestedParens(StreamDomain):
    Params = TiltNestedParams

    def stream(self, rng, total):
        partner = nested_stream(rng.random(total) < self.params.p_open)
        values = TokenSampler(self.params.vocab).sample(rng, total)
        closes = np.flatnonzero(partner >= 0)
        values[closes] = values[partner[closes]]  # partners precede closes; opens are final
        return values


@register_domain(
    "tilt_flat_parens",
    family="tilt",
    reference=TILT + "flat_parens.py",
    description="TILT flat parens: each word closes d positions later, d from dependency lengths.",
)
class TiltFlatParens(StreamDomain):
    Params = TiltFlatParams
    block_tokens = 1 << 16

    def stream(self, rng, total):
        table = self.params.dep_lengths
        lengths = np.fromiter(table, dtype=np.int64)
        weights = np.fromiter(table.values(), dtype=np.float64)
        cdf = np.cumsum(weights / weights.sum())
        words = TokenSampler(self.params.vocab).sample(rng, total).tolist()
        distance = lengths[
            np.minimum(np.searchsorted(cdf, rng.random(total), side="right"), len(lengths) - 1)
        ].tolist()
        return np.asarray(_flat_fill(words, distance, total), dtype=np.int64)


def _flat_fill(words: list[int], distance: list[int], total: int) -> list[int]:
    """TILT's placement loop (sequential by nature: a close may take a later open's spot)."""
    out = [-1] * total
    for i in range(total):
        if out[i] >= 0:
            continue
        word = out[i] = words[i]
        spot = i + distance[i]
        if spot >= total:
            continue
        if out[spot] < 0:
            out[spot] = word
            continue
        step = 1
        while spot - step > i or spot + step < total:  # no free slot left: the close is dropped
            if spot - step > i and out[spot - step] < 0:
                out[spot - step] = word
                break
            if spot + step < total and out[spot + step] < 0:
                out[spot + step] = word
                break
            step += 1
    return out


class HuParams(StreamFields):
    k: int = Field(64, ge=1, le=4096, description="Bracket types (the paper's num_symbols).")
    length: int = Field(
        2048, ge=1, description="Tokens per sequence (max_length; cut there, possibly unbalanced)."
    )
    p_open: float = Field(0.5, gt=0, lt=1, description="Chance to open when 0 < depth < max_depth.")
    max_depth: int = Field(
        16, ge=1, description="At this many open brackets the next token closes one."
    )


@register_domain(
    "hu_shuffle_dyck",
    family="hu2025",
    reference=HU,
    description="k-Shuffle-Dyck as Hu et al. 2025 generate it: close a uniformly chosen "
    "open type, cut at length.",
)
class HuShuffleDyck(StreamDomain):
    Params = HuParams
    block_tokens = (
        1 << 20
    )  # wide steps (per-step cost is call overhead), but not past small budgets

    @classmethod
    def alphabet_size(cls, params):
        return 2 * params.k

    def body(self, rng, n):
        p = self.params
        return [
            (
                Ragged(
                    hu_sequences(rng, n, p.length, p.k, p.p_open, p.max_depth).reshape(-1),
                    np.full(n, p.length),
                ),
                True,
            )
        ]

    def check_language(self, body):
        super().check_language(body)
        k, counts, depth = self.params.k, {}, 0
        for token in body.tolist():
            kind = token % k
            if depth == 0 and token >= k:
                raise Malformed("closes with nothing open")
            if depth >= self.params.max_depth and token < k:
                raise Malformed("opens at max_depth")
            counts[kind] = counts.get(kind, 0) + (1 if token < k else -1)
            if counts[kind] < 0:
                raise Malformed("closes a type that is not open")
            depth += 1 if token < k else -1


def hu_sequences(rng, n: int, length: int, k: int, p_open: float, max_depth: int) -> np.ndarray:
    """``n`` sequences of ``length`` tokens, one step for all at once. The open types of each
    sequence are kept as a compact list (``present``) so a uniform open type is one index.

    Each step computes the open and the close branch for every sequence and keeps one with
    ``where`` (no per-step row subsets), on flat arrays indexed ``row * width + column``."""
    out = np.zeros((length, n), dtype=np.int32)
    width = min(k, max_depth) + 1
    counts = np.zeros(n * k, dtype=np.int64)
    present = np.zeros(n * width, dtype=np.int64)
    distinct = np.zeros(n, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    count_base = np.arange(n, dtype=np.int64) * k
    present_base = np.arange(n, dtype=np.int64) * width
    u = rng.random((length, n), dtype=np.float32)  # float32 / int32 draws halve the block's memory
    pick = rng.random((length, n), dtype=np.float32)
    kinds = rng.integers(0, k, size=(length, n), dtype=np.int32)
    wants = u < p_open
    below = present_base - 1  # + distinct: the list's last entry
    for t in range(length):
        opening = (depth == 0) | ((depth < max_depth) & wants[t])
        step = np.where(opening, 1, -1)
        slot = (pick[t] * distinct).astype(np.int64)  # floor: both factors are >= 0
        kind = np.where(opening, kinds[t], present[present_base + slot])
        out[t] = np.where(opening, kind, kind + k)
        at = count_base + kind
        after = counts[at] + step
        counts[at] = after
        gone = after == 0  # a closed-out type's slot takes the list's last entry ...
        pos = np.where(opening, distinct, slot)
        present[present_base + pos] = np.where(gone, present[below + distinct], kind)
        distinct += (after == 1) & opening  # ... and a new type is appended
        distinct -= gone
        depth += step
    return np.ascontiguousarray(out.T)
