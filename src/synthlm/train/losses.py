"""What the loop needs from an objective beyond ``collate`` and ``loss_sum``.

The loop normalises by the target count of the whole optimizer step, so it must know each
micro-batch's count *before* the forward pass; and it logs per-source losses when they come for
free. Both are derived here from the objective's public surface, with loud failure (see
``Trainer.train_step``) rather than silent mis-scaling when an objective breaks the rule.
"""

from __future__ import annotations

from typing import Any

from synthlm.objectives import IGNORE_INDEX


def count_targets(objective: Any, batch: dict[str, Any]) -> int:
    """Target tokens of a micro-batch, known before its forward pass (for loss normalisation).

    Labels mark the targets (``IGNORE_INDEX`` elsewhere); a causal LM predicts ``labels[:, 1:]``
    (HF convention: the shift happens inside the loss). The loop checks this count against the
    one ``loss_sum`` returns, so an objective with other rules fails loudly, never mis-scales.
    """
    from synthlm.objectives.clm import CausalLM

    labels = batch["labels"][:, 1:] if isinstance(objective, CausalLM) else batch["labels"]
    return int((labels != IGNORE_INDEX).sum())


def forward_losses(objective: Any, model: Any, batch: dict[str, Any]) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """(loss sum, target count, per-row (loss sums, target counts) or None).

    When an objective's loss is the plain sum of its per-token losses (the causal LM), the
    per-token losses give per-row sums, hence per-source losses in the logs, at no extra cost.
    Other objectives (weighted token groups) log only their total.
    """
    from synthlm.objectives.clm import CausalLM

    if type(objective).loss_sum is not CausalLM.loss_sum:
        loss, targets = objective.loss_sum(model, batch)
        return loss, targets, None
    losses, mask = objective.token_losses(model, batch)
    rows = (losses.flatten(1).sum(1), mask.flatten(1).sum(1))
    return losses.sum(), mask.sum(), rows
