"""Which samples each process trains on, step by step.

Global order: optimizer step ``s`` uses the mixture's samples ``[c + s*G, c + (s+1)*G)`` where
``G = micro x processes x accum`` and ``c`` is the data cursor at the start. Within a step,
micro-batch ``m`` covers the next ``micro x processes`` samples and rank ``r`` takes its fixed
slice ``[r*micro, (r+1)*micro)`` of them. So the union over ranks of one step is the same
``G`` samples whatever the number of processes, and resuming needs only the cursor (samples
consumed): nothing is re-read or skipped, and no sampler state is saved.

Samples are a pure function of their index (see :mod:`synthlm.data.mixture`), so DataLoader
workers need no coordination either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from synthlm.data.mixture import MixtureDataset
from synthlm.train.run_plan import BatchPlan

if TYPE_CHECKING:
    from synthlm.protocols import TrainStream


@dataclass(frozen=True)
class RankIndices(Sequence[int]):
    """Lazy list of the sample indices one rank reads, micro-batch after micro-batch."""

    start: int
    micro: int
    processes: int
    rank: int
    length: int

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, j: int) -> int: ...

    @overload
    def __getitem__(self, j: slice) -> list[int]: ...

    def __getitem__(self, j: int | slice) -> int | list[int]:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(self.length))]
        if not 0 <= j < self.length:
            raise IndexError(j)
        pass_index, within = divmod(j, self.micro)
        return (
            self.start + pass_index * self.micro * self.processes + self.rank * self.micro + within
        )


def step_batches(
    mixture: TrainStream,  # a Mixture (mode pt) or a PairDataset (mode ft)
    collate: Any,
    batch: BatchPlan,
    *,
    rank: int,
    cursor: int,
    steps: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    prefetch: int = 0,
    device: Any = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield, for each of ``steps`` optimizer steps, this rank's ``accum`` collated micro-batches.

    ``prefetch``: steps prepared ahead by a background thread when ``num_workers`` is 0;
    ``device``: this rank's accelerator, made current in that thread (see :func:`prefetched`).
    """
    from torch.utils.data import DataLoader

    indices = RankIndices(
        cursor, batch.micro, batch.processes, rank, steps * batch.accum * batch.micro
    )
    loader = DataLoader(
        MixtureDataset(mixture, indices),  # type: ignore[arg-type]  # any int sequence works
        batch_size=batch.micro,
        shuffle=False,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers else None,
    )
    micro_batches = iter(loader)
    steps_ahead = ([next(micro_batches) for _ in range(batch.accum)] for _ in range(steps))
    if (
        prefetch and num_workers == 0
    ):  # workers already prefetch (prefetch_factor) in their processes
        yield from prefetched(steps_ahead, depth=prefetch, device=device)
    else:
        yield from steps_ahead


def prefetched(items: Iterator[Any], depth: int, device: Any = None) -> Iterator[Any]:
    """``items`` made by a background thread up to ``depth`` ahead, in the same order.

    Why: with ``num_workers=0`` the step's batches are sampled, packed and collated (and
    pinned) on the training thread, between steps, while a GPU sits idle. A thread overlaps
    that work with the GPU's compute: torch releases the GIL while it waits for the device.
    Order is unchanged (one producer), so runs stay reproducible; the producer's exceptions
    are raised here, and it stops when the consumer does. A new thread's current CUDA device is
    device 0, so it is set to ``device`` first: pinning memory from rank 1 must not open a
    context on GPU 0 (what DataLoader's own pinning thread does too).
    """
    import queue
    import threading

    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            if getattr(device, "type", None) == "cuda" and device.index is not None:
                import torch

                torch.cuda.set_device(device)
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put(("error", exc))

    thread = threading.Thread(target=produce, name="synthlm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)
