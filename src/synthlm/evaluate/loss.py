"""Summed next-token loss over chosen target positions (synthetic examples, one per row), and
the batching both eval kinds share.

Losses are returned as *sums* with target counts, never means, so that eval sets of many
batches (and a short last batch) average exactly per token, or, for a run that trained on
per-micro-batch means, per batch as its original code did (:class:`BatchMeanLoss`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

Row = tuple[np.ndarray, np.ndarray]  # (token ids, target mask)
T = TypeVar("T")


@dataclass
class LossTotal:
    """Running token-weighted loss (nats), accumulated in float64."""

    loss_sum: float = 0.0
    tokens: int = 0

    def add(self, loss_sum: float, tokens: int, rows: int = 0) -> None:
        """``rows`` is unused: every token weighs the same however the batches fall."""
        self.loss_sum += loss_sum
        self.tokens += tokens

    @property
    def mean(self) -> float:
        return self.loss_sum / self.tokens if self.tokens else float("nan")


@dataclass
class BatchMeanLoss:
    """Row-weighted mean of each batch's own token-mean loss (nats), for runs that train with
    ``train.loss_average: micro_batch``: what code that logs a mean-reduced loss per batch
    reports as its eval loss (Lightning's epoch value of ``self.log("val_loss", ...)``, the HF
    Trainer's ``eval_loss``: both weigh a batch by its rows). Batches without a target, where
    torch's mean is NaN, are left out."""

    weighted: float = 0.0
    rows: int = 0
    tokens: int = 0

    def add(self, loss_sum: float, tokens: int, rows: int) -> None:
        if tokens:
            self.weighted += rows * loss_sum / tokens
            self.rows += rows
        self.tokens += tokens

    @property
    def mean(self) -> float:
        return self.weighted / self.rows if self.rows else float("nan")


def loss_total(loss_average: str) -> LossTotal | BatchMeanLoss:
    """The eval loss accumulator matching a run's ``train.loss_average``."""
    return BatchMeanLoss() if loss_average == "micro_batch" else LossTotal()


def right_pad(rows: Sequence[np.ndarray], targets: Sequence[np.ndarray], pad_id: int):
    """(input_ids, attention_mask, target_mask) tensors, rows left-aligned; padding is never a target."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (row, mask) in enumerate(zip(rows, targets)):
        ids[i, : len(row)] = torch.from_numpy(np.asarray(row, dtype=np.int64))
        attention[i, : len(row)] = 1
        target[i, : len(row)] = torch.from_numpy(np.asarray(mask, dtype=bool))
    return ids, attention, target


def batched(rows: Iterable[T], batch_size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def rows_loss(model, rows: Sequence[Row], *, pad_id: int, device) -> list[tuple[float, int]]:
    """(loss sum, target count) of each row of one batch: per-row totals let a caller group
    documents (e.g. by domain) while still averaging exactly per token."""
    import torch.nn.functional as F

    ids, attention, target = right_pad([r for r, _ in rows], [m for _, m in rows], pad_id)
    ids, attention, target = ids.to(device), attention.to(device), target.to(device)
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1]
    labels = ids[:, 1:]
    chosen = target[:, 1:] & attention[:, 1:].bool()
    flat = logits.reshape(-1, logits.shape[-1]).float()
    losses = F.cross_entropy(flat, labels.reshape(-1), reduction="none").view(labels.shape)
    sums = losses.double().where(chosen, 0.0).sum(dim=1).tolist()
    return list(zip(sums, chosen.sum(dim=1).tolist()))
