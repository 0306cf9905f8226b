"""Summed next-token loss over chosen target positions: the one loss both eval kinds share.

Losses are returned as *sums* with target counts, never means, so that eval sets of many
batches (and a short last batch) average exactly per token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

Row = tuple[np.ndarray, np.ndarray]  # (token ids, target mask)


@dataclass
class LossTotal:
    """Running token-weighted loss (nats), accumulated in float64."""

    loss_sum: float = 0.0
    tokens: int = 0

    def add(self, loss_sum: float, tokens: int) -> None:
        self.loss_sum += loss_sum
        self.tokens += tokens

    @property
    def mean(self) -> float:
        return self.loss_sum / self.tokens if self.tokens else float("nan")


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


def batch_loss(model, input_ids, attention_mask, target_mask) -> tuple[float, int]:
    """(sum of -log p(token t | tokens < t), count) over positions t >= 1 where target_mask is set."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    return chosen_loss(logits, input_ids, target_mask[:, 1:] & attention_mask[:, 1:].bool())


def chosen_loss(logits, input_ids, chosen) -> tuple[float, int]:
    """(sum, count) of the next-token losses of ``input_ids[:, 1:]`` where ``chosen`` is set."""
    import torch.nn.functional as F

    labels = input_ids[:, 1:]
    logits = logits[:, :-1]
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), reduction="none"
    )
    return float(losses.view(labels.shape)[chosen].double().sum()), int(chosen.sum())


def batched(rows: Iterable[Row], batch_size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def sequences_loss(model, batches: Iterable[list[Row]], *, pad_id: int, device) -> LossTotal:
    """Loss over batches of (tokens, target mask) rows."""
    total = LossTotal()
    for batch in batches:
        ids, attention, target = right_pad([r for r, _ in batch], [m for _, m in batch], pad_id)
        total.add(*batch_loss(model, ids.to(device), attention.to(device), target.to(device)))
    return total


def document_masked_loss(model, batches: Iterable[list[Row]], *, device) -> LossTotal:
    """Loss over batches of (tokens, document number) rows, scored the way ``objective: clm``
    trains with ``document_mask``: each document attends only to itself, its positions start at
    0, and its first token is not a target (in training it is cut off from what came before).
    """
    import torch

    from synthlm.objectives.clm import block_causal_mask, segment_positions

    total = LossTotal()
    for batch in batches:
        width = max(len(tokens) for tokens, _ in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        documents = torch.full((len(batch), width), -1, dtype=torch.long)  # -1: padding
        for i, (tokens, numbers) in enumerate(batch):
            ids[i, : len(tokens)] = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
            documents[i, : len(tokens)] = torch.from_numpy(np.asarray(numbers, dtype=np.int64))
        positions = torch.from_numpy(np.stack([segment_positions(d) for d in documents.numpy()]))
        ids, documents, positions = ids.to(device), documents.to(device), positions.to(device)
        dtype = next(model.parameters()).dtype
        logits = model(
            input_ids=ids,
            attention_mask=block_causal_mask(documents, dtype=dtype),
            position_ids=positions,
            use_cache=False,
        ).logits
        chosen = (documents[:, 1:] == documents[:, :-1]) & (documents[:, 1:] >= 0)
        total.add(*chosen_loss(logits, ids, chosen))
    return total


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
