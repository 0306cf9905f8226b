"""fp16 loss scaling by DeepSpeed's rule (``train.loss_scale``), beside DeepSpeed's own scaler.

The reference is the real ``deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler``; only its
``dist.get_rank()`` (used for a log line when it overflows) is answered by a stand-in, because
it would otherwise need an initialised DeepSpeed process group. The rule itself is DeepSpeed's
code, unchanged.
"""

from __future__ import annotations

import math
import random
import types

import pytest
import torch
from train_helpers import deepspeed_accelerator, tiny_config

from run_helpers import synthlm, write_config
from synthlm.config import validate
from synthlm.errors import ConfigError, TrainingDiverged
from synthlm.train.config import LossScaleConfig, RunConfig
from synthlm.train.loss_scale import DeepSpeedGradScaler, DynamicLossScale


def deepspeed_scaler(config: LossScaleConfig, monkeypatch):
    from deepspeed.runtime.fp16 import loss_scaler

    monkeypatch.setattr(loss_scaler, "dist", types.SimpleNamespace(get_rank=lambda: 0))
    return loss_scaler.DynamicLossScaler(
        init_scale=config.initial,
        scale_window=config.window,
        min_scale=config.min,
        delayed_shift=config.hysteresis,
        consecutive_hysteresis=False,
    )


@pytest.mark.parametrize(
    "initial, window, hysteresis, minimum, overflow_rate",
    [
        (4096, 1000, 2, 1, 0.002),  # Pythia's section
        (4096, 5, 2, 1, 0.3),
        (2**16, 3, 1, 1, 0.4),
        (1024, 4, 3, 64, 0.25),  # reaches the floor
    ],
)
def test_the_scale_moves_as_deepspeeds_dynamic_loss_scaler_moves_it(
    monkeypatch, initial, window, hysteresis, minimum, overflow_rate
):
    pytest.importorskip("deepspeed")
    config = LossScaleConfig(initial=initial, window=window, hysteresis=hysteresis, min=minimum)
    theirs = deepspeed_scaler(config, monkeypatch)
    ours = DynamicLossScale(config.initial, config.window, config.hysteresis, config.min)
    rng = random.Random(initial + window)
    for step in range(3000):
        overflow = rng.random() < overflow_rate
        try:
            theirs.update_scale(overflow)
        except Exception:  # DeepSpeed stops at the floor with a bare Exception
            with pytest.raises(TrainingDiverged, match="minimum loss scale"):
                ours.update(overflow)
            return
        ours.update(overflow)
        assert (ours.scale, ours.hysteresis_left) == (theirs.cur_scale, theirs.cur_hysteresis), step
    assert minimum == 1  # only the floor case stops early


def test_pythias_scale_first_doubles_after_1001_clean_steps_and_skips_the_first_overflow():
    rule = DynamicLossScale(4096.0, 1000, 2, 1.0)
    for _ in range(1000):
        rule.update(False)
    assert rule.scale == 4096
    rule.update(False)
    assert rule.scale == 8192
    rule.update(True)  # hysteresis 2: the first overflow only spends it
    assert (rule.scale, rule.hysteresis_left) == (8192, 1)
    rule.update(True)
    assert rule.scale == 4096


