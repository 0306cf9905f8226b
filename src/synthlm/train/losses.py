"""What the loop needs from an objective beyond ``collate``: target counts and losses.

The loop normalises by the target count of the whole optimizer step, so it must know each
micro-batch's count *before* the forward pass (``Objective.num_targets``); and it logs
per-source losses when the objective can give per-row sums (``Objective.row_loss_sums``).
Both are the objective's own rules, so a new objective (encoder-decoder ones included) needs no
change here; the loop checks the counts agree (see ``Trainer.train_step``).
"""

from __future__ import annotations

from typing import Any


def count_targets(objective: Any, batch: dict[str, Any]) -> int:
    """Target tokens of a micro-batch, known before its forward pass (for loss normalisation)."""
    return int(objective.num_targets(batch))


def forward_losses(objective: Any, model: Any, batch: dict[str, Any]) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """(loss sum, target count, per-row (loss sums, target counts) or None) from one forward."""
    rows = objective.row_loss_sums(model, batch)
    if rows is None:
        loss, targets = objective.loss_sum(model, batch)
        return loss, targets, None
    return rows[0].sum(), rows[1].sum(), rows
