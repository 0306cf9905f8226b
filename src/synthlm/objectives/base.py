"""The objective interface and its registry.

An objective owns everything about its loss: how samples become a batch, how many target tokens
a batch has (known before the forward pass), and what one forward pass returns
(:class:`LossOutput`: the loss sum, the target count, per-row sums, per-group metric sums).
The training loop and the evaluators only call these, so a new objective (encoder-decoder ones
included) is one module with ``@register_objective`` and no change anywhere else: the base
``__init__`` takes the ``Options`` fields (set as attributes) and ``document_mask``, the one
keyword the run adds itself, and the evaluators score through :meth:`Objective.forward` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel

from synthlm.config import validate
from synthlm.errors import ConfigError
from synthlm.registry import NoOptions, Registry

if TYPE_CHECKING:
    from synthlm.protocols import Tokenizer

IGNORE_INDEX = -100  # the label value HF models and torch's cross_entropy skip

OBJECTIVES: Registry[type[Objective]] = Registry("objective")


@dataclass
class LossOutput:
    """What one forward pass of an objective gives the loop.

    ``loss`` and ``targets`` are sums over the micro-batch (the loop normalises by the whole
    step's count); ``rows`` the per-row (loss sums [B], target counts [B]) when the objective
    knows them (per-source losses), else None; ``metric_sums`` detached per-token-group sums
    (``<group>_loss_sum``, ``<group>_correct``, ``<group>_tokens``) that the loop adds up over
    micro-batches and ranks and logs as means (T5 objectives; empty for the others).
    """

    loss: torch.Tensor
    targets: torch.Tensor
    rows: tuple[torch.Tensor, torch.Tensor] | None = None
    metric_sums: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective:
    """Turns samples into batches and batches into a summed loss.

    What the trainer calls: ``create`` (objective + tokenizer), ``window_length`` (raw tokens
    per sample), ``model_config_overrides``, ``collate``, ``num_targets``, then ``row_loss_sums``
    or ``loss_sum``. ``seq2seq`` says which kind of model it trains.

    ``loss_sum`` returns the *sum* of per-token losses and the number of target tokens, never a
    mean: the loop divides by the target count of the whole optimizer step (all micro-batches,
    all ranks), which is what makes gradient accumulation and DDP exactly equal to one big batch.

    ``document_mask``: the training planner passes ``document_mask=True`` to a decoder-only
    objective whenever the run masks packed documents from each other (by default, when any
    source is synthetic), and ``synthlm eval`` passes it either way. ``collate`` and the forward
    must then keep each packed document to itself (``tests/t5/test_objective_contract.py``
    checks it): no attention across documents, positions from 0, and no document's first token
    predicted from the one before (``objectives/clm.py`` has the helpers).
    """

    name: str = ""
    seq2seq: ClassVar[bool] = False  # trains an encoder-decoder (AutoModelForSeq2SeqLM) model
    Options: ClassVar[type[BaseModel]] = NoOptions  # the typed options (keys under ``objective``)

    @classmethod
    def options_model(cls) -> type[BaseModel]:
        """The options a config may set for this objective (validated when the config loads)."""
        return getattr(cls, "config_class", None) or cls.Options

    def __init__(self, *, document_mask: bool = False, **options: Any) -> None:
        """Validate ``options`` against ``Options`` and set each field (defaults included) as an
        attribute, so an objective needs no ``__init__`` of its own; ``self.options`` keeps them.

        ``document_mask`` is always accepted (see the class docstring); an ``Options`` that
        declares it, so a config may also set it, sees the same value.
        """
        model = self.options_model()
        if "document_mask" in model.model_fields:
            options["document_mask"] = document_mask or options.get("document_mask", False)
        self.options = validate(model, options, source=f"objective ({self.name})")
        for key in model.model_fields:
            setattr(self, key, getattr(self.options, key))
        self.document_mask = bool(getattr(self.options, "document_mask", document_mask))

    @classmethod
    def create(cls, tokenizer: Tokenizer, **options: Any) -> tuple[Objective, Tokenizer]:
        """The objective and the tokenizer to train with.

        The trainer builds objectives through this, so an objective that needs ids the natural
        tokenizer lacks (T5 sentinels) extends it here, *before* the vocabulary layout and the
        model are sized from it; the run then saves the extended tokenizer with every checkpoint.
        """
        return cls(**options), tokenizer

    def model_config_overrides(self) -> dict[str, int]:
        """HF config fields (token ids) the model must agree with; none for decoder-only LMs."""
        return {}

    def window_length(self, seq_len: int) -> int:
        """Raw tokens a sample must hold so the model sees ``seq_len`` (T5 corruption shrinks it)."""
        return seq_len

    def collate(self, samples: list[Any]) -> dict[str, torch.Tensor]:
        """Stack samples into model inputs and labels (tensors on the CPU)."""
        raise NotImplementedError(f"objective '{self.name}' must implement collate")

    def loss_sum(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of per-token losses, number of target tokens) for one micro-batch."""
        raise NotImplementedError(f"objective '{self.name}' must implement loss_sum")

    def num_targets(self, batch: dict[str, torch.Tensor]) -> int:
        """Target tokens of a batch, known *before* its forward pass.

        The loop normalises the gradient by the whole optimizer step's count, all-reduced before
        any forward pass, so it must come from the batch alone; the loop then checks it against
        the count ``loss_sum`` returns, so a wrong rule fails loudly instead of mis-scaling.
        Default: every label that is not ``IGNORE_INDEX`` (labels aligned with the logits).
        """
        return int((batch["labels"] != IGNORE_INDEX).sum())

    def row_loss_sums(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-row (loss sums [B], target counts [B]) from one forward pass, or None.

        Their totals equal ``loss_sum``'s, so the loop trains on ``rows[0].sum()`` and logs
        per-source losses for free. None (the default) means this objective only knows its
        total; the loop then calls ``loss_sum`` and logs no per-source losses.
        """
        return None

    def metric_sums(self) -> dict[str, torch.Tensor]:
        """Per-token-group sums of the last forward pass (see :class:`LossOutput`); none here."""
        return {}

    def forward(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
        """One forward pass: per-row sums when the objective has them (their totals are the
        loss), else ``loss_sum``; plus the group metric sums of that pass."""
        rows = self.row_loss_sums(model, batch)
        if rows is None:
            loss, targets = self.loss_sum(model, batch)
            return LossOutput(loss, targets, None, self.metric_sums())
        return LossOutput(rows[0].sum(), rows[1].sum(), rows, self.metric_sums())


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator: register an objective and its typed options under ``name``.

    Refuses options that would shadow an attribute of the interface (an option ``forward``
    set by the base ``__init__`` would replace the method the loop calls).
    """

    def decorate(cls: type[Objective]) -> type[Objective]:
        model = cls.options_model()
        clash = sorted(f for f in model.model_fields if f != "document_mask" and hasattr(cls, f))
        if clash:
            raise TypeError(
                f"objective '{name}': option(s) {', '.join(clash)} would hide the attribute(s) "
                f"of {cls.__qualname__} with the same name; rename them"
            )
        cls.name = name
        return OBJECTIVES.register(name, options=model)(cls)

    return decorate


def get_objective(name: str, **options: Any) -> Objective:
    if name not in OBJECTIVES:
        raise ConfigError(f"objective.name: {OBJECTIVES.unknown(name)}")
    return OBJECTIVES[name](**options)