def train_steps(scaler, model, steps, overflow_at):
    """fp32 steps through the scaler; an inf in one gradient marks an overflowing step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    record = []
    for step in range(steps):
        x = torch.full((2, 3), 0.5 + step)
        loss = model(x).pow(2).mean()
        scaler.scale(loss).backward()
        if step in overflow_at:
            model.weight.grad[0, 0] = float("inf")
        before = model.weight.detach().clone()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        record.append((scaler.get_scale(), not torch.equal(before, model.weight)))
    return record


def test_the_scaler_skips_overflowing_steps_and_resumes_its_rule_from_a_checkpoint(tmp_path):
    config = LossScaleConfig(initial=256, window=2, hysteresis=2, min=1)
    overflow_at = {1, 2, 6, 7, 8}
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    record = train_steps(DeepSpeedGradScaler("cpu", config), model, 12, overflow_at)
    assert [updated for _, updated in record] == [i not in overflow_at for i in range(12)]
    rule = DynamicLossScale(256.0, 2, 2, 1.0)
    expected = []
    for i in range(12):
        rule.update(i in overflow_at)
        expected.append(rule.scale)
    assert [scale for scale, _ in record] == expected

    # six steps, a checkpoint (as accelerate saves it: torch.save / weights_only load), six more
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    first = DeepSpeedGradScaler("cpu", config)
    head = train_steps(first, model, 6, overflow_at)
    torch.save(first.state_dict(), tmp_path / "scaler.pt")
    second = DeepSpeedGradScaler("cpu", config)
    second.load_state_dict(torch.load(tmp_path / "scaler.pt", weights_only=True))
    shifted = {i - 6 for i in overflow_at if i >= 6}
    tail = train_steps(second, model, 6, shifted)
    assert [s for s, _ in head + tail] == expected


def test_loss_scale_added_on_resume_starts_its_rule_from_the_saved_scale():
    plain = torch.amp.GradScaler("cpu", init_scale=512.0)
    mine = DeepSpeedGradScaler("cpu", LossScaleConfig(initial=4096, window=3, hysteresis=2))
    mine.load_state_dict(plain.state_dict())
    assert mine.get_scale() == 512.0
    assert (mine.rule.scale, mine.rule.iteration, mine.rule.hysteresis_left) == (512.0, 0, 2)


def run_config(tmp_path, **train):
    tree = {
        "run_dir": str(tmp_path / "run"),
        "data": {"sources": [{"name": "a", "path": str(tmp_path)}]},
        "train": {"max_steps": 1, **train},
    }
    return validate(RunConfig, tree)


def test_loss_scale_is_checked_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="fp16 only"):
        run_config(tmp_path, precision="bf16", loss_scale={"initial": 4096})
    with pytest.raises(ConfigError, match="not a power of two"):
        run_config(tmp_path, precision="fp16", loss_scale={"initial": 5000})
    with pytest.raises(ConfigError, match="must not exceed"):
        run_config(tmp_path, precision="fp16", loss_scale={"initial": 4, "min": 8})
    config = run_config(tmp_path, precision="fp16", loss_scale={"initial": 4096})
    assert config.train.loss_scale.deepspeed_fp16()["initial_scale_power"] == 12


def test_under_deepspeed_the_rule_is_written_into_its_fp16_section(tmp_path):
    from synthlm.train.accel import configure_deepspeed
    from synthlm.train.run_plan import BatchPlan

    config = run_config(
        tmp_path,
        precision="fp16",
        loss_scale={"initial": 4096, "window": 1000, "hysteresis": 2, "min": 1},
    )
    batch = BatchPlan(micro=8, accum=1, processes=1)
    ds = {"fp16": {"enabled": True, "hysteresis": 2}}
    configure_deepspeed(deepspeed_accelerator(ds), config, batch)
    assert ds["fp16"] == {
        "enabled": True,
        "loss_scale": 0,
        "initial_scale_power": 12,
        "loss_scale_window": 1000,
        "hysteresis": 2,
        "min_loss_scale": 1,
    }
    clash = {"fp16": {"enabled": True, "initial_scale_power": 16}}
    with pytest.raises(ConfigError, match=r"fp16.initial_scale_power=16 .* train.loss_scale"):
        configure_deepspeed(deepspeed_accelerator(clash), config, batch)


def test_fp16_on_a_cpu_is_refused_instead_of_training_in_fp32(tmp_path, data):
    config = write_config(
        tmp_path / "run.yaml", tiny_config(tmp_path, data, train={"precision": "fp16"})
    )
    done = synthlm("train", str(config), "--quiet")
    assert done.returncode == 2, done.stderr
    assert "fp16 needs a GPU" in done.stderr and "bf16" in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("on_overflow", ["hold", "advance"])
def test_a_step_skipped_for_overflow_holds_the_schedule_as_deepspeed_does(
    tmp_path, data, on_overflow
):
    """DeepSpeed's ``_take_model_step``: ``if overflow: skipped_steps += 1 else:
    lr_scheduler.step()`` (accelerate's ``AcceleratedScheduler`` also returns when
    ``step_was_skipped``), so under fp16 step s trains at lr(s - overflows before s), as Pythia
    did. fp16 autocast needs a GPU, so the run's optimizer is wrapped here as accelerate wraps it
    under fp16 (its ``AcceleratedOptimizer`` with the run's DeepSpeed-rule scaler), on the CPU;
    the overflows are real non-finite gradients, found and skipped by that scaler."""
    from accelerate.optimizer import AcceleratedOptimizer

    from synthlm.train import load_run_config
    from synthlm.train.loop import Trainer
    from synthlm.train.planners import plan_run
    from synthlm.train.schedules import build_schedule

    schedule = {"name": "linear", "warmup_steps": 4}
    config = load_run_config([tiny_config(tmp_path, data, schedule=schedule)])
    # set after loading, as the scaler below is: a config refuses 'advance' without fp16
    config.schedule.on_overflow = on_overflow
    trainer = Trainer(plan_run(config, 1), progress=False)
    scaler = DeepSpeedGradScaler("cpu", LossScaleConfig(initial=256, window=2, hysteresis=1))
    inner = trainer.optimizer.optimizer
    trainer.optimizer = AcceleratedOptimizer(inner, device_placement=False, scaler=scaler)
    trainer.accelerator.scaler = scaler
    multiplier = build_schedule(config.schedule, config.train.max_steps)
    overflow_at, skipped = {1, 2, 6}, 0
    for step in range(10):
        held = step - skipped if on_overflow == "hold" else step
        assert inner.param_groups[0]["lr"] == pytest.approx(config.optim.lr * multiplier(held))
        scaler.scale(torch.ones(()))  # what accelerator.backward does first
        for p in trainer.model.parameters():
            p.grad = torch.full_like(p, math.inf if step in overflow_at else 1e-3)
        trainer._update(1.0)
        skipped += step in overflow_at
        assert torch.isfinite(next(trainer.model.parameters())).all()  # skipped, not applied
    assert trainer.state.bad_steps == 0  # the scaler's skips are not divergence
