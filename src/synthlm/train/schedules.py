"""Learning-rate schedules as pure functions ``step -> multiplier of optim.lr``.

A schedule is registered with :func:`register_schedule` and built from the config and the
run's total number of optimizer steps. Being a pure function of the step, it needs no state of
its own in a checkpoint beyond the step (torch's ``LambdaLR`` still saves its counter, which
resume restores).

Step ``s`` (0-based) trains at ``multiplier(s)``. The conventions are those of the codebases the
paper recipes come from (HF's ``get_*_schedule_with_warmup``, torch's ``LinearLR`` /
``CosineAnnealingLR`` as nanoT5 chains them, GPT-NeoX's ``AnnealingLR``), so a recipe's numbers
give its learning rates step for step:

- warmup: ``warmup_start`` at step 0, rising linearly to 1 at step ``warmup`` (the first step
  trains at lr 0 with the default start of 0, as in all three);
- decay: progress ``(s - warmup) / (total - warmup)``, so the floor (``final_lr_ratio``) is where
  the run would be one step after its last; the last step trains just above it;
- ``warmup_ratio``: ``ceil(ratio x total)`` warmup steps, as the HF Trainer rounds (except
  ``neox_cosine``, whose warmup stays ``ratio x total``, as GPT-NeoX's does).

tests/train/test_schedules_match_originals.py compares every schedule with those originals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from synthlm.config import Section
from synthlm.errors import ConfigError
from synthlm.registry import Registry

Multiplier = Callable[[int], float]
SCHEDULES: Registry[Callable[[ScheduleConfig, int], Multiplier]] = Registry("schedule")
# keys only some schedules read: given another value than the default to one that does not,
# the run would go on as if they were never written (a plugin schedule reads them all)
READ_BY = {
    "final_lr_ratio": ("linear", "cosine", "wsd", "neox_cosine"),
    "decay_ratio": ("wsd",),
    "gamma": ("step",),
}
# the schedules shipped here; each reads what READ_BY says of it and nothing else
BUILTIN = frozenset(
    {name for names in READ_BY.values() for name in names}
    | {"constant", "constant_with_warmup", "inverse_sqrt", "legacy"}
)
# shipped schedules that have no warmup at all (the config refuses one)
NO_WARMUP = frozenset({"constant", "legacy"})
register_schedule = SCHEDULES.register


class ScheduleConfig(Section):
    """How the learning rate moves over the run (multiples of ``optim.lr``)."""

    name: str = Field(
        "cosine",
        description="constant, constant_with_warmup, linear, cosine, inverse_sqrt, wsd, "
        "neox_cosine (GPT-NeoX's clipped cosine), step (torch's StepLR) or legacy (nanoT5's "
        "T5 schedule).",
    )
    warmup_steps: int = Field(
        0, ge=0, description="Linear warmup from warmup_start over this many steps."
    )
    warmup_start: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The lr of step 0, as a fraction of the peak (nanoT5's cosine: 0.5).",
    )
    warmup_ratio: float | None = Field(
        None, ge=0, lt=1, description="Warmup as a fraction of the run (instead of warmup_steps)."
    )
    final_lr_ratio: float = Field(
        0.1,
        ge=0,
        le=1,
        description="linear/cosine/wsd/neox_cosine: where the decay ends, as a fraction of optim.lr (reached "
        "one step after the last, as HF and torch schedules do).",
    )
    decay_ratio: float = Field(
        0.2, gt=0, le=1, description="wsd: fraction of the run spent decaying at the end."
    )
    decay_every: PositiveInt | Literal["epoch"] | None = Field(
        None,
        description="step: optimizer steps between two decays (torch StepLR's step_size), or "
        "'epoch': once per pass over the training data (StepLR stepped per epoch).",
    )
    gamma: float = Field(
        0.1, gt=0, le=1, description="step: factor applied at every decay (torch's default 0.1)."
    )
    on_overflow: Literal["hold", "advance"] = Field(
        "hold",
        description="fp16: a step the loss scaler skips (gradient overflow) holds the schedule "
        "where it is, as DeepSpeed's engine does (and accelerate's scheduler, for unfused "
        "optimizers), so the run trains later steps one lr behind per overflow (GPT-NeoX / "
        "Pythia); advance: the schedule moves on anyway (PyTorch Lightning).",
    )

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return SCHEDULES.check(name)

    @model_validator(mode="after")
    def _one_warmup(self) -> ScheduleConfig:
        if self.warmup_ratio is not None and self.warmup_steps:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        if self.name == "constant" and (self.warmup_steps or self.warmup_ratio):
            raise ValueError("the constant schedule has no warmup; use name: constant_with_warmup")
        if (self.name == "step") != (self.decay_every is not None):
            raise ValueError(
                "the step schedule needs decay_every (steps between decays), and only it uses "
                "decay_every"
            )
        unread = [key for key, readers in READ_BY.items() if self.name not in readers]
        for key in self.changed_from_default(unread) if self.name in BUILTIN else ():
            raise ValueError(
                f"{key}: the {self.name} schedule does not read it (only "
                f"{', '.join(READ_BY[key])}); remove it or pick one of those schedules"
            )
        if self.name == "legacy" and (self.warmup_steps or self.warmup_ratio):
            raise ValueError(
                "the legacy schedule (nanoT5's T5 recipe) has no warmup; set "
                "schedule.warmup_steps=0"
            )
        self._check_warmup_start()
        return self

    def _check_warmup_start(self) -> None:
        """``warmup_start`` is where a warmup begins: a shipped schedule without a warmup (none
        set, or constant / legacy, which have none) starts at the peak whatever it says."""
        if self.name not in BUILTIN or not self.warmup_start:
            return
        if self.name in NO_WARMUP:
            fix = "remove warmup_start"
        elif not (self.warmup_steps or self.warmup_ratio):
            fix = "set schedule.warmup_steps (or warmup_ratio) or remove warmup_start"
        else:
            return
        raise ValueError(
            f"warmup_start: {self.warmup_start:g} is the lr of the first warmup step, but the "
            f"{self.name} schedule here has no warmup; {fix}"
        )

    def warmup(self, total_steps: int) -> int:
        if self.warmup_ratio is not None:
            return math.ceil(self.warmup_ratio * total_steps)  # the HF Trainer's rounding
        return self.warmup_steps


def build_schedule(
    cfg: ScheduleConfig, total_steps: int, steps_per_epoch: Callable[[], float] | None = None
) -> Multiplier:
    """The multiplier function for a run of ``total_steps`` optimizer steps.

    ``steps_per_epoch`` (optimizer steps in one pass over the training data, asked only for
    ``decay_every: epoch``) turns an epoch interval into steps.
    """
    if cfg.decay_every == "epoch":
        if steps_per_epoch is None:
            raise ConfigError("schedule.decay_every: epoch needs a run with a data size")
        cfg = cfg.model_copy(update={"decay_every": steps_per_epoch()})
    return SCHEDULES[cfg.name](cfg, max(total_steps, 1))


def _with_warmup(warmup: int, body: Multiplier, start: float = 0.0) -> Multiplier:
    """``start`` at step 0 rising linearly to 1 at step ``warmup``, then ``body`` (torch's
    ``LinearLR(start, 1, warmup)``; HF's and GPT-NeoX's warmups with ``start`` 0)."""
    return lambda step: start + (1.0 - start) * step / warmup if step < warmup else body(step)


def _progress(step: int, start: int, length: int) -> float:
    """0 at ``start`` to 1 at ``start + length``, clamped."""
    if length <= 0:
        return 1.0
    return min(max((step - start) / length, 0.0), 1.0)


def _linear_decay(floor: float, start: int, length: int) -> Multiplier:
    """1 at ``start`` down to ``floor`` at ``start + length`` (the body of linear and wsd)."""
    return lambda step: 1.0 - (1.0 - floor) * _progress(step, start, length)


@register_schedule("constant")
def constant(cfg: ScheduleConfig, total: int) -> Multiplier:
    return lambda step: 1.0


@register_schedule("constant_with_warmup")
def constant_with_warmup(cfg: ScheduleConfig, total: int) -> Multiplier:
    return _with_warmup(cfg.warmup(total), lambda step: 1.0, cfg.warmup_start)


@register_schedule("linear")
def linear(cfg: ScheduleConfig, total: int) -> Multiplier:
    warmup = cfg.warmup(total)
    body = _linear_decay(cfg.final_lr_ratio, warmup, total - warmup)
    return _with_warmup(warmup, body, cfg.warmup_start)


@register_schedule("cosine")
def cosine(cfg: ScheduleConfig, total: int) -> Multiplier:
    warmup, floor = cfg.warmup(total), cfg.final_lr_ratio

    def body(step: int) -> float:
        return floor + (1.0 - floor) * 0.5 * (
            1.0 + math.cos(math.pi * _progress(step, warmup, total - warmup))
        )

    return _with_warmup(warmup, body, cfg.warmup_start)


INVERSE_SQRT_TIMESCALE = 10_000


@register_schedule("inverse_sqrt")
def inverse_sqrt(cfg: ScheduleConfig, total: int) -> Multiplier:
    """1 at the end of warmup, then ``sqrt(warmup / step)`` (fairseq style); without warmup
    ``sqrt(1e4 / (step + 1e4))``: HF's ``get_inverse_sqrt_schedule`` with its default timescale."""
    warmup = cfg.warmup(total)
    timescale = warmup or INVERSE_SQRT_TIMESCALE
    return _with_warmup(
        warmup,
        lambda step: math.sqrt(timescale / (step + timescale - warmup)),
        cfg.warmup_start,
    )


