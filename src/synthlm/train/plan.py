"""Everything decided before the first step, and every check that can fail before it.

:func:`plan_run` resolves the tokenizer, the vocabulary layout, the model's HF config (without
building weights), the batch split across processes and the step budget, and raises a
:class:`~synthlm.errors.UserError` naming the key on: missing data paths, store ids outside the
vocabulary, a synthetic dataset needing more meta ids than reserved, ``seq_len`` beyond the
model's positions, batch sizes that do not divide across processes, a source repeated more
than its ``max_repetition``, an unknown objective option, or W&B asked for but not installed.
``synthlm train --dry-run`` runs exactly this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthlm.errors import ConfigError
from synthlm.mixture import DataConfig, Mixture, VocabLayout, build_layout, check_paths
from synthlm.models import max_positions, resolved_config
from synthlm.train.config import RunConfig, TrainConfig

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class BatchPlan:
    """How one optimizer step's sequences split: ``global = micro x processes x accum``."""

    micro: int
    processes: int
    accum: int

    @property
    def global_batch(self) -> int:
        return self.micro * self.processes * self.accum


def plan_batch(train: TrainConfig, processes: int) -> BatchPlan:
    """Derive gradient accumulation from ``global_batch_size`` when given; check it divides."""
    per_pass = train.batch_size * processes
    if train.global_batch_size is None:
        return BatchPlan(train.batch_size, processes, train.grad_accum or 1)
    if train.global_batch_size % per_pass:
        raise ConfigError(
            f"train.global_batch_size={train.global_batch_size} does not divide into train.batch_size="
            f"{train.batch_size} x {processes} processes ({per_pass} sequences per pass); "
            f"use a multiple of {per_pass} or change train.batch_size"
        )
    accum = train.global_batch_size // per_pass
    if train.grad_accum is not None and train.grad_accum != accum:
        raise ConfigError(
            f"train.grad_accum={train.grad_accum} contradicts train.global_batch_size={train.global_batch_size} "
            f"with train.batch_size={train.batch_size} x {processes} processes (needs grad_accum={accum}); set only one"
        )
    return BatchPlan(train.batch_size, processes, accum)


@dataclass
class RunPlan:
    config: RunConfig
    tokenizer: Any
    layout: VocabLayout
    model_config: PretrainedConfig
    batch: BatchPlan
    total_steps: int
    mixture: Mixture
    source_epochs: dict[str, float]
    objective: Any

    def summary(self) -> dict[str, Any]:
        """What ``--dry-run`` prints after the config."""
        seq_len = self.config.data.seq_len
        return {
            "steps": self.total_steps,
            "global_batch": self.batch.global_batch,
            "micro_batch": self.batch.micro,
            "processes": self.batch.processes,
            "grad_accum": self.batch.accum,
            "tokens": self.total_steps * self.batch.global_batch * seq_len,
            "vocab_layout": self.layout.to_dict(),
            "epochs_per_source": {k: round(v, 4) for k, v in self.source_epochs.items()},
        }


def tokenizer_path(data: DataConfig) -> str:
    """``data.tokenizer``, else the tokenizer recorded by the first natural store."""
    if data.tokenizer:
        return data.tokenizer
    from synthlm.store import TokenStore

    for source in data.sources:
        if source.kind == "natural":
            recorded = TokenStore(source.path, check_ids=False).metadata.get("tokenizer")
            if isinstance(recorded, dict):
                recorded = recorded.get("path")
            if recorded:
                return str(recorded)
    raise ConfigError("data.tokenizer: not set, and no natural source records its tokenizer in PREFIX.json; set data.tokenizer to a tokenizer dir")


def load_tokenizer_for(data: DataConfig) -> Any:
    from synthlm.tokenizers import load_tokenizer

    return load_tokenizer(tokenizer_path(data))


def special_ids(tokenizer: Any) -> dict[str, int | None]:
    return {"bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id}


def check_positions(config: PretrainedConfig, seq_len: int) -> None:
    limit = max_positions(config)
    if limit is not None and seq_len > limit:
        raise ConfigError(
            f"data.seq_len={seq_len} exceeds the model's {limit} positions; lower data.seq_len "
            f"or set model.overrides.max_position_embeddings={seq_len}"
        )


def total_steps(train: TrainConfig, batch: BatchPlan, mixture: Mixture, seq_len: int) -> int:
    """Optimizer steps from whichever budget is set (whole steps, rounded up)."""
    if train.max_steps is not None:
        return train.max_steps
    tokens_per_step = batch.global_batch * seq_len
    if train.max_tokens is not None:
        return math.ceil(train.max_tokens / tokens_per_step)
    epoch_tokens = sum(source.epoch_tokens for source in mixture.sources)
    return max(math.ceil((train.epochs or 0) * epoch_tokens / tokens_per_step), 1)


def plan_run(config: RunConfig, processes: int) -> RunPlan:
    """Every fail-fast check, in the order a user would fix them; builds no model weights."""
    data = config.data
    check_paths(data)
    batch = plan_batch(config.train, processes)
    if config.logging.wandb:
        from synthlm.train.metrics import require_wandb

        require_wandb()
    tokenizer = load_tokenizer_for(data)
    if tokenizer.eos_id is None:
        raise ConfigError(f"data.tokenizer: {tokenizer_path(data)} has no end-of-sequence token; packing needs one between documents")
    layout = build_layout(data, tokenizer.vocab_size, config.model.num_meta_tokens)
    hf_config = resolved_config(config.model, vocab_size=layout.model_vocab_size, special_ids=special_ids(tokenizer))
    check_positions(hf_config, data.seq_len)
    objective = build_objective(config)
    mixture = Mixture(data, seed=config.seed, layout=layout, eos_id=tokenizer.eos_id)
    steps = total_steps(config.train, batch, mixture, data.seq_len)
    epochs = mixture.check_budget(steps * batch.global_batch)
    return RunPlan(config, tokenizer, layout, hf_config, batch, steps, mixture, epochs, objective)


def build_objective(config: RunConfig) -> Any:
    """The objective with its options; ``data.document_mask`` is passed only when on, so an
    objective that cannot honour it fails here instead of silently ignoring it."""
    from synthlm.objectives import get_objective

    options = config.objective.options()
    if config.data.document_mask:
        options["document_mask"] = True
    try:
        return get_objective(config.objective.name, **options)
    except TypeError as exc:
        raise ConfigError(f"objective ({config.objective.name}): unsupported option: {exc}") from None
