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

    @staticmethod
    def rms(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.norm(2) / math.sqrt(tensor.numel())

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group)
        return loss

    def _update(self, param: torch.Tensor, group: dict[str, Any]) -> None:
        if param.grad.is_sparse:
            raise RuntimeError("AdamWScale does not support sparse gradients")
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(beta1).add_(param.grad, alpha=1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(param.grad, param.grad, value=1.0 - beta2)
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size *= math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
        scale = self.rms(param).clamp(min=RMS_FLOOR)  # a tensor: no host sync on GPU
        param.addcdiv_(exp_avg * (-step_size * scale), exp_avg_sq.sqrt().add_(group["eps"]))
        if group["weight_decay"] > 0.0:
            param.mul_(1.0 - group["lr"] * group["weight_decay"])
