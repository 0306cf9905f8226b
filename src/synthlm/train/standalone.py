"""Runs that use a trained model without training it: ``eval_only`` and ``predict_only``.

They share the trainer's setup (the same prepared model, precision and devices as training, so
the numbers match the ones logged during training) but not its run-dir bookkeeping: they never
rewrite the training run's ``config.yaml``, never cut ``metrics.jsonl`` back to the checkpoint
and never set later checkpoints aside, because evaluating never rewrites history. Keeping them
here leaves the :class:`~synthlm.train.loop.Trainer` with one job: training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from synthlm.errors import UserError
from synthlm.train.checkpoint import remove_stale
from synthlm.train.config import RunConfig
from synthlm.train.loop import Trainer, open_metrics


def standalone_kind(config: RunConfig) -> str | None:
    """``eval_only`` / ``predict_only`` when the config asks for one, else None (train)."""
    if config.eval_only:
        return "eval_only"
    if config.predict_only:
        return "predict_only"
    return None


def check_something_trained(config: RunConfig, kind: str, checkpoint: Path | None) -> None:
    if checkpoint is None and config.model.init_from is None:
        raise UserError(
            f"{kind}: nothing trained to use: {config.run_dir} has no checkpoint and "
            f"model.init_from is not set"
        )


def open_trained(trainer: Trainer, checkpoint: Path | None) -> None:
    """Load ``checkpoint`` (if any) and open the metric sinks, leaving the run's history as is."""
    acc = trainer.accelerator
    if acc.is_main_process:
        trainer.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale(trainer.run_dir)
    acc.wait_for_everyone()
    if checkpoint is not None:
        trainer.restore(checkpoint, resume=False)
    if acc.is_main_process:
        trainer.metrics = open_metrics(trainer.cfg, trainer.state.step)


def evaluate_only(trainer: Trainer) -> None:
    """Score the eval data, log the metrics to RUN/metrics.jsonl and print them."""
    metrics = trainer.evaluate()
    trainer.accelerator.print(json.dumps(metrics, indent=2))


def predict_only(trainer: Trainer) -> None:
    """mode ft: the model's outputs for finetune.test (else valid) as RUN/predictions.jsonl."""
    from synthlm.train.seq2seq_eval import write_predictions

    acc = trainer.accelerator
    path = trainer.run_dir / "predictions.jsonl"
    with acc.autocast():
        write_predictions(
            trainer.plan,
            trainer.model,
            acc.device,
            path,
            step=trainer.state.step,
            write=acc.is_main_process,
            progress=trainer.progress,
        )
    acc.wait_for_everyone()
    acc.print(f"predictions: {path}")


STANDALONE: dict[str, Callable[[Trainer], None]] = {
    "eval_only": evaluate_only,
    "predict_only": predict_only,
}


def run_standalone(trainer: Trainer, kind: str, checkpoint: Path | None) -> Path:
    """Open the trained model, do ``kind``'s work, close the sinks; returns the run dir."""
    open_trained(trainer, checkpoint)
    STANDALONE[kind](trainer)
    return trainer.close()
