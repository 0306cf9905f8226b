"""T5 span corruption (``objective: span_corruption``) and the shared encoder-decoder loss.

Data: the mixture hands over packed raw windows of ``window_length(input_length)`` tokens (568
for 512 inputs at density 0.15). Each window gets a T5 noise mask; noise spans become sentinels
``<extra_id_0>, <extra_id_1>, ...`` in the input, and the target lists each sentinel followed by
the tokens it hides; both end with ``</s>``. Inputs then come out at exactly ``input_length``
and every target has the same length, so a batch needs no padding at all. Windows cross
document boundaries, joined by EOS, as in T5 and nanoT5.

Loss: labels use ``IGNORE_INDEX`` wherever a position is not a target (padding, and hidden
tokens whose store loss mask is 0); never a pad *id*, which is how padding leaked into the
loss of the reference code. ``loss_sum`` returns the sum of per-token losses and the number of
target tokens, as every synthlm objective does.

Metrics: ``loss_sum`` leaves detached sums in ``last_metric_sums`` (``<group>_loss_sum``,
``<group>_correct``, ``<group>_tokens``), which a loop adds up over micro-batches and turns
into means with :func:`summarize_metrics`; ``metrics(model, batch)`` does both in one no-grad
call. Span corruption has one group, ``reconstruction``; DEPTH adds ``sentence``.

Randomness: the mask of a window is a function of ``(seed, window content)`` (see
:func:`~synthlm.objectives.t5_noise.sample_rng`), identical across dataloader workers and on
resume.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from pydantic import Field

from synthlm.config import Section, validate
from synthlm.errors import ConfigError, UserError
from synthlm.objectives.base import IGNORE_INDEX, Objective, register_objective
from synthlm.objectives.cross_entropy import token_cross_entropy
from synthlm.objectives.t5_noise import (
    check_noise_options,
    corrupt,
    corrupted_lengths,
    noise_counts,
    random_spans_noise_mask,
    raw_length_for,
    sample_rng,
)
from synthlm.text.special_tokens import resolve_ids, sentinel_names, vocabulary, with_t5_tokens


class SpanCorruptionConfig(Section):
    """Options of ``objective: span_corruption``."""

    noise_density: float = Field(
        0.15, gt=0, lt=1, description="Share of tokens hidden (T5's mlm_probability)."
    )
    mean_noise_span_length: float = Field(
        3.0, ge=1, description="Mean length of a hidden span, in tokens."
    )
    num_sentinels: int = Field(
        100, ge=1, description="Sentinel tokens <extra_id_0..N-1> available."
    )
    seed: int = Field(0, description="Keys the noise masks together with each window's content.")


def summarize_metrics(sums: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """Means from summed metrics (``<g>_loss_sum``, ``<g>_correct``, ``<g>_tokens``)."""
    out: dict[str, float] = {}
    for key in sums:
        if not key.endswith("_tokens"):
            continue
        group = key[: -len("_tokens")]
        count = float(sums[key])
        out[f"{group}_tokens"] = count
        if count:
            out[f"{group}_loss"] = float(sums[f"{group}_loss_sum"]) / count
            out[f"{group}_accuracy"] = float(sums[f"{group}_correct"]) / count
    return out


class EncoderDecoderObjective(Objective):
    """Teacher-forced encoder-decoder training on HF seq2seq models (T5 and friends).

    Subclasses build batches with ``input_ids``, ``attention_mask``, ``decoder_input_ids`` and
    ``labels``; they may override :meth:`forward_logits` (custom attention) and
    :meth:`token_groups` (loss weights and metrics per kind of target token).
    """

    config_class: type[SpanCorruptionConfig] = SpanCorruptionConfig
    seq2seq = True

    @classmethod
    def create(cls, tokenizer: Any, **options: Any) -> tuple[EncoderDecoderObjective, Any]:
        """Extend the tokenizer with the sentinels (and DEPTH's sentence tokens), then build."""
        config = validate(cls.config_class, options, source="objective")
        extended = with_t5_tokens(
            tokenizer,
            num_sentinels=config.num_sentinels,
            num_sentence_tokens=getattr(config, "max_sentences", 0),
        )
        return cls(tokenizer=extended, **options), extended

    def reseeded(self, seed: int) -> EncoderDecoderObjective:
        """A copy whose masks are keyed by ``seed`` in place of ``objective.seed`` (an
        evaluation drawn anew, :func:`~synthlm.objectives.t5_noise.evaluation_seed`)."""
        clone = copy.copy(self)
        clone.config = self.config.model_copy(update={"seed": seed})
        return clone

    def __init__(self, tokenizer: Any = None, **options: Any) -> None:
        if tokenizer is None:
            raise UserError(
                f"objective '{self.name}' needs the tokenizer to find its special token ids"
            )
        self.config = validate(self.config_class, options, source="objective")
        check_noise_options(self.config.noise_density, self.config.mean_noise_span_length)
        self.tokenizer = tokenizer
        vocab = vocabulary(tokenizer)
        self.ids = resolve_ids(tokenizer, self.token_names(vocab), vocab)
        self.eos_id, self.pad_id = self.ids["eos"], self.ids["pad"]
        self.sentinel_ids = np.array(
            [self.ids[n] for n in sentinel_names(self.config.num_sentinels)], dtype=np.int64
        )
        self.last_metric_sums: dict[str, torch.Tensor] = {}
        self._input_length_of_raw: dict[int, int] = {}

    def token_names(self, vocab: dict[str, int]) -> list[str]:
        """Special tokens the tokenizer must hold (see ``with_t5_tokens``)."""
        return sentinel_names(self.config.num_sentinels)

    def model_config_overrides(self) -> dict[str, int]:
        """Ids the seq2seq model config must agree with (T5 starts decoding from pad)."""
        return {
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_id,
            "decoder_start_token_id": self.pad_id,
        }

    # -- lengths -------------------------------------------------------------------------------

    def window_length(self, seq_len: int) -> int:
        """Raw window length whose corrupted inputs come out at ``seq_len`` tokens."""
        raw, _ = raw_length_for(
            seq_len, self.config.noise_density, self.config.mean_noise_span_length
        )
        self._check_sentinels(seq_len, self.sentinels_needed(raw, seq_len))
        self._input_length_of_raw[raw] = seq_len
        return raw

    def target_length(self, seq_len: int) -> int:
        return raw_length_for(
            seq_len, self.config.noise_density, self.config.mean_noise_span_length
        )[1]

    def sentinels_needed(self, raw: int, seq_len: int) -> int:
        return noise_counts(raw, self.config.noise_density, self.config.mean_noise_span_length)[1]

    def _check_sentinels(self, seq_len: int, needed: int) -> None:
        if needed > self.config.num_sentinels:
            raise ConfigError(
                f"objective '{self.name}': input length {seq_len} needs {needed} sentinel "
                f"tokens but "
                f"num_sentinels is {self.config.num_sentinels}; lower data.seq_len, raise "
                "objective.mean_noise_span_length, or raise objective.num_sentinels (and "
                "re-extend the tokenizer)"
            )

    def input_length_of(self, raw: int) -> int:
        """Input length a raw window is padded to: the one it was sized for, else its own."""
        known = self._input_length_of_raw.get(raw)
        return (
            known
            if known is not None
            else corrupted_lengths(
                raw, self.config.noise_density, self.config.mean_noise_span_length
            )[0]
        )

    def noise_mask(self, length: int, rng: np.random.Generator) -> np.ndarray:
        if length < 2:  # nothing to hide in a degenerate piece
            return np.zeros(length, dtype=bool)
        return random_spans_noise_mask(
            length, self.config.noise_density, self.config.mean_noise_span_length, rng
        )

    # -- model side ------------------------------------------------------------------------------

    def forward_logits(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
            use_cache=False,  # no KV cache in training
        ).logits

    def token_groups(self, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, float]]:
        """Target positions of each kind, with the weight of their loss."""
        return {"reconstruction": (batch["labels"] != IGNORE_INDEX, 1.0)}

    def token_losses(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-position losses [B, T] (0 where ignored), target indicator, argmax correctness."""
        logits = self.forward_logits(model, batch)
        labels = batch["labels"]
        losses = token_cross_entropy(logits, labels)  # fp32, chunked where the logits are large
        correct = logits.detach().argmax(-1) == labels
        return losses, labels != IGNORE_INDEX, correct

    def loss_sum(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted sum of per-token losses and the number of target tokens.

        A group's weight scales its tokens' losses; the count stays the number of target tokens,
        so with every weight at 1 this is exactly the plain token-mean T5 loss.
        """
        rows, counts = self.row_loss_sums(model, batch)
        return rows.sum(), counts.sum()

    def row_loss_sums(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row weighted loss sums and target counts (see :meth:`loss_sum`); also leaves the
        group metric sums in ``last_metric_sums``."""
        losses, targets, correct = self.token_losses(model, batch)
        rows = losses.new_zeros(losses.shape[0])
        sums: dict[str, torch.Tensor] = {}
        for group, (where, weight) in self.token_groups(batch).items():
            group_rows = (losses * where).sum(1)
            rows = rows + weight * group_rows
            sums[f"{group}_loss_sum"] = group_rows.detach().sum()
            sums[f"{group}_correct"] = (correct & where).sum()
            sums[f"{group}_tokens"] = where.sum()
        self.last_metric_sums = sums
        return rows, targets.sum(1)

    def metric_sums(self) -> dict[str, torch.Tensor]:
        return self.last_metric_sums

    @torch.no_grad()
    def metrics(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Loss and accuracy per token group on one batch: ``<group>_loss``, ``<group>_accuracy``."""
        self.loss_sum(model, batch)
        return summarize_metrics(self.last_metric_sums)

    # -- batches -------------------------------------------------------------------------------

    def shift_right(self, targets: np.ndarray) -> np.ndarray:
        """Decoder inputs: the target ids one step late, starting from pad (T5's decoder start).

        Shifted from the target *ids*, not the labels, so a target that is not trained (label
        ``IGNORE_INDEX``) is still what the decoder reads at the next step.
        """
        shifted = np.full_like(targets, self.pad_id)
        shifted[:, 1:] = targets[:, :-1]
        return shifted

    def pad_rows(self, rows: list[np.ndarray], length: int, value: int) -> np.ndarray:
        out = np.full((len(rows), length), value, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out


@register_objective("span_corruption")
class SpanCorruption(EncoderDecoderObjective):
    """T5 span corruption on packed raw windows."""

    def corrupt_window(
        self, tokens: np.ndarray, loss_mask: np.ndarray, source: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input ids, target ids, trained targets) of one raw window; ids end in EOS."""
        rng = sample_rng(self.config.seed, tokens, source)
        mask = self.noise_mask(len(tokens), rng)
        inputs, targets = corrupt(tokens, mask, self.sentinel_ids)
        # The same corruption applied to the loss mask tells which target positions to train;
        # sentinels and EOS always are.
        _, trained = corrupt(
            loss_mask.astype(np.int64), mask, np.ones(len(self.sentinel_ids), dtype=np.int64)
        )
        return (
            np.append(inputs, self.eos_id),
            np.append(targets, self.eos_id),
            np.append(trained, 1).astype(bool),
        )

    def collate(self, samples: list) -> dict[str, torch.Tensor]:
        raw = len(samples[0].input_ids)
        if any(len(s.input_ids) != raw for s in samples):
            raise UserError("span_corruption: all windows of a batch must have the same raw length")
        rows = [
            self.corrupt_window(
                np.asarray(s.input_ids, dtype=np.int64), np.asarray(s.loss_mask), s.source
            )
            for s in samples
        ]
        length = self.input_length_of(raw)
        inputs = self.pad_rows([r[0] for r in rows], length, self.pad_id)
        targets = np.stack([r[1] for r in rows])  # every target of a raw length has the same length
        labels = np.where(np.stack([r[2] for r in rows]), targets, IGNORE_INDEX)
        attention = self.pad_rows([np.ones(len(r[0]), dtype=np.int64) for r in rows], length, 0)
        return {
            "input_ids": torch.from_numpy(inputs),
            "attention_mask": torch.from_numpy(attention),
            "decoder_input_ids": torch.from_numpy(self.shift_right(targets)),
            "labels": torch.from_numpy(labels),
            "source": torch.tensor([s.source for s in samples], dtype=torch.long),
        }
