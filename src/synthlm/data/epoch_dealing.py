"""Epochs that end with their own short batch, rows dealt as torch's DistributedSampler deals
them (``data.epoch_batches: per_epoch``).

synthlm reads the passes over a source as one stream: step ``s`` trains on samples
``[s*G, (s+1)*G)``, so a batch may hold the end of one pass and the start of the next. Code
built on PyTorch Lightning (Rocket) batches each epoch on its own: ``DistributedSampler`` pads
the epoch's shuffled order to a multiple of the number of ranks with its first rows, deals
position ``r, r + R, r + 2R, ...`` to rank ``r``, and each rank's DataLoader cuts its share into
batches of ``B``, the last one short (``drop_last=False``). An epoch of ``N`` rows is then
``ceil(ceil(N / R) / B)`` optimizer steps.

Here the ranks are the ``S = G / B`` micro-batch slots of a step (each micro-batch is a
contiguous block of ``B`` samples, whichever process and accumulation step reads it; see
:mod:`synthlm.train.batches`), so the same layout holds for any number of processes with the
same ``batch_size`` and global batch. Each epoch occupies whole steps; the places of the short
last batch's missing rows are *filler* rows with no targets. A filler changes no gradient: with
``loss_average: tokens`` it adds no target, and with ``micro_batch`` every slot's micro-batch
still averages its own real rows (each slot holds the same number of them, as each rank does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DealtEpochs:
    """Where each stream position of a source falls: (epoch, position in that epoch's order) or
    a filler."""

    rows: int  # N: rows (documents) in one pass
    slots: int  # S: micro-batches per optimizer step (the ranks)
    micro: int  # B: rows per micro-batch

    @property
    def per_slot(self) -> int:
        """Rows each slot reads in one epoch, the sampler's padding included."""
        return math.ceil(self.rows / self.slots)

    @property
    def steps(self) -> int:
        """Optimizer steps in one epoch."""
        return math.ceil(self.per_slot / self.micro)

    @property
    def samples(self) -> int:
        """Stream positions in one epoch (whole steps, fillers included)."""
        return self.steps * self.slots * self.micro

    def locate(self, position: int) -> tuple[int, int | None]:
        """(epoch, index into that epoch's order), the index None for a filler."""
        epoch, within = divmod(position, self.samples)
        step, in_step = divmod(within, self.slots * self.micro)
        slot, row = divmod(in_step, self.micro)
        dealt = step * self.micro + row  # the slot's row number in this epoch
        if dealt >= self.per_slot:
            return epoch, None
        # the sampler pads the order to per_slot x slots with its own first rows
        return epoch, (dealt * self.slots + slot) % self.rows
