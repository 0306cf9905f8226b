"""Instruction tuning: causal LM on rendered conversations, loss on assistant tokens by default.

Conversations are rendered and tokenized ahead of time (``synthlm tokenize --chat``) into a
store whose loss mask marks assistant tokens (see :mod:`synthlm.text.chat_format`), so SFT reuses
the whole pretraining path: mixtures (replay of pretraining data is just another source),
packing (``data.packing: true``) or one conversation per padded sample
(``data.packing: false``), resume, checkpoints. This objective only decides which tokens carry
loss: ``train_on: assistant`` keeps the store's mask, ``all`` trains on every real token
(padding never counts).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from synthlm.errors import ConfigError
from synthlm.objectives.base import IGNORE_INDEX, register_objective
from synthlm.objectives.clm import CausalLM, CausalLMOptions, attention_segments


class SFTOptions(CausalLMOptions):
    """Options of ``objective: sft``."""

    train_on: Literal["assistant", "all"] = Field(
        "assistant",
        description="assistant: train on the assistant's tokens only; all: every real token.",
    )


@register_objective("sft")
class SupervisedFineTuning(CausalLM):
    """CLM whose targets are the assistant's tokens (or every real token)."""

    Options = SFTOptions
    reads_extra_target = False  # chat rows are padded conversations: no stream to share

    def __init__(
        self, document_mask: bool = False, train_on: Literal["assistant", "all"] = "assistant"
    ) -> None:
        super().__init__(document_mask=document_mask)
        if train_on not in ("assistant", "all"):
            raise ConfigError(
                f"objective.train_on: expected 'assistant' or 'all', got {train_on!r}"
            )
        self.train_on = train_on

    def check_data(self, data: Any) -> None:
        """``train_on: assistant`` reads the targets from the stores' loss masks: refuse a run
        none of whose sources has one, which would otherwise train on every token unannounced
        (a store tokenized without ``--chat``). A mask-less store beside masked or synthetic
        sources is replay, trained on every token by design."""
        if self.train_on != "assistant":
            return
        sources = list(getattr(data, "sources", ()))
        unmasked = [s for s in sources if s.kind == "natural" and not has_loss_mask(s.path)]
        if sources and len(unmasked) == len(sources):
            raise ConfigError(no_mask_message(unmasked))

    def collate(self, samples: list) -> dict[str, torch.Tensor]:
        batch = super().collate(samples)
        if self.train_on == "all":
            tokens = batch["input_ids"].numpy()
            real = np.stack([s.segment_ids for s in samples]) >= 0
            labels = np.where(real, tokens, IGNORE_INDEX)
            if self.document_mask:
                segments = attention_segments(samples)
                new_doc = np.zeros_like(real)
                new_doc[:, 1:] = segments[:, 1:] != segments[:, :-1]
                labels = np.where(new_doc, IGNORE_INDEX, labels)
            batch["labels"] = torch.from_numpy(labels)
        return batch


def has_loss_mask(path: Any) -> bool:
    """Whether the token store at ``path`` has a loss-mask store beside it (``PREFIX.mask``)."""
    from synthlm.data.store import mask_prefix, normalize_prefix, store_exists

    return path is not None and store_exists(mask_prefix(normalize_prefix(path)))


def no_mask_message(sources: list[Any]) -> str:
    """The error for chat sources without a loss mask: which ones, and the two ways out."""
    named = ", ".join(f"'{s.name}' ({s.path})" for s in sources)
    return (
        f"objective.train_on=assistant trains on the assistant's tokens, which a store's loss "
        f"mask marks, but data.sources {named} {'has' if len(sources) == 1 else 'have'} no loss "
        f"mask (not tokenized as chat); re-tokenize the conversations with `synthlm tokenize "
        f"FILE --chat -t TOKENIZER -o PREFIX`, or set objective.train_on=all to train on every "
        f"token"
    )
