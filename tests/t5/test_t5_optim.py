"""nanoT5's optimizer and schedules against hand computations on tiny tensors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from synthlm.config import validate
from synthlm.train.adamw_scale import AdamWScale
from synthlm.train.optim import OptimConfig, build_optimizer
from synthlm.train.schedules import ScheduleConfig, build_schedule


def test_adamwscale_two_steps_match_the_hand_computation():
    p0 = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64)
    grads = [
        torch.tensor([[0.1, -0.2], [0.3, 0.0]], dtype=torch.float64),
        torch.tensor([[-0.05, 0.4], [0.1, 0.2]], dtype=torch.float64),
    ]
    param = torch.nn.Parameter(p0.clone())
    lr, (b1, b2), eps, wd = 0.1, (0.9, 0.999), 1e-6, 0.01
    optimizer = AdamWScale([param], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)

    expected, m, v = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        param.grad = g.clone()
        optimizer.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        rms = math.sqrt(float((expected**2).mean()))  # of the weights before this update
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t) * max(1e-3, rms)
        expected = expected - step * m / (v.sqrt() + eps)
        expected = expected * (1 - lr * wd)  # decoupled decay, not scaled by the RMS
        torch.testing.assert_close(param.detach(), expected, rtol=0, atol=1e-12)


def test_adamwscale_floors_the_scale_of_tiny_parameters():
    """A near-zero tensor still moves by about lr x 1e-3 per step (the RMS floor)."""
    param = torch.nn.Parameter(torch.full((4,), 1e-6))
    optimizer = AdamWScale([param], lr=1.0)
    param.grad = torch.ones(4)
    optimizer.step()
    # first step: m/(sqrt(v)+eps) = 1/(1+1e-6) elementwise, bias corrections cancel
    torch.testing.assert_close(param.detach(), torch.full((4,), 1e-6 - 1e-3 / (1 + 1e-6)))


def nanot5_step(param, grad, state, lr, betas, eps, weight_decay):
    """nanoT5's AdamWScale step for one tensor, written out as its loop does it."""
    b1, b2 = betas
    state["step"] = state.get("step", 0) + 1
    m = state.setdefault("m", torch.zeros_like(param))
    v = state.setdefault("v", torch.zeros_like(param))
    m.mul_(b1).add_(grad, alpha=1 - b1)
    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    step_size = lr * math.sqrt(1 - b2 ** state["step"]) / (1 - b1 ** state["step"])
    scale = (param.norm(2) / math.sqrt(param.numel())).clamp(min=1e-3)
    param.addcdiv_(m * (-step_size * scale), v.sqrt().add_(eps))
    if weight_decay > 0:
        param.mul_(1 - lr * weight_decay)


@pytest.mark.parametrize("foreach", [False, True])
def test_adamwscale_over_many_tensors_gives_the_per_tensor_loops_numbers(foreach):
    """Both paths (the loop on CPU, foreach kernels over all tensors on a GPU) must give, bit
    for bit, what nanoT5's per-tensor loop gives on the same inputs: shapes of every rank, a
    tensor at the RMS floor, one without a gradient, two groups with their own rate and decay."""
    torch.manual_seed(0)
    shapes = [(7, 5), (5,), (1,), (3, 4, 2), (1000,), (2, 3)]
    start = [torch.randn(*shape) for shape in shapes]
    start[3] *= 1e-5  # below the RMS floor
    params = [torch.nn.Parameter(t.clone()) for t in start]
    groups = [
        {"params": params[:4], "lr": 2e-2, "weight_decay": 0.1},
        {"params": params[4:], "lr": 5e-3, "weight_decay": 0.0},
    ]
    optimizer = AdamWScale(groups, betas=(0.9, 0.999), eps=1e-6, foreach=foreach)
    reference = [t.clone() for t in start]
    states = [{} for _ in shapes]
    for _ in range(4):
        grads = [torch.randn(*shape) for shape in shapes]
        grads[5] = None  # a frozen tensor: neither moved nor decayed
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()
        for i, grad in enumerate(grads):
            if grad is not None:
                lr, wd = (2e-2, 0.1) if i < 4 else (5e-3, 0.0)
                nanot5_step(reference[i], grad, states[i], lr, (0.9, 0.999), 1e-6, wd)
    for param, expected in zip(params, reference):
        assert torch.equal(param.detach(), expected)
    assert torch.equal(params[5].detach(), start[5])


