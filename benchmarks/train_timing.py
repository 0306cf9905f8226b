"""What the trainer benchmarks (train.py, t5.py) share: data, step timestamps, medians.

Both time ``synthlm train`` against a Hugging Face trainer in one process; each records a
``(wall, CPU)`` timestamp at every step end and compares median step times after a warmup.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def build_data(root: Path) -> dict[str, Path]:
    """Byte tokenizer + tinyshakespeare (one document per paragraph) as a token store."""
    from synthlm.data.store import write_store
    from synthlm.tokenizers import train_tokenizer

    tokenizer = train_tokenizer([], "byte", None, root / "tok", quiet=True)
    text = SHAKESPEARE.read_text(encoding="utf-8")
    docs = tokenizer.encode_batch([d for d in text.split("\n\n") if d.strip()])
    write_store(root / "shakespeare", docs, vocab_size=tokenizer.vocab_size)
    return {"tok": root / "tok", "store": root / "shakespeare"}


def now() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is robust to other jobs' load."""
    return time.perf_counter(), time.process_time()


def time_synthlm(config: Any) -> list[tuple[float, float]]:
    """Step-end timestamps of ``synthlm.train.run`` (the loop's hook point, patched here only)."""
    from synthlm.train import loop, run

    stamps: list[tuple[float, float]] = []
    original = loop.Trainer._after_step

    def after_step(self: Any, result: Any) -> None:
        original(self, result)
        stamps.append(now())

    loop.Trainer._after_step = after_step  # type: ignore[method-assign]
    try:
        run(config)
    finally:
        loop.Trainer._after_step = original  # type: ignore[method-assign]
    return stamps


def stamp_callback(stamps: list[tuple[float, float]]) -> Any:
    """A transformers ``TrainerCallback`` appending a timestamp at every step end."""
    from transformers import TrainerCallback

    class Stamp(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            stamps.append(now())

    return Stamp()


def median_step(stamps: list[tuple[float, float]], warmup: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds per step after the warmup steps."""
    times = np.diff(np.array(stamps[warmup:]), axis=0)
    return float(np.median(times[:, 0])), float(np.median(times[:, 1]))
