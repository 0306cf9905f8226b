"""What a resumed run may change in its config, and what it may not.

A checkpoint holds weights and optimizer state that one config produced. Resuming it under
another config splices two runs: a new seed reshuffles the data half way, a new schedule makes
the learning rate jump, another objective or model shape trains something else. Such changes
are refused before any work (the way out is a new run_dir with ``model.init_from``). Changes
that only steer the rest of the run take effect from the resumed step and are said out loud;
changes that touch neither the weights nor the data (logging, cadence, evaluation, speed,
micro-batching under the same global batch) pass silently. The budget and the data shape have
their own checks (:mod:`synthlm.train.guards`, the trainer's data shape), so their keys pass
here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from synthlm.errors import UserError

# Keys (dotted, list items by index) whose change neither the weights nor the data notice.
FREE = (
    "run_dir",
    "eval_only",
    "predict_only",
    "logging",
    "data.eval",
    "finetune.valid",
    "finetune.test",
    "finetune.eval_protocol",  # how the valid/test pairs are scored, not what trains
    "finetune.max_new_tokens",
    "finetune.metrics",
    "finetune.max_eval_examples",
    "finetune.num_beams",
    "model.compile",
    "model.compile_scope",
    "model.compile_backend",
    "model.compile_dynamic",
    "model.gradient_checkpointing",
    "optim.options.fused",  # kernels, not arithmetic
    "optim.options.foreach",
    "model.attn_implementation",
    "train.batch_size",
    "train.grad_accum",
    "train.global_batch_size",  # the data shape check compares the global batch itself
    "train.max_steps",  # the budget: check_same_budget refuses a schedule it would bend
    "train.max_tokens",
    "train.epochs",
    "train.checkpoint_every",
    "train.keep_last",
    "train.keep_best",
    "train.resume",
    "train.log_every",
    "train.eval_every",
    "train.eval_on_start",
    "train.eval_draws",
    "train.eval_batch_size",
    "train.early_stopping",
    "train.lm_eval",
    "train.num_workers",
    "train.max_bad_steps",
    "data.sources.*.weight",  # the data shape check compares the weights
    "data.sources.*.max_repetition",
    "data.phases",
)

# Keys whose new value steers the rest of the run: applied from the resumed step, announced.
APPLIED = (
    "optim.lr",
    "optim.weight_decay",
    "optim.betas",
    "optim.eps",
    "train.clip_grad",
    "train.precision",
    "train.matmul_precision",
    "train.loss_scale",
    "train.loss_average",
    # a store moved (a cluster's scratch space): the tokenizer and id checks still run on it
    "data.sources.*.path",
    "data.tokenizer",
    "finetune.train",
)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, leaf)`` pairs; list items are keyed by their index."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{index}")
    else:
        yield prefix, value


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    parts = key.split(".")
    for pattern in patterns:
        wanted = pattern.split(".")
        if len(parts) >= len(wanted) and all(
            w == "*" or w == p for w, p in zip(wanted, parts, strict=False)
        ):
            return True
    return False


def config_changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, new value)`` for every leaf that differs, in key order.

    A key only one side has (a config saved by an older synthlm lacks the keys added since;
    a list that grew or shrank) counts when it is a list item: another source, another phase.
    """
    old, new = dict(flatten(saved)), dict(flatten(now))
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in old and key in new:
            if old[key] != new[key]:
                changes.append((key, old[key], new[key]))
        elif any(part.isdigit() for part in key.split(".")):
            changes.append((key, old.get(key), new.get(key)))
    return changes


def with_defaults(saved: Mapping[str, Any], model: Any) -> Mapping[str, Any]:
    """``saved`` as the current config class reads it, defaults filled in, so that a key
    added since it was saved compares as its default; as saved when it no longer validates."""
    from synthlm.config import to_plain

    try:
        return to_plain(model.model_validate(dict(saved)))
    except Exception:  # an old config the schema moved past: compare it raw
        return saved


def check_resume_config(
    saved: Mapping[str, Any], now: Mapping[str, Any], checkpoint: Any
) -> list[tuple[str, Any, Any]]:
    """Refuse a resume whose config changes what the checkpoint was trained as; return the
    changes that apply from here on (for the caller to apply and announce)."""
    changes = [c for c in config_changes(saved, now) if not _matches(c[0], FREE)]
    refused = [c for c in changes if not _matches(c[0], APPLIED)]
    if refused:
        listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in refused[:6])
        more = f" (and {len(refused) - 6} more)" if len(refused) > 6 else ""
        raise UserError(
            f"{checkpoint}: this config changes what the checkpoint was trained with: "
            f"{listed}{more}. Resuming would splice two different runs; keep those keys as "
            f"they were, or start a new run_dir with model.init_from={checkpoint}"
        )
    return changes
