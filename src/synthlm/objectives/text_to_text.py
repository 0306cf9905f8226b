"""Text-to-text training (``objective: text_to_text``, what ``mode: ft`` trains): teacher-forced
cross-entropy on input/target pairs for encoder-decoder models.

Batches pad inputs (with pad, attention mask 0) and targets (labels ``IGNORE_INDEX``) to the
longest pair of the batch, rounded up to a multiple of 8 for efficient matmuls; padding is never
a target. Decoder inputs are the targets shifted right, starting from pad (T5's decoder start).
Pairs come from :mod:`synthlm.finetune.data` (``input_ids`` and ``target_ids`` ending in EOS).
DEPTH-marked pairs (``finetune.depth_inputs``) also carry token types, and their encoder
attends hierarchically (:func:`synthlm.finetune.depth_inputs.encoder_mask`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from synthlm.errors import UserError
from synthlm.objectives.base import IGNORE_INDEX, Objective, register_objective
from synthlm.text.special_tokens import resolve_ids, with_t5_tokens

if TYPE_CHECKING:
    from synthlm.protocols import Tokenizer

PAD_MULTIPLE = 8


def padded_length(rows: list[np.ndarray]) -> int:
    longest = max(len(r) for r in rows)
    return -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE


def pad_rows(rows: list[np.ndarray], length: int, value: int) -> np.ndarray:
    out = np.full((len(rows), length), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@register_objective("text_to_text")
class TextToText(Objective):
    """Cross-entropy of the target given the input; one row per pair."""

    seq2seq = True

    @classmethod
    def create(cls, tokenizer: Tokenizer, **options: Any) -> tuple[TextToText, Tokenizer]:
        """The tokenizer gains a pad token if it lacks one (T5 decodes from pad)."""
        extended = with_t5_tokens(tokenizer, num_sentinels=0)
        return cls(tokenizer=extended, **options), extended

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        if tokenizer is None:
            raise UserError(
                "objective 'text_to_text' needs the tokenizer to find its pad and eos ids"
            )
        ids = resolve_ids(tokenizer, [])
        self.eos_id, self.pad_id = ids["eos"], ids["pad"]

    def model_config_overrides(self) -> dict[str, int]:
        return {
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_id,
            "decoder_start_token_id": self.pad_id,
        }

    def collate(self, samples: list) -> dict[str, torch.Tensor]:
        if any(s.target_ids is None for s in samples):
            raise UserError("text_to_text: a training pair has no target")
        inputs = [s.input_ids for s in samples]
        targets = [s.target_ids for s in samples]
        width, target_width = padded_length(inputs), padded_length(targets)
        target_ids = pad_rows(targets, target_width, self.pad_id)
        decoder_inputs = np.full_like(target_ids, self.pad_id)
        decoder_inputs[:, 1:] = target_ids[:, :-1]
        batch = {
            "input_ids": torch.from_numpy(pad_rows(inputs, width, self.pad_id)),
            "attention_mask": torch.from_numpy(
                pad_rows([np.ones(len(r), dtype=np.int64) for r in inputs], width, 0)
            ),
            "decoder_input_ids": torch.from_numpy(decoder_inputs),
            "labels": torch.from_numpy(pad_rows(targets, target_width, IGNORE_INDEX)),
            "source": torch.tensor([s.source for s in samples], dtype=torch.long),
        }
        types = [s.input_types for s in samples]
        if any(t is not None for t in types):
            if any(t is None for t in types):
                raise UserError("text_to_text: a batch mixes DEPTH-marked and plain inputs")
            batch["encoder_types"] = torch.from_numpy(pad_rows(types, width, 0))
        return batch

    def logits(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Teacher-forced logits; DEPTH-marked inputs attend hierarchically in the encoder."""
        if "encoder_types" not in batch:
            return model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                decoder_input_ids=batch["decoder_input_ids"],
                use_cache=False,
            ).logits
        from synthlm.objectives.depth import cross_attention_mask, to_model_mask

        encoder, cross = depth_input_masks(batch, batch["decoder_input_ids"].shape[1])
        with cross_attention_mask(model, to_model_mask(cross, model)):
            return model(
                input_ids=batch["input_ids"],
                attention_mask=to_model_mask(encoder, model),
                decoder_input_ids=batch["decoder_input_ids"],
                use_cache=False,
            ).logits

    def row_loss_sums(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return row_sums(self.logits(model, batch), batch["labels"])

    def loss_sum(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows, counts = self.row_loss_sums(model, batch)
        return rows.sum(), counts.sum()


def depth_input_masks(
    batch: dict[str, torch.Tensor], target_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``[B, 1, Q, K]`` encoder and cross masks of DEPTH-marked inputs: the encoder
    hierarchical, the cross-attention over every non-pad input token."""
    from synthlm.finetune.depth_inputs import encoder_mask

    valid = batch["attention_mask"].bool()
    cross = valid[:, None, None, :].expand(-1, 1, target_length, -1)
    return encoder_mask(batch["encoder_types"], batch["attention_mask"]), cross


def row_sums(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sums of the target tokens' cross-entropy, and their counts."""
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(labels.shape)
    return losses.sum(1), (labels != IGNORE_INDEX).sum(1)
