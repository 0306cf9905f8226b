"""Optimizers, registered by name and built from parameter groups.

Weight decay goes to matrices only: biases and normalisation gains (every parameter with fewer
than two dimensions) are left undecayed, as in GPT-2/3, Pythia and Llama training. Decaying a
norm gain pulls it towards zero, which only fights the normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from synthlm.config import Section
from synthlm.registry import Registry, validate_options

if TYPE_CHECKING:
    import torch

ParamGroups = list[dict[str, Any]]
Builder = Callable[[ParamGroups, "OptimConfig"], "torch.optim.Optimizer"]
OPTIMIZERS: Registry[Builder] = Registry("optimizer")
register_optimizer = OPTIMIZERS.register


class OptimConfig(Section):
    """The optimizer and its hyper-parameters (the schedule multiplies ``lr``)."""

    name: str = Field(
        "adamw",
        description="adamw (torch's), hf_adamw (transformers 4.x's: eps before the bias "
        "correction; nanoT5's fine-tuning), adamwscale (nanoT5's RMS-scaled AdamW, for T5) or "
        "adafactor.",
    )
    lr: float = Field(3e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(
        0.1, ge=0, description="Decoupled weight decay on matrices (not biases or norms)."
    )
    betas: tuple[float, float] | None = Field(
        None,
        description="adamw: (beta1, beta2); default (0.9, 0.95); adamwscale, hf_adamw: "
        "(0.9, 0.999).",
    )
    eps: float | None = Field(
        None,
        gt=0,
        description="adamw: denominator epsilon; default 1e-8; adamwscale, hf_adamw: 1e-6.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the optimizer class; each optimizer declares "
        "its own (AdamWOptions, ...).",
    )

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return OPTIMIZERS.check(name)

    @model_validator(mode="after")
    def _adafactor_has_no_betas(self) -> OptimConfig:
        """torch's Adafactor takes neither (no momentum; its eps pair is an option): refused with
        the config, so ``--dry-run`` says so, not the optimizer's construction after the model."""
        if self.name == "adafactor" and (self.betas is not None or self.eps is not None):
            raise ValueError(
                "adafactor takes no betas/eps; remove optim.betas / optim.eps and use "
                "optim.options (beta2_decay, eps, d) instead"
            )
        return self

    @model_validator(mode="after")
    def _typed_options(self) -> OptimConfig:
        """Check ``options`` against the named optimizer's model now, not in its constructor."""
        model = OPTIMIZERS.options_model(self.name)
        validate_options(model, self.options, key="optim.options", loc=("options",))
        return self

    def typed_options(self) -> dict[str, Any]:
        """The options as keyword arguments: the set ones, validated and converted."""
        model = OPTIMIZERS.options_model(self.name)
        return model.model_validate(self.options).model_dump(exclude_unset=True)


class AdamWOptions(Section):
    """``optim.options`` of ``adamw``: torch.optim.AdamW's arguments beyond lr/betas/eps."""

    fused: bool = Field(
        True, description="One kernel for all parameters (4x faster CPU steps for small models)."
    )
    foreach: bool | None = Field(None, description="torch's multi-tensor implementation.")
    amsgrad: bool = Field(False, description="AMSGrad's running maximum of the second moment.")
    maximize: bool = Field(False, description="Maximise the objective instead of minimising it.")
    capturable: bool = Field(False, description="Safe to capture in a CUDA graph.")
    differentiable: bool = Field(False, description="Autograd through the optimizer step.")


class AdafactorOptions(Section):
    """``optim.options`` of ``adafactor`` (torch.optim.Adafactor's keyword arguments)."""

    beta2_decay: float = Field(-0.8, description="Decay exponent of the second-moment average.")
    eps: tuple[float | None, float] = Field(
        (None, 1e-3), description="(eps1: denominator, eps2: update clip)."
    )
    d: float = Field(1.0, gt=0, description="Clipping threshold of the update RMS.")
    foreach: bool | None = Field(None, description="torch's multi-tensor implementation.")
    maximize: bool = Field(False, description="Maximise the objective instead of minimising it.")


class AdamWScaleOptions(Section):
    """``optim.options`` of ``adamwscale`` (nanoT5's AdamWScale)."""

    correct_bias: bool = Field(True, description="Adam's bias correction of the moment estimates.")
    foreach: bool | None = Field(
        None,
        description="One foreach kernel per operation over all tensors (null: when every "
        "parameter is on a GPU, as torch's optimizers decide; the per-tensor loop on CPU).",
    )


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
    return OPTIMIZERS[cfg.name](groups, cfg)


@register_optimizer("adamw", options=AdamWOptions)
def adamw(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    import torch

    # fused: one kernel for all parameters instead of a Python loop over them (4x faster steps on
    # CPU for small models; the HF Trainer default). optim.options.fused=false turns it off.
    options = {"fused": True, **cfg.typed_options()}
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=cfg.betas or (0.9, 0.95), eps=cfg.eps or 1e-8, **options
    )


@register_optimizer("adafactor", options=AdafactorOptions)
def adafactor(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """torch's Adafactor (factored second moments, no momentum): far less optimizer memory."""
    import torch

    return torch.optim.Adafactor(groups, lr=cfg.lr, **cfg.typed_options())


@register_optimizer("hf_adamw", options=AdamWScaleOptions)
def hf_adamw(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """transformers 4.x's AdamW (eps before the bias correction), as nanoT5 fine-tunes with."""
    return _adamw_scale(groups, cfg, scale_by_rms=False)


@register_optimizer("adamwscale", options=AdamWScaleOptions)
def adamwscale(groups: ParamGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW with RMS-scaled steps (nanoT5's T5 recipe: lr 2e-2, no weight decay, cosine)."""
    return _adamw_scale(groups, cfg, scale_by_rms=True)


def _adamw_scale(
    groups: ParamGroups, cfg: OptimConfig, *, scale_by_rms: bool
) -> torch.optim.Optimizer:
    """nanoT5's defaults (betas 0.9/0.999, eps 1e-6) for both of AdamWScale's update rules."""
    from synthlm.train.adamw_scale import AdamWScale

    return AdamWScale(
        groups,
        lr=cfg.lr,
        betas=cfg.betas or (0.9, 0.999),
        eps=cfg.eps or 1e-6,
        scale_by_rms=scale_by_rms,
        **cfg.typed_options(),
    )
