"""Causal language modelling on packed windows.

Labels follow the HF convention (``labels == input_ids``, shifted inside the loss) with
``IGNORE_INDEX`` where a token is not a target: where the sample's loss mask is 0 (synthetic
inputs when training on answers only), and, with ``document_mask``, at the first token of each
packed document, because the previous document's last token must never predict the next one.

With ``document_mask`` each document also gets its own positions (restarting at 0) and a
block-diagonal causal attention mask, so packing is equivalent to training on the documents
one by one.

With ``data.shared_boundary`` a sample holds one token more than the model sees: its last token
(the next window's first) is a target only. The model then reads ``seq_len`` inputs and every
one of them predicts a target, as in GPT-NeoX and Megatron (``labels`` keeps the whole row, so
it is one longer than ``input_ids``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from synthlm.config import Section
from synthlm.objectives.base import IGNORE_INDEX, Objective, register_objective
from synthlm.objectives.cross_entropy import shifted_labels, token_cross_entropy


def segment_positions(segments: np.ndarray) -> np.ndarray:
    """Position of each token within its document (restarts at every segment change)."""
    positions = np.arange(segments.shape[-1], dtype=np.int64)
    starts = np.concatenate([[True], segments[1:] != segments[:-1]])
    start_index = np.maximum.accumulate(np.where(starts, positions, 0))
    return positions - start_index


def attention_segments(samples: list) -> np.ndarray:
    """Segment ids [B, T] the attention mask is built from: a sample's documents, or, for a
    window not to be masked (``Sample.masked`` False: natural text beside masked synthetic
    examples), one segment for the whole window (padding stays -1)."""
    rows = [s.segment_ids if s.masked else np.where(s.segment_ids >= 0, 0, -1) for s in samples]
    return np.stack(rows).astype(np.int32)


def block_causal_mask(segments: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive 4D mask [B, 1, T, T]: 0 where query may attend key (same document, key <= query)."""
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(
        segments.shape[-1], segments.shape[-1], dtype=torch.bool, device=segments.device
    ).tril()
    allowed = same & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


class CausalLMOptions(Section):
    """Options of ``objective: clm``."""

    document_mask: bool = Field(
        False,
        description="Attend within each packed document only (also set by data.document_mask).",
    )


@register_objective("clm")
class CausalLM(Objective):
    """Next-token prediction over packed windows."""

    Options = CausalLMOptions
    reads_extra_target: ClassVar[bool] = True  # takes data.shared_boundary's longer rows

    def __init__(self, document_mask: bool = False) -> None:
        self.document_mask = document_mask

    def collate(self, samples: list) -> dict[str, torch.Tensor]:
        tokens = np.stack([s.input_ids for s in samples])
        mask = np.stack([s.loss_mask for s in samples]).astype(bool)
        segments = attention_segments(samples)
        labels = np.where(mask, tokens, IGNORE_INDEX)
        # data.shared_boundary: the last token is a target only, never fed to the model
        inputs = tokens[:, :-1] if samples[0].extra_target else tokens
        seen = inputs.shape[1]
        batch = {"input_ids": torch.from_numpy(inputs), "labels": torch.from_numpy(labels)}
        batch["source"] = torch.tensor([s.source for s in samples], dtype=torch.long)
        if self.document_mask:
            new_doc = np.zeros_like(mask)
            new_doc[:, 1:] = segments[:, 1:] != segments[:, :-1]
            batch["labels"] = torch.from_numpy(np.where(new_doc, IGNORE_INDEX, labels))
            batch["position_ids"] = torch.from_numpy(
                np.stack([segment_positions(s) for s in segments[:, :seen]])
            )
            batch["segment_ids"] = torch.from_numpy(segments[:, :seen].astype(np.int64))
        return batch

    def loss_sum(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        per_token, targets = self.token_losses(model, batch)
        return per_token.sum(), targets.sum()

    def num_targets(self, batch: dict[str, torch.Tensor]) -> int:
        """Labels follow the HF convention (shifted inside the loss): position 0 is never a target."""
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

    def row_loss_sums(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        per_token, targets = self.token_losses(model, batch)
        return per_token.sum(1), targets.sum(1)

    def token_losses(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position losses [B, T-1] ([B, T] with data.shared_boundary; 0 where ignored) and
        the target indicator."""
        # No KV cache: HF decoders build one whenever config.use_cache is on, training too, and
        # its per-layer state is something torch.compile guards on, so per-block compile would
        # trace every layer anew and fall back to eager past dynamo's recompile limit.
        kwargs = {"input_ids": batch["input_ids"], "use_cache": False}
        if "segment_ids" in batch:
            dtype = next(model.parameters()).dtype
            kwargs["attention_mask"] = block_causal_mask(batch["segment_ids"], dtype=dtype)
            kwargs["position_ids"] = batch["position_ids"]
        logits = model(**kwargs).logits
        labels = batch["labels"]
        # fp32 loss in chunks (see synthlm.objectives.cross_entropy)
        if labels.shape[1] > batch["input_ids"].shape[1]:  # data.shared_boundary: every
            losses = token_cross_entropy(logits, labels[:, 1:])  # position has its target
        else:  # the last position has no target
            losses = token_cross_entropy(logits, shifted_labels(labels))[:, :-1]
        return losses, labels[:, 1:] != IGNORE_INDEX
