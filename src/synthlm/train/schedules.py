"""Learning-rate schedules as pure functions ``step -> multiplier of optim.lr``.

A schedule is registered with :func:`register_schedule` and built from the config and the
run's total number of optimizer steps. Being a pure function of the step, it needs no state of
its own in a checkpoint beyond the step (torch's ``LambdaLR`` still saves its counter, which
resume restores).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import Field, field_validator, model_validator

from synthlm.config import Section

Multiplier = Callable[[int], float]
SCHEDULES: dict[str, Callable[[ScheduleConfig, int], Multiplier]] = {}


def register_schedule(name: str) -> Callable[[Callable[[ScheduleConfig, int], Multiplier]], Callable[[ScheduleConfig, int], Multiplier]]:
    def decorate(fn: Callable[[ScheduleConfig, int], Multiplier]) -> Callable[[ScheduleConfig, int], Multiplier]:
        SCHEDULES[name] = fn
        return fn

    return decorate


class ScheduleConfig(Section):
    """How the learning rate moves over the run (multiples of ``optim.lr``)."""

    name: str = Field("cosine", description="constant, constant_with_warmup, linear, cosine, inverse_sqrt or wsd.")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup from 0 over this many steps.")
    warmup_ratio: float | None = Field(None, ge=0, lt=1, description="Warmup as a fraction of the run (instead of warmup_steps).")
    final_lr_ratio: float = Field(0.1, ge=0, le=1, description="linear/cosine/wsd: lr at the last step, as a fraction of optim.lr.")
    decay_ratio: float = Field(0.2, gt=0, le=1, description="wsd: fraction of the run spent decaying at the end.")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule '{name}'; allowed: {', '.join(SCHEDULES)}")
        return name

    @model_validator(mode="after")
    def _one_warmup(self) -> ScheduleConfig:
        if self.warmup_ratio is not None and self.warmup_steps:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        if self.name == "constant" and (self.warmup_steps or self.warmup_ratio):
            raise ValueError("the constant schedule has no warmup; use name: constant_with_warmup")
        return self

    def warmup(self, total_steps: int) -> int:
        if self.warmup_ratio is not None:
            return int(self.warmup_ratio * total_steps)
        return self.warmup_steps


def build_schedule(cfg: ScheduleConfig, total_steps: int) -> Multiplier:
    """The multiplier function for a run of ``total_steps`` optimizer steps."""
    return SCHEDULES[cfg.name](cfg, max(total_steps, 1))


def _with_warmup(warmup: int, body: Multiplier) -> Multiplier:
    """Linear warmup for ``warmup`` steps (step 0 already gets a non-zero lr), then ``body``."""
    return lambda step: (step + 1) / (warmup + 1) if step < warmup else body(step)


def _progress(step: int, start: int, end: int) -> float:
    """0 at ``start`` to 1 at ``end`` (the last step), clamped."""
    if end <= start:
        return 1.0
    return min(max((step - start) / (end - start), 0.0), 1.0)


@register_schedule("constant")
def constant(cfg: ScheduleConfig, total: int) -> Multiplier:
    return lambda step: 1.0


@register_schedule("constant_with_warmup")
def constant_with_warmup(cfg: ScheduleConfig, total: int) -> Multiplier:
    return _with_warmup(cfg.warmup(total), lambda step: 1.0)


@register_schedule("linear")
def linear(cfg: ScheduleConfig, total: int) -> Multiplier:
    warmup, floor = cfg.warmup(total), cfg.final_lr_ratio
    return _with_warmup(warmup, lambda step: 1.0 - (1.0 - floor) * _progress(step, warmup, total - 1))


@register_schedule("cosine")
def cosine(cfg: ScheduleConfig, total: int) -> Multiplier:
    warmup, floor = cfg.warmup(total), cfg.final_lr_ratio

    def body(step: int) -> float:
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * _progress(step, warmup, total - 1)))

    return _with_warmup(warmup, body)


@register_schedule("inverse_sqrt")
def inverse_sqrt(cfg: ScheduleConfig, total: int) -> Multiplier:
    """1 at the end of warmup, then ``sqrt(warmup / step)`` (T5 / fairseq style)."""
    warmup = cfg.warmup(total)
    scale = max(warmup, 1)
    return _with_warmup(warmup, lambda step: math.sqrt(scale / max(step, scale)))


@register_schedule("wsd")
def wsd(cfg: ScheduleConfig, total: int) -> Multiplier:
    """Warmup-stable-decay: flat at 1 after warmup, linear decay over the last ``decay_ratio``."""
    warmup, floor = cfg.warmup(total), cfg.final_lr_ratio
    decay_start = max(warmup, total - math.ceil(cfg.decay_ratio * total))
    return _with_warmup(warmup, lambda step: 1.0 - (1.0 - floor) * _progress(step, decay_start - 1, total - 1))
