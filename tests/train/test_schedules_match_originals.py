"""synthlm's schedules step for step against the schedulers the paper recipes ran.

The other side is real wherever it can run here: torch's ``LinearLR`` / ``CosineAnnealingLR`` /
``LambdaLR`` chained by ``SequentialLR`` exactly as nanoT5's ``get_lr_scheduler`` builds them
(PiotrNawrot/nanoT5, nanoT5/utils/model_utils.py), and HF's ``get_scheduler`` (the HF Trainer's
schedules: DEPTH, EntiGraph, metalang, Hu et al. 2025). GPT-NeoX's ``AnnealingLR``
(megatron/learning_rates.py) needs megatron; its warmup and cosine are restated below from that
file. Each scheduler drives a real optimizer and the lr of every optimizer step is read from it,
stepped the way those loops step it (``optimizer.step()`` then ``scheduler.step()``).
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import TrainingArguments, get_scheduler

from synthlm.config import validate
from synthlm.train.schedules import ScheduleConfig, build_schedule

PEAK = 2e-2


def ours(total: int, lr: float = PEAK, **fields) -> list[float]:
    multiplier = build_schedule(validate(ScheduleConfig, fields), total)
    return [lr * multiplier(step) for step in range(total)]


def driven(make_scheduler, total: int, lr: float = PEAK) -> list[float]:
    """The lr each of ``total`` optimizer steps runs at under a torch scheduler."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def nanot5_cosine(warmup: int, total: int, final: float):
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    def make(optimizer):
        ramp = LinearLR(optimizer, start_factor=0.5, end_factor=1, total_iters=warmup)
        decay = CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=final)
        return SequentialLR(optimizer, schedulers=[ramp, decay], milestones=[warmup])

    return make


def nanot5_legacy(total: int, base_lr: float):
    from torch.optim.lr_scheduler import LambdaLR, LinearLR, SequentialLR

    first = math.ceil(total * 0.9)

    def make(optimizer):
        inverse_sqrt = LambdaLR(
            optimizer,
            lambda step: min(1e-2, 1.0 / math.sqrt(step)) / base_lr if step else 1e-2 / base_lr,
        )
        decay = LinearLR(
            optimizer,
            start_factor=min(1e-2, 1.0 / math.sqrt(first)) / base_lr,
            end_factor=0,
            total_iters=total - first,
        )
        return SequentialLR(optimizer, schedulers=[inverse_sqrt, decay], milestones=[first])

    return make


def test_nanot5_cosine_with_its_half_peak_warmup():
    total, warmup, final = 300, 40, 1e-5
    theirs = driven(nanot5_cosine(warmup, total, final), total)
    mine = ours(
        total,
        name="cosine",
        warmup_steps=warmup,
        warmup_start=0.5,
        final_lr_ratio=final / PEAK,
    )
    assert mine == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_nanot5_legacy_schedule_at_its_1e_2_peak():
    total = 2_000  # long enough for 1/sqrt(step) to pass below 1e-2 (step 10,000 is too long)
    theirs = driven(nanot5_legacy(total, base_lr=1e-2), total, lr=1e-2)
    assert ours(total, lr=1e-2, name="legacy") == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    # the inverse square root phase itself: a run long enough to leave the 1e-2 plateau
    total = 40_000
    theirs = driven(nanot5_legacy(total, base_lr=1e-2), total, lr=1e-2)
    assert ours(total, lr=1e-2, name="legacy") == pytest.approx(theirs, rel=1e-9, abs=1e-12)


HF_CASES = [
    # (HF scheduler name, its kwargs, synthlm schedule fields)
    ("linear", {}, {"name": "linear", "final_lr_ratio": 0.0}),  # DEPTH, metalang
    ("cosine", {}, {"name": "cosine", "final_lr_ratio": 0.0}),  # EntiGraph, instruct
    (
        "cosine_with_min_lr",  # Hu et al. 2025: lr_scheduler_kwargs={"min_lr_rate": 0.1}
        {"scheduler_specific_kwargs": {"min_lr_rate": 0.1}},
        {"name": "cosine", "final_lr_ratio": 0.1},
    ),
    ("constant_with_warmup", {}, {"name": "constant_with_warmup"}),
    ("inverse_sqrt", {}, {"name": "inverse_sqrt"}),
    (
        "warmup_stable_decay",
        {"scheduler_specific_kwargs": {"num_decay_steps": 40, "decay_type": "linear"}},
        {"name": "wsd", "decay_ratio": 0.2, "final_lr_ratio": 0.0},
    ),
]