@register_schedule("wsd")
def wsd(cfg: ScheduleConfig, total: int) -> Multiplier:
    """Warmup-stable-decay: flat at 1 after warmup, linear decay over the last ``decay_ratio``
    of the run (HF's ``get_wsd_schedule`` with ``decay_type="linear"``)."""
    warmup = cfg.warmup(total)
    decay_start = max(warmup, total - math.ceil(cfg.decay_ratio * total))
    body = _linear_decay(cfg.final_lr_ratio, decay_start, total - decay_start)
    return _with_warmup(warmup, body, cfg.warmup_start)


@register_schedule("neox_cosine")
def neox_cosine(cfg: ScheduleConfig, total: int) -> Multiplier:
    """GPT-NeoX's ``AnnealingLR`` cosine (the Pythia runs): after warmup the cosine runs over
    the whole run, ``0.5 (1 + cos(pi k / total))`` with ``k = min(step, total - warmup) -
    warmup``, and is clipped at ``final_lr_ratio`` rather than scaled onto it, so it reaches the
    floor well before the end (at about 80% of a Pythia run) and stays there. A
    ``warmup_ratio`` is kept fractional, as NeoX's ``warmup_iter = warmup * train_iters`` is
    (where the HF Trainer rounds up)."""
    floor, start = cfg.final_lr_ratio, cfg.warmup_start
    warmup = cfg.warmup_ratio * total if cfg.warmup_ratio is not None else cfg.warmup_steps

    def multiplier(step: int) -> float:
        # NeoX clamps the warmup count too; at 0 for a warmup longer than the run (NeoX would
        # go negative there)
        clamped = max(min(step, total - warmup), 0)
        if step <= warmup and warmup > 0:
            return start + (1.0 - start) * clamped / warmup
        return max(0.5 * (1.0 + math.cos(math.pi * (clamped - warmup) / total)), floor)

    return multiplier


