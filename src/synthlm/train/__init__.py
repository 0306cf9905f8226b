"""Training on Accelerate: decoder-only LMs and T5 encoder-decoders, pretraining (mode pt) and
text-to-text fine-tuning (mode ft); config, loop, optimizers, schedules, checkpoints.

Entry points: :func:`load_run_config` (YAML files + dotted overrides -> :class:`RunConfig`),
:func:`plan_run` (every fail-fast check, no weights) and :func:`run` (train or resume; returns
the run dir). torch and transformers are imported only when a run starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthlm.train.config import RunConfig, load_run_config

if TYPE_CHECKING:
    from pathlib import Path

    from synthlm.train.run_plan import RunPlan

__all__ = ["RunConfig", "load_run_config", "plan_run", "run"]


def run(config: RunConfig, *, progress: bool | None = None, freeze_heap: bool = False) -> Path:
    """Train (or resume) the run; see :func:`synthlm.train.loop.run`."""
    from synthlm.train.loop import run as _run

    return _run(config, progress=progress, freeze_heap=freeze_heap)


def plan_run(config: RunConfig, processes: int = 1) -> RunPlan:
    """Resolve and check everything a run needs without building the model."""
    from synthlm.train.planners import plan_run as _plan

    return _plan(config, processes)