@pytest.mark.parametrize("warmup", [0, 1, 25])
@pytest.mark.parametrize(("hf_name", "hf_kwargs", "fields"), HF_CASES, ids=lambda c: str(c))
def test_hf_schedules(hf_name, hf_kwargs, fields, warmup):
    total = 200

    def make(optimizer):
        return get_scheduler(
            hf_name,
            optimizer,
            num_warmup_steps=warmup,
            num_training_steps=total,
            **hf_kwargs,
        )

    assert ours(total, warmup_steps=warmup, **fields) == pytest.approx(
        driven(make, total), rel=1e-9, abs=1e-12
    )


@pytest.mark.parametrize(("ratio", "total"), [(0.05, 130), (0.05, 455), (0.03, 1000), (0.1, 7)])
def test_warmup_ratio_rounds_as_the_hf_trainer_does(tmp_path, ratio, total):
    # transformers 5 takes the ratio through warmup_steps (a float below 1)
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=ratio, report_to=[])
    assert validate(ScheduleConfig, {"warmup_ratio": ratio}).warmup(total) == (
        args.get_warmup_steps(total)
    )


def neox_annealing_lr(
    step: int, start_lr: float, warmup: float, total: int, min_lr: float
) -> float:
    """GPT-NeoX ``AnnealingLR.get_lr`` (decay_style cosine), restated from its source: lr of the
    optimizer step taken at ``num_iters == step``."""
    num_iters = min(step, total - warmup)
    if warmup > 0 and step <= warmup:
        return start_lr * num_iters / warmup
    num_iters -= warmup
    lr = start_lr / 2.0 * (math.cos(math.pi * num_iters / total) + 1)
    return max(lr, min_lr)


@pytest.mark.parametrize(("total", "warmup"), [(1000, 10), (143, 1), (50, 0), (40, 30)])
def test_neox_cosine_is_gpt_neox_annealing_lr(total, warmup):
    mine = ours(total, lr=6e-4, name="neox_cosine", warmup_steps=warmup, final_lr_ratio=0.1)
    neox = [neox_annealing_lr(s, 6e-4, warmup, total, 6e-5) for s in range(total)]
    assert mine == pytest.approx(neox, rel=1e-12)


@pytest.mark.parametrize(("total", "ratio"), [(1050, 0.01), (350, 0.01), (35, 0.1), (143, 0.01)])
def test_neox_cosine_keeps_a_warmup_ratio_fractional_as_gpt_neox_does(total, ratio):
    """NeoX: ``warmup_iter = neox_args.warmup * num_iters`` (megatron/training.py), a float
    handed to ``AnnealingLR``; 1% of 1,050 steps is a warmup of 10.5 steps there."""
    mine = ours(total, lr=6e-4, name="neox_cosine", warmup_ratio=ratio, final_lr_ratio=0.1)
    neox = [neox_annealing_lr(s, 6e-4, ratio * total, total, 6e-5) for s in range(total)]
    assert mine == pytest.approx(neox, rel=1e-12)


def test_neox_cosine_flattens_where_ours_still_decays():
    """Pythia's shape: lr 6e-4, min 6e-5, 1% warmup. NeoX's cosine hits the floor at about 80%
    of the run; synthlm's ``cosine`` (HF's) only reaches it at the end."""
    total, warmup = 1000, 10
    neox = ours(total, lr=6e-4, name="neox_cosine", warmup_steps=warmup, final_lr_ratio=0.1)
    hf = ours(total, lr=6e-4, name="cosine", warmup_steps=warmup, final_lr_ratio=0.1)
    assert neox[810] == pytest.approx(6e-5) and hf[810] > 1.5 * 6e-5


@pytest.mark.parametrize("every, gamma, total", [(1, 0.85, 12), (7, 0.85, 70), (5, 0.1, 23)])
def test_step_is_torchs_steplr(every, gamma, total):
    """torch.optim.lr_scheduler.StepLR(step_size, gamma) stepped per optimizer step; Rocket
    steps it once per epoch (llama.py: StepLR(optimizer, 1, gamma=0.85), Lightning's epoch
    interval), which is decay_every = one epoch's steps."""
    from torch.optim.lr_scheduler import StepLR

    expected = driven(lambda o: StepLR(o, step_size=every, gamma=gamma), total)
    assert ours(total, name="step", decay_every=every, gamma=gamma) == pytest.approx(
        expected, rel=1e-12
    )


def test_step_needs_its_interval_and_only_it_uses_it():
    from synthlm.errors import ConfigError

    with pytest.raises(ConfigError, match="needs decay_every"):
        validate(ScheduleConfig, {"name": "step"})
    with pytest.raises(ConfigError, match="needs decay_every"):
        validate(ScheduleConfig, {"name": "cosine", "decay_every": 10})
