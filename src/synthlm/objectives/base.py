"""The objective interface and its registry."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import torch

from synthlm.errors import ConfigError

IGNORE_INDEX = -100  # the label value HF models and torch's cross_entropy skip

OBJECTIVES: dict[str, type[Objective]] = {}


class Objective:
    """Turns samples into batches and batches into a summed loss.

    ``loss_sum`` returns the *sum* of per-token losses and the number of target tokens, never a
    mean: the loop divides by the target count of the whole optimizer step (all micro-batches,
    all ranks), which is what makes gradient accumulation and DDP exactly equal to one big batch.
    """

    name: str = ""

    def __init__(self, **options: Any) -> None:
        if options:
            raise ConfigError(f"objective '{self.name}' takes no options, got: {', '.join(sorted(options))}")

    def window_length(self, seq_len: int) -> int:
        """Raw tokens a sample must hold so the model sees ``seq_len`` (T5 corruption shrinks it)."""
        return seq_len

    def collate(self, samples: list[Any]) -> dict[str, torch.Tensor]:
        """Stack samples into model inputs and labels (tensors on the CPU)."""
        raise NotImplementedError(f"objective '{self.name}' must implement collate")

    def loss_sum(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of per-token losses, number of target tokens) for one micro-batch."""
        raise NotImplementedError(f"objective '{self.name}' must implement loss_sum")


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    def decorate(cls: type[Objective]) -> type[Objective]:
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return decorate


def get_objective(name: str, **options: Any) -> Objective:
    if name not in OBJECTIVES:
        close = difflib.get_close_matches(name, OBJECTIVES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"objective.name: unknown objective '{name}'{hint}; known: {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name](**options)
