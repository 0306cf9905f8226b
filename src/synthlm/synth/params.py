"""Parameter types shared by every domain spec: ranges, the per-domain base, loss-mask policy."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from synthlm.config import Section

LossMask = Literal["output", "all", "none"]


class IntRange(Section):
    """An int drawn uniformly from ``[min, max]`` per sequence; a plain int means a fixed value."""

    min: int
    max: int

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected an int or {min, max}, got a boolean")
        if isinstance(value, int):
            return {"min": value, "max": value}
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return {"min": value[0], "max": value[1]}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.min == self.max:
            return np.full(n, self.min, dtype=np.int64)
        return rng.integers(self.min, self.max + 1, size=n, dtype=np.int64)

    @property
    def mean(self) -> float:
        return (self.min + self.max) / 2

    def contains(self, value: int) -> bool:
        return self.min <= value <= self.max

    def __str__(self) -> str:
        return str(self.min) if self.min == self.max else f"{self.min}-{self.max}"


def at_least(*fields: str, low: int = 1) -> Any:
    """A field validator (assign it in a spec class): the named ranges must start at >= ``low``.

    A field validator rather than a model check, so the error names the exact key and the file
    or override that set it.
    """

    def check(cls: type, value: IntRange) -> IntRange:
        if value.min < low:
            raise ValueError(f"must be >= {low}, got min {value.min}")
        return value

    return field_validator(*fields)(check)


class DomainParams(Section):
    """Keys every domain accepts (its ``type`` is added when the domain is registered)."""

    name: str | None = Field(
        None, description="Name in the manifest and eval (default: the type; must be unique)."
    )
    weight: float = Field(
        1.0, ge=0, description="Relative share of the token budget (weights are normalised)."
    )
    loss_mask: LossMask = Field(
        "output", description="Train on the answer only (output), every token (all) or none."
    )
    promoter_length: int | None = Field(
        None,
        ge=0,
        le=16,
        description="Promoter tokens naming the domain at the start of each sequence "
        "(default: the dataset's).",
    )