def test_adamwscale_is_registered_with_nanot5_defaults():
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(
        model, validate(OptimConfig, {"name": "adamwscale", "lr": 2e-2, "weight_decay": 0.0})
    )
    assert isinstance(optimizer, AdamWScale)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (2e-2, (0.9, 0.999), 1e-6)


def schedule(total: int, **fields):
    return build_schedule(validate(ScheduleConfig, fields), total)


def test_legacy_schedule_is_nanot5s_inverse_sqrt_then_linear_decay():
    f = schedule(100_000, name="legacy")
    # absolute nanoT5 lr min(1e-2, 1/sqrt(step)) over its 1e-2 peak: flat to step 10^4, then 1/sqrt
    assert f(0) == 1.0 and f(1) == 1.0 and f(10_000) == pytest.approx(1.0)
    assert f(40_000) == pytest.approx(0.5)  # 1/sqrt(40000) = 5e-3
    first = 90_000  # ceil(0.9 x total): then linear decay of the value reached there
    at_first = 1 / math.sqrt(first) / 1e-2
    assert f(first) == pytest.approx(at_first)
    assert f(95_000) == pytest.approx(at_first * 0.5)
    assert f(99_999) == pytest.approx(at_first / 10_000)


def test_cosine_warmup_can_start_at_half_the_peak_as_in_nanot5():
    f = schedule(110, name="cosine", warmup_steps=10, warmup_start=0.5, final_lr_ratio=0.0)
    ramp = [f(s) for s in range(11)]
    assert ramp[0] == 0.5  # LinearLR(start_factor=0.5): step 0 trains at half the peak
    assert all(b - a == pytest.approx(0.05) for a, b in itertools.pairwise(ramp))  # 1.0 at 10
    assert f(10) == pytest.approx(1.0) and f(110) == pytest.approx(0.0)
    assert f(60) == pytest.approx(0.5)  # halfway through the cosine decay


@pytest.mark.parametrize("foreach", [False, True])
def test_hf_adamw_is_transformers_4_adamw_not_torchs(foreach):
    """nanoT5 fine-tunes with transformers.AdamW (removed in transformers 5): the denominator is
    sqrt(v) + eps, and the bias correction multiplies the step size, so eps acts before it.
    Restated here from that definition; torch's AdamW (eps after the correction) differs."""
    p0 = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    grads = [p0 * 1e-5 * (k + 1) for k in range(5)]  # T5-small gradients: eps matters
    lr, (b1, b2), eps, wd = 5e-5, (0.9, 0.999), 1e-6, 0.01

    def run(name: str, **options) -> torch.Tensor:
        param = torch.nn.Parameter(p0.clone())
        cfg = validate(
            OptimConfig,
            {"name": name, "lr": lr, "betas": [b1, b2], "eps": eps, "weight_decay": wd, **options},
        )
        optimizer = build_optimizer(torch.nn.Linear(1, 1), cfg)
        optimizer.param_groups[0]["params"] = [param]  # one decayed group, as a matrix gets
        for g in grads:
            param.grad = g.clone()
            optimizer.step()
        return param.detach()

    expected, m, v = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        expected = expected - step * m / (v.sqrt() + eps)
        expected = expected - lr * wd * expected  # decay after the update, on the new value
    ours = run("hf_adamw", options={"foreach": foreach})
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=0)
    torchs = run("adamw", options={"fused": False})
    assert not torch.allclose(torchs, expected, rtol=1e-6, atol=0)