# nanoT5's "legacy" schedule (the original T5 recipe with Adafactor): lr = min(1e-2, 1/sqrt(step))
# for the first 90% of steps, then linear decay towards 0. Written relative to its 1e-2 peak, so
# optim.lr=1e-2 gives nanoT5's absolute rates exactly (other peaks scale the same shape).
LEGACY_PEAK = 1e-2
LEGACY_CONSTANT_SHARE = 0.9


@register_schedule("step")
def step_decay(cfg: ScheduleConfig, total: int) -> Multiplier:
    """torch's ``StepLR``: ``gamma ** (steps since warmup // decay_every)``. Stepped once per
    epoch with ``step_size=1`` (Rocket, Lightning's default interval) it is this with
    ``decay_every`` one epoch's optimizer steps."""
    warmup, gamma = cfg.warmup(total), cfg.gamma
    # set by the validator (step needs it); an epoch may end within a step: then a fraction
    every = float(cfg.decay_every)  # type: ignore[arg-type]
    return _with_warmup(
        warmup, lambda step: gamma ** math.floor((step - warmup) / every), cfg.warmup_start
    )


@register_schedule("legacy")
def legacy(cfg: ScheduleConfig, total: int) -> Multiplier:
    """``min(1, 1 / (1e-2 sqrt(step)))`` (1 at step 0) for ``ceil(0.9 total)`` steps, then the
    value reached there decays linearly: ``m(n1) (1 - (step - n1) / (total - n1))``, as
    torch's ``LinearLR(end_factor=0)`` after ``SequentialLR`` does in nanoT5."""
    first = math.ceil(total * LEGACY_CONSTANT_SHARE)

    def inverse_sqrt_phase(step: int) -> float:
        return min(LEGACY_PEAK, 1.0 / math.sqrt(step)) / LEGACY_PEAK if step else 1.0

    def multiplier(step: int) -> float:
        if step < first:
            return inverse_sqrt_phase(step)
        return inverse_sqrt_phase(first) * max(0.0, 1.0 - (step - first) / max(total - first, 1))

    return multiplier  # no warmup: nanoT5 has none, and the config refuses one
