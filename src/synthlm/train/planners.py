"""One planner per training mode, chosen by ``config.mode``.

A table rather than a branch inside one planner: the fine-tuning planner reuses the shared
checks of :mod:`synthlm.train.run_plan`, so the pretraining planner must not import it back
(that was an import cycle), and a new mode is one entry here. Entries name the planner's
module, imported for the mode being run (pretraining never imports the pair-file readers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from synthlm.train.config import RunConfig, check_objective

if TYPE_CHECKING:
    from synthlm.train.run_plan import RunPlan

PLANNERS: dict[str, str] = {
    "pt": "synthlm.train.run_plan:plan_pretrain",
    "ft": "synthlm.finetune.pair_plan:plan_finetune",
}


def plan_run(config: RunConfig, processes: int) -> RunPlan:
    """Everything decided before step 0 for ``config`` on ``processes`` ranks; builds no weights."""
    check_objective(config)  # first: a config problem, located in its file, before any file is read
    check_lm_eval_model(config)
    module, function = PLANNERS[config.mode].split(":")
    return getattr(importlib.import_module(module), function)(config, processes)


def check_lm_eval_model(config: RunConfig) -> None:
    """``train.lm_eval`` wraps the model as a causal LM, as ``synthlm eval --lm-eval`` does, which
    refuses encoder-decoder checkpoints; a run must not score one through it either."""
    from synthlm.errors import ConfigError
    from synthlm.models import is_seq2seq

    if config.train.lm_eval is not None and is_seq2seq(config.model):
        raise ConfigError(
            f"train.lm_eval scores a causal LM through lm-evaluation-harness (as synthlm eval "
            f"--lm-eval, which refuses encoder-decoder checkpoints), but model.arch="
            f"{config.model.arch} is an encoder-decoder; remove train.lm_eval"
        )
