"""AdamWScale: AdamW whose step is scaled by the parameter's RMS, as nanoT5 trains T5.

Adafactor's "relative step" idea inside Adam: each tensor's update is multiplied by
``max(1e-3, RMS(p))``, so large-norm matrices move proportionally and tiny ones still move.
nanoT5 found this makes AdamW as stable as Adafactor for T5 pretraining at a 2e-2 peak rate.

One step, for each parameter ``p`` with gradient ``g`` (Adam moments with bias correction)::

    m = b1 m + (1 - b1) g           v = b2 v + (1 - b2) g^2
    step = lr * sqrt(1 - b2^t) / (1 - b1^t) * max(1e-3, RMS(p))     (RMS before the update)
    p <- p - step * m / (sqrt(v) + eps)
    p <- p - lr * weight_decay * p                                    (decoupled, not scaled)

Hand-written because neither torch nor transformers ships it; the per-tensor RMS scale cannot be
expressed through ``torch.optim.AdamW``'s options.

Without the RMS scale (``scale_by_rms=False``) this is transformers 4.x's own ``AdamW``, which
nanoT5 fine-tunes with (``hf_adamw``): eps is added to ``sqrt(v)`` before the bias correction,
so early steps are damped more than by ``torch.optim.AdamW`` (whose eps is added after it: at
eps 1e-6 the effective eps of step 1 is 3.2e-5 here), and decay follows the update.
transformers 5 dropped that class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

RMS_FLOOR = 1e-3


class AdamWScale(torch.optim.Optimizer):
    """See the module docstring; defaults follow nanoT5 (betas 0.9/0.999, eps 1e-6)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        foreach: bool | None = None,
        scale_by_rms: bool = True,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"AdamWScale: invalid lr={lr}, betas={betas}, eps={eps} or "
                f"weight_decay={weight_decay}"
            )
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "correct_bias": correct_bias,
            },
        )
        self.foreach = foreach
        self.scale_by_rms = scale_by_rms

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:  # no gradient reached this group (foreach calls refuse empty lists)
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("AdamWScale does not support sparse gradients")
            foreach = self.foreach
            if foreach is None:  # torch's own optimizers' rule: foreach when all are on a GPU
                foreach = bool(params) and all(p.is_cuda for p in params)
            if foreach:
                self._update_foreach(params, group)
            else:
                for param in params:
                    self._update_one(param, group)
        return loss

    def _update_one(self, param: torch.Tensor, group: dict[str, Any]) -> None:
        """The definition, one tensor at a time (nanoT5's loop): the CPU path."""
        state = self._state(param)
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(beta1).add_(param.grad, alpha=1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(param.grad, param.grad, value=1.0 - beta2)
        step_size = self._step_size(state["step"], group)
        if self.scale_by_rms:
            scale = self.rms(param).clamp(min=RMS_FLOOR)  # a tensor: no host sync on GPU
            param.addcdiv_(exp_avg * (-step_size * scale), exp_avg_sq.sqrt().add_(group["eps"]))
        else:
            param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size)
        if group["weight_decay"] > 0.0:
            param.mul_(1.0 - group["lr"] * group["weight_decay"])

    def _update_foreach(self, params: list[torch.Tensor], group: dict[str, Any]) -> None:
        """The same operations in the same order, each a ``torch._foreach_*`` call over all the
        group's tensors: the GPU path.

        Why: the loop issues about ten small kernels per tensor from Python, ~2,800 launches a
        step for T5-base's 282 tensors, which on a GPU take longer to launch than to run. On a
        CPU foreach kernels run tensor by tensor anyway, and holding every tensor's temporaries
        at once made the step 1.7-3x slower there (benchmarks/optimizer_step.py), hence the
        loop on CPU, as torch's own optimizers choose. Both give the same numbers
        (tests/t5/test_t5_optim.py).
        """
        states = [self._state(p) for p in params]
        grads = [p.grad for p in params]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
        steps = [-self._step_size(s["step"], group) for s in states]
        if self.scale_by_rms:
            # -step size * max(RMS_FLOOR, RMS(p)) per tensor, 0-d tensors: no host sync on a GPU
            coefficients = torch._foreach_norm(params, 2)
            torch._foreach_div_(coefficients, [math.sqrt(p.numel()) for p in params])
            torch._foreach_clamp_min_(coefficients, RMS_FLOOR)
            torch._foreach_mul_(coefficients, steps)
            updates = torch._foreach_mul(exp_avgs, coefficients)
        else:
            updates = torch._foreach_mul(exp_avgs, steps)
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denominators, group["eps"])
        torch._foreach_addcdiv_(params, updates, denominators)
        if group["weight_decay"] > 0.0:
            torch._foreach_mul_(params, 1.0 - group["lr"] * group["weight_decay"])

    def _state(self, param: torch.Tensor) -> dict[str, Any]:
        """The tensor's state, created on its first step; its step count advanced."""
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step"] += 1
        return state

    @staticmethod
    def rms(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.norm(2) / math.sqrt(tensor.numel())

    @staticmethod
    def _step_size(step: int, group: dict[str, Any]) -> float:
        beta1, beta2 = group["betas"]
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size *= math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        return step_size
