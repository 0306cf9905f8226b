"""Produce generation blocks, in order, in this process or in a pool of worker processes.

A block is a pure function of (spec, split, domain, block index), so workers can compute blocks
ahead in any order while the consumer takes them strictly in index order: the bytes written are
the same for every worker count. At most ``2 x workers`` blocks are in flight, which bounds
memory whatever the token budget.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthlm.data.store import dtype_for_vocab
from synthlm.synth.rng import block_generator, sequence_hashes
from synthlm.workers import die_with_parent


@dataclass
class Block:
    """One generated block, ready to write: tokens in the store dtype, sizes, mask, fingerprints."""

    tokens: np.ndarray
    sizes: np.ndarray
    mask: np.ndarray
    hashes: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.sizes) + 1, dtype=np.int64)
        np.cumsum(self.sizes, out=out[1:])
        return out


def make_block(plan, split: int, domain: int, index: int) -> Block:
    """Generate block ``index`` of ``domain`` in ``split`` (the single definition of its bytes)."""
    d = plan.domains[domain]
    batch = d.generate(block_generator(plan.seed, split, domain, index), d.block_size())
    tokens = batch.tokens.astype(dtype_for_vocab(plan.layout.vocab_size))
    return Block(
        tokens, batch.sizes.astype(np.int64), batch.mask, sequence_hashes(batch.tokens, batch.sizes)
    )


_WORKER_PLAN: Any = None


def _init_worker(spec_json: str, parent: int | None = None) -> None:
    global _WORKER_PLAN
    if parent is not None:
        die_with_parent(parent)
    from synthlm.synth.generation_plan import make_plan
    from synthlm.synth.spec import spec_schema

    _WORKER_PLAN = make_plan(spec_schema().model_validate(json.loads(spec_json)))


def _worker_block(split: int, domain: int, index: int) -> Block:
    return make_block(_WORKER_PLAN, split, domain, index)


class BlockSource:
    """Iterate the blocks of one (split, domain) piece in order, optionally in parallel."""

    def __init__(self, plan, workers: int = 1) -> None:
        self.plan = plan
        self.workers = max(1, int(workers))
        self.pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_init_worker,
                initargs=(json.dumps(plan.spec.model_dump(mode="json")), os.getpid()),
            )
            self.pool.submit(
                int
            ).result()  # start the workers now, while this process has one thread

    def __enter__(self) -> BlockSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def blocks(self, split: int, domain: int, start: int = 0) -> Iterator[Block]:
        """Blocks ``start``, ``start + 1``, ... of the piece; the caller stops when its budget is met
        (a resumed run starts after the blocks it already wrote)."""
        if self.pool is None:
            index = start
            while True:
                yield make_block(self.plan, split, domain, index)
                index += 1
        pending: deque[Future] = deque()
        submitted = start
        try:
            while True:
                while len(pending) < 2 * self.workers:
                    pending.append(self.pool.submit(_worker_block, split, domain, submitted))
                    submitted += 1
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
