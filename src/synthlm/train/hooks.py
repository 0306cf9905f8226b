"""What happens after an optimizer step: each piece of work is a hook that decides when it acts.

The loop only advances the cursor and then asks every hook, in order, ``should_run(step)``; the
hooks that say yes ``run(trainer, result)``. Logging, evaluation, lm-eval and checkpointing are
the built-in hooks (:func:`default_hooks`), in that order: a step that logs, evaluates and saves
writes its metrics first and its checkpoint last, so a checkpoint always holds the log-interval
sums of a completed record. The pattern is OLMo-core's callbacks and torchtitan's
``validator.should_validate(step)``: a new kind of periodic work is one class here, and the
loop does not change.

Hooks hold no state of their own that would need saving: what they decide is a pure function
of the step, the config and the run's saved state (the best-k record of ``train.keep_best``,
kept in the checkpoint's trainer state), so a resumed run acts at the same steps as an
uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from synthlm.train.early_stop import Watch
    from synthlm.train.loop import StepResult, Trainer


class Hook(Protocol):
    """After-step work: ``should_run`` is asked every step, ``run`` acts when it says yes."""

    def should_run(self, step: int) -> bool: ...

    def run(self, trainer: Trainer, result: StepResult) -> None: ...


def every(step: int, interval: float) -> bool:
    """``interval`` > 0 and ``step`` a multiple of it (0 means never). A fractional interval
    (one epoch's optimizer steps, ``eval_every: epoch``) fires at the step during which the data
    cursor passes each multiple, i.e. where an epoch ends."""
    if not interval:
        return False
    if float(interval).is_integer():
        return step % int(interval) == 0
    return math.floor(step / interval) > math.floor((step - 1) / interval)


@dataclass(frozen=True)
class LogHook:
    """One metrics record every ``train.log_every`` steps and at the last step."""

    interval: int
    total_steps: int

    def should_run(self, step: int) -> bool:
        return every(step, self.interval) or step >= self.total_steps

    def run(self, trainer: Trainer, result: StepResult) -> None:
        trainer.log(result.lr, trainer.bar)


@dataclass(frozen=True)
class EvalHook:
    """The eval sets every ``train.eval_every`` steps (0: only) at the last step; each result
    is then checked by early stopping and ranked for ``keep_best`` (:meth:`Trainer.observe`)."""

    interval: float  # steps; one epoch's (a fraction) under eval_every: epoch
    total_steps: int

    def should_run(self, step: int) -> bool:
        return every(step, self.interval) or step >= self.total_steps

    def run(self, trainer: Trainer, result: StepResult) -> None:
        trainer.observe(trainer.evaluate())


@dataclass(frozen=True)
class LMEvalHook:
    """lm-evaluation-harness tasks (``train.lm_eval``) on their own cadence and at the end."""

    suite: Any  # synthlm.evaluate.lm_eval_bridge.TrainingLMEval, loaded before the model
    total_steps: int

    def should_run(self, step: int) -> bool:
        return bool(self.suite.due(step, step >= self.total_steps))

    def run(self, trainer: Trainer, result: StepResult) -> None:
        trainer.evaluate_lm_eval()


@dataclass(frozen=True)
class CheckpointHook:
    """A checkpoint every ``train.checkpoint_every`` steps, and at each evaluation that enters
    ``train.keep_best``'s best k (as Lightning's ModelCheckpoint saves only those); the last
    step saves in ``fit``."""

    interval: int
    total_steps: int
    watch: Watch | None = None  # the trainer's: which evaluation entered the best k

    def should_run(self, step: int) -> bool:
        if step >= self.total_steps:
            return False
        return every(step, self.interval) or (self.watch is not None and self.watch.keeps(step))

    def run(self, trainer: Trainer, result: StepResult) -> None:
        trainer.save_checkpoint()


@dataclass(frozen=True)
class CompileReportHook:
    """After this process's first step, what torch.compile built: how many graphs, and where
    it broke a graph (the code around a break runs eagerly). Added by ``Trainer.start`` once
    the first step is known (a resumed run reports after its own first step)."""

    first_step: int

    def should_run(self, step: int) -> bool:
        return step == self.first_step

    def run(self, trainer: Trainer, result: StepResult) -> None:
        from synthlm.models import compile_report

        trainer.accelerator.print(compile_report(trainer.compiled_modules))


def default_hooks(trainer: Trainer) -> list[Hook]:
    """The built-in after-step work of a training run, in the order it runs."""
    train, total = trainer.cfg.train, trainer.plan.total_steps
    hooks: list[Hook] = [LogHook(train.log_every, total)]
    if trainer.plan.has_eval:
        interval = (
            trainer.plan.steps_per_epoch() if train.eval_every == "epoch" else train.eval_every
        )
        hooks.append(EvalHook(interval, total))
    if trainer.lm_eval is not None:
        hooks.append(LMEvalHook(trainer.lm_eval, total))
    hooks.append(CheckpointHook(train.checkpoint_every, total, trainer.watch))
    return hooks


def run_hooks(hooks: list[Hook], trainer: Trainer, result: StepResult) -> None:
    """Every hook that wants this step, in order."""
    step = trainer.state.step
    for hook in hooks:
        if hook.should_run(step):
            hook.run(trainer, result)
