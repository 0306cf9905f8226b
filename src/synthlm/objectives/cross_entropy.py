"""Per-token cross-entropy in fp32 that never holds fp32 copies of all the logits at once.

Under bf16 autocast the model's logits are bf16; the loss must be fp32. The plain recipe
(``F.cross_entropy(logits.float(), ...)``) materialises an fp32 copy of every logit, its
log-softmax for the backward, and an fp32 gradient: at seq 2048 x batch 8 that is three
tensors of 2-8 GB each for 32k-128k ids. Here the rows are cut into chunks, each chunk's loss
is computed in fp32 under activation checkpointing (nothing kept; recomputed in the backward,
chunk by chunk), so the fp32 work never exceeds one chunk. Values and gradients equal the
plain recipe's (same ops on the same rows); chunking starts only where it saves memory (on an
accelerator, logits over ~256 MB in fp32), so small models and CPU runs take the plain path
with no recomputation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100
CHUNK_BYTES = 256 * 2**20  # fp32 logits per chunk: large enough to keep the GPU busy


def auto_chunk(vocab: int) -> int:
    """Rows per chunk so that one chunk's fp32 logits take about ``CHUNK_BYTES``."""
    return max(CHUNK_BYTES // (4 * max(vocab, 1)), 256)


def token_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    chunk_tokens: int | None = None,
) -> torch.Tensor:
    """fp32 losses shaped like ``labels`` (0 where ignored) for ``logits`` [..., V].

    ``chunk_tokens``: rows per chunk (default: :func:`auto_chunk` on an accelerator; none on
    CPU, where memory is rarely the limit and the recomputation costs 1.5-2.5x the loss's time,
    see benchmarks/RESULTS.md). ``logits`` should be contiguous so that flattening it is a
    view, not a copy.
    """
    vocab = logits.shape[-1]
    flat, targets = logits.reshape(-1, vocab), labels.reshape(-1)
    chunk = chunk_tokens or (auto_chunk(vocab) if logits.device.type != "cpu" else 0)
    if not chunk or flat.shape[0] <= chunk or not torch.is_grad_enabled() or not flat.requires_grad:
        return _losses(flat, targets, ignore_index).view(labels.shape)
    pieces = [
        checkpoint(_losses, rows, row_targets, ignore_index, use_reentrant=False)
        for rows, row_targets in zip(flat.split(chunk), targets.split(chunk))
    ]
    return torch.cat(pieces).view(labels.shape)


def _losses(rows: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return F.cross_entropy(rows.float(), targets, ignore_index=ignore_index, reduction="none")


def shifted_labels(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Next-token targets aligned with every position (the last one ignored).

    Shifting the labels instead of slicing the logits (``logits[:, :-1]``) keeps the logits
    contiguous, so the loss reads them in place instead of copying all of them.
    """
    return F.pad(labels[..., 1:], (0, 1), value=ignore_index)
