"""Optimizers, registered by name and built from parameter groups.

Weight decay goes to matrices only: biases and normalisation gains (every parameter with fewer
than two dimensions) are left undecayed, as in GPT-2/3, Pythia and Llama training. Decaying a
norm gain pulls it towards zero, which only fights the normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from synthlm.config import Section
from synthlm.errors import ConfigError
from synthlm.registry import Registry

if TYPE_CHECKING:
    import torch

ParamGroups = list[dict[str, Any]]
Builder = Callable[[ParamGroups, "OptimConfig"], "torch.optim.Optimizer"]
OPTIMIZERS: Registry[Builder] = Registry("optimizer")
register_optimizer = OPTIMIZERS.register


class OptimConfig(Section):
    """The optimizer and its hyper-parameters (the schedule multiplies ``lr``)."""

    name: str = Field("adamw", description="adamw, adamwscale (nanoT5's RMS-scaled AdamW, for T5) or adafactor.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.1, ge=0, description="Decoupled weight decay on matrices (not biases or norms).")
    betas: tuple[float, float] | None = Field(None, description="adamw: (beta1, beta2); default (0.9, 0.95); adamwscale: (0.9, 0.999).")
    eps: float | None = Field(None, gt=0, description="adamw: denominator epsilon; default 1e-8; adamwscale: 1e-6.")
    options: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for the optimizer class.")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return OPTIMIZERS.check(name)


def param_groups(model: torch.nn.Module, weight_decay: float) -> ParamGroups:
    """Two groups: matrices with weight decay, vectors and scalars without."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    try:
        return OPTIMIZERS[cfg.name](groups, cfg)
    except TypeError as exc:  # an unknown key in optim.options
        raise ConfigError(f"optim.options: {exc}") from None


@register_optimizer("adamw")
def adamw(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    import torch

    # fused: one kernel for all parameters instead of a Python loop over them (4x faster steps on
    # CPU for small models; the HF Trainer default). optim.options.fused=false turns it off.
    options = {"fused": True, **cfg.options}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas or (0.9, 0.95), eps=cfg.eps or 1e-8, **options)


@register_optimizer("adafactor")
def adafactor(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """torch's Adafactor (factored second moments, no momentum): far less optimizer memory."""
    import torch

    if cfg.betas is not None or cfg.eps is not None:
        raise ConfigError("optim: adafactor takes no betas/eps; use optim.options (beta2_decay, eps, d) instead")
    return torch.optim.Adafactor(groups, lr=cfg.lr, **cfg.options)


@register_optimizer("adamwscale")
def adamwscale(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW with RMS-scaled steps (nanoT5's T5 recipe: lr 2e-2, no weight decay, cosine)."""
    from synthlm.train.adamw_scale import AdamWScale

    return AdamWScale(groups, lr=cfg.lr, betas=cfg.betas or (0.9, 0.999), eps=cfg.eps or 1e-6, **cfg.options)
