"""fp16 dynamic loss scaling as DeepSpeed does it, for recipes trained under DeepSpeed.

torch's ``GradScaler`` halves its scale at every overflowing step and doubles it after 2,000
clean ones. DeepSpeed's ``DynamicLossScaler`` (what GPT-NeoX, and so the Pythia suite, trained
with) differs in three ways a recipe states in its config: ``hysteresis`` overflows are
tolerated before the scale drops (Pythia: 2), the scale doubles after ``loss_scale_window``
clean steps (1,000), and it never goes below ``min_loss_scale`` (1); an overflow at that floor
stops the run. ``train.loss_scale`` asks for that rule; :class:`DeepSpeedGradScaler` keeps
torch's unscale/skip machinery (so accelerate, clipping and checkpoints work unchanged) and
swaps only the rule that moves the scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from synthlm.errors import ConfigError, TrainingDiverged
from synthlm.train.config import LossScaleConfig


@dataclass
class DynamicLossScale:
    """DeepSpeed's update rule (``DynamicLossScaler.update_scale``, consecutive_hysteresis off).

    ``iteration`` counts update calls; ``last_overflow`` is the iteration of the latest overflow
    (-1 before any). The scale doubles when the steps since the last overflow, less one, are a
    positive multiple of ``window``: the first doubling comes after ``window + 1`` clean steps
    from the start, later ones after ``window`` clean steps since an overflow, as in DeepSpeed
    0.10 and later. (The 2022 DeeperSpeed that trained Pythia doubled one step earlier.)
    """

    scale: float
    window: int
    hysteresis: int
    min_scale: float
    hysteresis_left: int = 0
    iteration: int = 0
    last_overflow: int = -1

    def __post_init__(self) -> None:
        if not self.hysteresis_left:
            self.hysteresis_left = self.hysteresis

    def update(self, overflow: bool) -> None:
        if overflow:
            if self.hysteresis == 1 or self.hysteresis_left == 1:
                if self.scale == self.min_scale:
                    raise TrainingDiverged(
                        f"fp16 gradients overflow at the minimum loss scale ({self.min_scale:g}, "
                        "train.loss_scale.min): training stopped. Lower optim.lr, set "
                        "train.clip_grad or train in bf16"
                    )
                self.scale = max(self.scale / 2.0, self.min_scale)
            else:
                self.hysteresis_left -= 1
            self.last_overflow = self.iteration
        else:
            stable = self.iteration - self.last_overflow - 1
            if stable > 0 and stable % self.window == 0:
                self.hysteresis_left = self.hysteresis
                self.scale *= 2.0
        self.iteration += 1


class DeepSpeedGradScaler(torch.amp.GradScaler):
    """torch's GradScaler (unscale, inf check, skipped step) moved by :class:`DynamicLossScale`.

    One host sync per optimizer step reads the overflow flag; the loop has already synced on
    the gradient norm, computed after the same unscale, so it costs nothing measurable.
    """

    def __init__(self, device: str, config: LossScaleConfig) -> None:
        super().__init__(device, init_scale=config.initial, growth_interval=config.window)
        self.config = config
        self.rule = DynamicLossScale(config.initial, config.window, config.hysteresis, config.min)

    def update(self, new_scale: float | torch.Tensor | None = None) -> None:
        if not self._enabled:
            return
        if new_scale is not None:
            raise ValueError("DeepSpeedGradScaler sets its scale itself (train.loss_scale)")
        found = [
            flag
            for state in self._per_optimizer_states.values()
            for flag in state["found_inf_per_device"].values()
        ]
        if not found:
            raise AssertionError("No inf checks were recorded prior to update.")
        self.rule.update(bool(sum(float(flag.item()) for flag in found)))
        super().update(new_scale=float(self.rule.scale))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if state:
            state["deepspeed_rule"] = asdict(self.rule)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the rule where it stopped; a checkpoint of torch's scaler (``train.loss_scale``
        added on resume) hands over its scale and the rule starts afresh from it."""
        rule = state_dict.get("deepspeed_rule")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "deepspeed_rule"})
        if rule is not None:
            self.rule = DynamicLossScale(**rule)
        else:
            c = self.config
            self.rule = DynamicLossScale(float(state_dict["scale"]), c.window, c.hysteresis, c.min)


def install_loss_scale(accelerator: Any, config: LossScaleConfig | None) -> None:
    """Swap accelerate's fp16 GradScaler for the DeepSpeed rule when the config asks for it.

    Called before ``prepare``, which hands ``accelerator.scaler`` to the wrapped optimizer.
    Under DeepSpeed there is no torch scaler: :func:`synthlm.train.accel.configure_deepspeed`
    writes the same rule into DeepSpeed's own fp16 section instead.
    """
    if config is None or accelerator.scaler is None:
        return
    if type(accelerator.scaler) is not torch.amp.GradScaler:
        raise ConfigError(
            f"train.loss_scale works with torch's GradScaler, but this launch uses "
            f"{type(accelerator.scaler).__name__} (FSDP1); use FSDP2 (fsdp_version: 2), "
            "DDP or DeepSpeed, or drop train.loss_scale"
        )
    accelerator.scaler = DeepSpeedGradScaler(accelerator.device.type, config)
