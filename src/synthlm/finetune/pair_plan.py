"""Planning a ``mode: ft`` run: every check and all the pair data before the first step.

Mirrors :func:`synthlm.train.run_plan.plan_pretrain` for pairs: the tokenizer (``finetune.tokenizer``,
else the ``model.init_from`` dir, whose tokenizer a synthlm pretraining run saved extended), the
objective (``text_to_text``), the model config, the pair files tokenized once, the step budget.
Runs that only evaluate or predict need no training file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthlm.data.mixture import VOCAB_MULTIPLE, ModelVocab, round_up
from synthlm.errors import ConfigError, UserError
from synthlm.finetune.config import FinetuneConfig
from synthlm.finetune.data import PairDataset, PairSet, load_pairs
from synthlm.finetune.metrics import check_metrics
from synthlm.models import resolved_config
from synthlm.train.config import RunConfig
from synthlm.train.run_plan import (
    RunPlan,
    build_objective,
    check_attention_kernel,
    check_model_kind,
    check_wandb,
    model_special_ids,
    plan_batch,
    total_steps,
)

ROLES = ("train", "valid", "test")


@dataclass
class FinetuneData:
    """The pairs evaluation and prediction use (training pairs live in the plan's stream)."""

    config: FinetuneConfig
    valid: PairSet | None
    test: PairSet | None

    @property
    def predict_set(self) -> PairSet | None:
        return self.test or self.valid


def plan_finetune(config: RunConfig, processes: int) -> RunPlan:
    cfg = config.finetune
    assert cfg is not None  # RunConfig requires it in mode ft
    check_roles(config, cfg)
    if cfg.metrics is not None:
        check_metrics(cfg.metrics)
    batch = plan_batch(config.train, processes)
    check_wandb(config)
    check_attention_kernel(config)
    objective, tokenizer = build_objective(config, load_pair_tokenizer(config, cfg))
    if objective.name != "text_to_text":
        raise ConfigError(
            f"objective.name={objective.name}: mode ft trains text_to_text on finetune "
            f"pairs; remove objective.name or use mode pt"
        )
    check_model_kind(config, objective)
    layout = pair_layout(
        tokenizer.vocab_size, config.model.num_meta_tokens, config.model.vocab_multiple
    )
    ids = model_special_ids(tokenizer, objective)
    hf_config = resolved_config(config.model, vocab_size=layout.model_vocab_size, special_ids=ids)
    sets = {
        role: load_pairs(
            role,
            path,
            cfg,
            tokenizer,
            layout,
            progress=config.logging.progress,
            seed=config.seed,
            eval_draws=config.train.eval_draws,
        )
        for role, path in files(config, cfg).items()
    }
    check_synthetic_metrics(sets)
    check_eval_draws(config, sets)
    check_protocol(sets, cfg)
    warn_truncated(sets, cfg)
    stream = PairDataset(sets["train"], seed=config.seed) if "train" in sets else None
    if stream is not None and cfg.epoch_batches == "per_epoch":
        stream.deal_epochs(global_batch=batch.global_batch, micro=batch.micro)
    steps = (
        total_steps(config.train, batch, stream, cfg.max_input_length)
        if stream is not None
        else config.train.max_steps or 1
    )
    epochs = stream.check_budget(steps * batch.global_batch) if stream is not None else {}
    data = FinetuneData(cfg, sets.get("valid"), sets.get("test"))
    return RunPlan(
        config,
        tokenizer,
        layout,
        hf_config,
        batch,
        steps,
        stream,
        epochs,
        objective,
        ids,
        cfg.max_input_length,
        cfg.max_target_length,
        data,
    )


def check_roles(config: RunConfig, cfg: FinetuneConfig) -> None:
    """Which files the run needs, and that they exist."""
    if not (config.eval_only or config.predict_only) and cfg.train is None:
        raise ConfigError("finetune.train: required to train (or set eval_only / predict_only)")
    if config.eval_only and cfg.valid is None:
        raise ConfigError("finetune.valid: eval_only scores the valid pairs; set finetune.valid")
    if config.predict_only and cfg.test is None and cfg.valid is None:
        raise ConfigError("finetune.test: predict_only needs finetune.test (or finetune.valid)")
    for role in ROLES:
        path = getattr(cfg, role)
        if path is not None and not Path(path).exists():
            raise UserError(f"finetune.{role}: {path} not found")


def files(config: RunConfig, cfg: FinetuneConfig) -> dict[str, Path]:
    """The pair files this run reads: eval-only runs the valid pairs, predict-only the test
    pairs (else valid), training all that are set."""
    if config.eval_only:
        wanted = {"valid"}
    elif config.predict_only:
        wanted = {"test"} if cfg.test is not None else {"valid"}
    else:
        wanted = set(ROLES)
    return {
        role: Path(getattr(cfg, role))
        for role in ROLES
        if role in wanted and getattr(cfg, role) is not None
    }


def load_pair_tokenizer(config: RunConfig, cfg: FinetuneConfig) -> Any:
    from synthlm.tokenizers import load_tokenizer

    path = cfg.tokenizer or config.model.init_from
    if path is None:
        raise ConfigError(
            "finetune.tokenizer: not set, and there is no model.init_from dir to take the "
            "tokenizer from; set finetune.tokenizer"
        )
    tokenizer = load_tokenizer(str(path))
    if tokenizer.eos_id is None:
        raise ConfigError(
            f"finetune.tokenizer: {path} has no end-of-sequence token; inputs and targets "
            f"end with one"
        )
    return tokenizer


def pair_layout(
    natural_size: int, num_meta_tokens: int, multiple: int = VOCAB_MULTIPLE
) -> ModelVocab:
    """Natural ids, then the meta range synthetic pairs use (as in pretraining)."""
    return ModelVocab(
        natural_size,
        natural_size,
        num_meta_tokens,
        round_up(natural_size + num_meta_tokens, multiple),
    )


def check_synthetic_metrics(sets: dict[str, PairSet]) -> None:
    for role, pairs in sets.items():
        if pairs.kind == "synthetic" and set(pairs.metrics) - {"accuracy"}:
            raise ConfigError(
                f"finetune.metrics: synthetic pairs ({role}) are scored by their domains' "
                f"verifiers: only accuracy applies"
            )


def check_protocol(sets: dict[str, PairSet], cfg: FinetuneConfig) -> None:
    """Teacher forcing reads text targets; a synthetic answer is judged by its domain's
    verifier, which needs the answer the model generates."""
    for role, pairs in sets.items():
        if pairs.kind == "synthetic" and cfg.eval_protocol != "generate":
            raise ConfigError(
                f"finetune.eval_protocol: {cfg.eval_protocol} scores text targets, but "
                f"finetune.{role} is a synthetic dataset, whose answers its domains' verifiers "
                "judge as generated; use eval_protocol: generate"
            )


def check_eval_draws(config: RunConfig, sets: dict[str, PairSet]) -> None:
    """``per_evaluation`` must have something to draw: else the key would promise a protocol
    the run does not follow."""
    from synthlm.finetune.draws import has_draws

    if config.train.eval_draws != "per_evaluation":
        return
    for role in ("valid", "test"):
        pairs = sets.get(role)
        if pairs is not None and not has_draws(pairs):
            raise ConfigError(
                f"train.eval_draws: per_evaluation: finetune.{role} ({pairs.path}) draws "
                "nothing at evaluation (draws: a natural-instructions instance's outputs or "
                "tk_instruct encoding, depth_inputs.sentence_ids: shuffled); use fixed"
            )


def warn_truncated(sets: dict[str, PairSet], cfg: FinetuneConfig) -> None:
    """Cut pairs train on (and are scored against) shortened targets: say so before training."""
    import sys

    for role, pairs in sets.items():
        if pairs.truncated:
            print(
                f"warning: finetune.{role}: {pairs.truncated} of {len(pairs.pairs)} pairs "
                f"exceed finetune.max_input_length="
                f"{cfg.max_input_length} or max_target_length={cfg.max_target_length} (EOS "
                f"included) and were cut",
                file=sys.stderr,
            )
