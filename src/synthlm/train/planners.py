"""One planner per training mode, chosen by ``config.mode``.

A table rather than a branch inside one planner: the fine-tuning planner reuses the shared
checks of :mod:`synthlm.train.run_plan`, so the pretraining planner must not import it back
(that was an import cycle), and a new mode is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

from synthlm.finetune.pair_plan import plan_finetune
from synthlm.train.config import RunConfig, check_objective
from synthlm.train.run_plan import RunPlan, plan_pretrain

PLANNERS: dict[str, Callable[[RunConfig, int], RunPlan]] = {
    "pt": plan_pretrain,
    "ft": plan_finetune,
}


def plan_run(config: RunConfig, processes: int) -> RunPlan:
    """Everything decided before step 0 for ``config`` on ``processes`` ranks; builds no weights."""
    check_objective(config)  # first: a config problem, located in its file, before any file is read
    return PLANNERS[config.mode](config, processes)
