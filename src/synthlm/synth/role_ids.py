"""The id layout of a synthetic dataset: which id plays which role, decided once per dataset.

    [0, content)            content ids, shared by all domains (each uses the first ids it needs)
    markers                 one id per structural marker any domain uses (answer, query, sep, ...)
    digits                  ten ids for numbers written in decimal (count, length, sort_numbers)
    promoters               a pool holding every domain's promoter, permuted by the seed

Roles never share an id, so a delimiter can never be mistaken for content (a Seqthetic bug). The
layout is written to the manifest; when synthetic data is mixed with natural text the trainer
shifts the whole range ``[0, vocab_size)`` into its reserved meta-language ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthlm.synth.rng import PROMOTERS, generator

# Canonical order: a marker's id depends only on which markers the dataset uses.
MARKERS = (
    "answer",
    "query",
    "sep",
    "empty",
    "yes",
    "no",
    "word",
    "row",
    "rule",
    "case",
    "result",
    "minus",
    "colon",
    "lbracket",
    "rbracket",
    "upper",
    "lower",
    "math",
)
MARKER_SYMBOLS = {
    "answer": "<ans>",
    "query": "<qry>",
    "sep": "<sep>",
    "empty": "<empty>",
    "yes": "<yes>",
    "no": "<no>",
    "word": "<w>",
    "row": "<row>",
    "rule": "<rule>",
    "case": "<case>",
    "result": "<result>",
    "minus": "-",
    "colon": ":",
    "lbracket": "[",
    "rbracket": "]",
    "upper": "<UPPER>",
    "lower": "<LOWER>",
    "math": "<MATH>",
}


@dataclass(frozen=True)
class DomainNeeds:
    """What one domain asks of the layout."""

    name: str
    content: int
    markers: tuple[str, ...] = ()
    digits: bool = False
    promoter_length: int = 0


@dataclass(frozen=True)
class RoleIds:
    content_size: int
    markers: dict[str, int]
    digits_start: int | None
    promoters: dict[str, tuple[int, ...]] = field(default_factory=dict)
    vocab_size: int = 0

    @classmethod
    def build(cls, needs: list[DomainNeeds], seed: int) -> RoleIds:
        content = max(n.content for n in needs)
        used = {m for n in needs for m in n.markers}
        unknown = used - set(MARKERS)
        if unknown:
            raise ValueError(f"unknown markers {sorted(unknown)}")
        markers = {m: content + i for i, m in enumerate(m for m in MARKERS if m in used)}
        cursor = content + len(markers)
        digits_start = None
        if any(n.digits for n in needs):
            digits_start, cursor = cursor, cursor + 10
        pool = sum(n.promoter_length for n in needs)
        ids = cursor + generator(seed, PROMOTERS).permutation(pool)
        promoters, taken = {}, 0
        for n in needs:
            promoters[n.name] = tuple(int(i) for i in ids[taken : taken + n.promoter_length])
            taken += n.promoter_length
        return cls(content, markers, digits_start, promoters, cursor + pool)

    # -- lookups -------------------------------------------------------------------------------
    def marker(self, name: str) -> int:
        return self.markers[name]

    def digit(self, value: int) -> int:
        if self.digits_start is None:
            raise KeyError("this layout has no digit ids")
        return self.digits_start + value

    def promoter(self, domain: str) -> np.ndarray:
        return np.asarray(self.promoters.get(domain, ()), dtype=np.int64)

    @property
    def promoter_start(self) -> int:
        return self.content_size + len(self.markers) + (10 if self.digits_start is not None else 0)

    def role_of(self, token: int) -> str:
        """``content``, ``marker:<name>``, ``digit`` or ``promoter:<domain>``."""
        if 0 <= token < self.content_size:
            return "content"
        for name, value in self.markers.items():
            if value == token:
                return f"marker:{name}"
        if self.digits_start is not None and self.digits_start <= token < self.digits_start + 10:
            return "digit"
        for name, ids in self.promoters.items():
            if token in ids:
                return f"promoter:{name}"
        return "unknown"

    def symbol(self, token: int) -> str:
        """A short readable name for an id: ``17``, ``<ans>``, ``d3`` (digit), ``P.copy0``."""
        role = self.role_of(token)
        if role == "content":
            return str(token)
        if role.startswith("marker:"):
            return MARKER_SYMBOLS[role[7:]]
        if role == "digit":
            return f"d{token - int(self.digits_start or 0)}"
        if role.startswith("promoter:"):
            name = role[9:]
            return f"P.{name}{self.promoters[name].index(token)}"
        return f"?{token}"

    # -- (de)serialisation ---------------------------------------------------------------------
    def ranges(self) -> list[dict[str, Any]]:
        """Contiguous id ranges per role, in id order (what the manifest lists)."""
        out = [{"role": "content", "start": 0, "stop": self.content_size}]
        out += [
            {"role": f"marker:{name}", "start": i, "stop": i + 1}
            for name, i in self.markers.items()
        ]
        if self.digits_start is not None:
            out.append(
                {"role": "digits", "start": self.digits_start, "stop": self.digits_start + 10}
            )
        if self.vocab_size > self.promoter_start:
            out.append({"role": "promoters", "start": self.promoter_start, "stop": self.vocab_size})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "content": {"start": 0, "stop": self.content_size},
            "markers": dict(self.markers),
            "digits": None
            if self.digits_start is None
            else {"start": self.digits_start, "stop": self.digits_start + 10},
            "promoters": {name: list(ids) for name, ids in self.promoters.items()},
            "ranges": self.ranges(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoleIds:
        digits = data.get("digits")
        return cls(
            content_size=int(data["content"]["stop"]),
            markers={k: int(v) for k, v in data["markers"].items()},
            digits_start=None if digits is None else int(digits["start"]),
            promoters={k: tuple(int(i) for i in v) for k, v in data["promoters"].items()},
            vocab_size=int(data["vocab_size"]),
        )
