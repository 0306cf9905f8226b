"""What the GPU-check phases share: data made on the spot, run configs, timed synthlm runs.

Every training figure comes from ``synthlm.train.run`` itself (the product's loop: precision,
compile, loss, data loader, checkpointing), timed at each step end through the loop's
``_after_step`` hook, the same way ``benchmarks/train_timing.py`` does. Step ends are host
syncs (the loop reads the step's loss), so wall-clock stamps are GPU-accurate.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def byte_tokenizer(root: Path) -> Path:
    """A byte-level tokenizer (260 ids): the check needs ids, not a trained vocabulary."""
    from synthlm.tokenizers import train_tokenizer

    path = root / "tok"
    if not (path / "tokenizer.json").is_file():
        train_tokenizer([], "byte", None, path, quiet=True)
    return path


def random_store(root: Path, tokens: int, *, seed: int = 0) -> Path:
    """Random byte ids in documents of 100-4000 tokens (packing then spans documents)."""
    from synthlm.data.store import write_store

    prefix = root / f"random-{tokens}"
    if not prefix.with_suffix(".idx").is_file():
        rng = np.random.default_rng(seed)
        docs, made = [], 0
        while made < tokens:
            n = int(rng.integers(100, 4000))
            docs.append(rng.integers(4, 256, size=n, dtype=np.int64))
            made += n
        write_store(prefix, docs, vocab_size=260)
    return prefix


def text_store(root: Path, tok: Path) -> Path:
    """tinyshakespeare, one document per speech (DEPTH needs real sentences)."""
    from synthlm.data.corpus import shipped_corpus
    from synthlm.data.store import write_store
    from synthlm.tokenizers import load_tokenizer

    prefix = root / "shakespeare"
    if not prefix.with_suffix(".idx").is_file():
        text = Path(shipped_corpus()).read_text(encoding="utf-8")
        speeches = [s for s in text.split("\n\n") if s.strip()]
        write_store(prefix, load_tokenizer(tok).encode_batch(speeches), vocab_size=260)
    return prefix


def meta_for_vocab(vocab: int, natural: int = 260) -> int:
    """model.num_meta_tokens that brings a byte tokenizer's model up to ``vocab`` embedding rows,
    so the output layer and the loss cost what they cost with a real 32k-128k vocabulary."""
    return max(vocab - natural, 0)


def run_config(
    root: Path,
    name: str,
    *,
    model: dict[str, Any],
    store: Path,
    tok: Path,
    seq_len: int,
    batch: int,
    steps: int,
    precision: str,
    peak_flops: float,
    objective: dict[str, Any] | None = None,
    optim: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A synthlm run config (a dict, as a YAML file would hold it)."""
    return {
        "run_dir": str(root / name),
        "seed": 0,
        "model": model,
        "data": {
            "sources": [{"name": "data", "path": str(store)}],
            "seq_len": seq_len,
            "tokenizer": str(tok),
        },
        "objective": objective or {"name": "clm"},
        "optim": optim or {"name": "adamw", "lr": 3e-4, "weight_decay": 0.1},
        "schedule": {"name": "constant"},
        "train": {
            "max_steps": steps,
            "batch_size": batch,
            "precision": precision,
            "log_every": 1,
            "checkpoint_every": 0,
            **(train or {}),
        },
        "logging": {"tensorboard": False, "progress": False, "peak_flops": peak_flops},
    }


# Where a timed run leaves its figures so far after each step past warmup (check.py sets it per
# phase): a phase stopped at its cap then still reports the steps it timed, not only "timeout".
PARTIAL: Path | None = None


def save_partial(figures: dict[str, Any]) -> None:
    if PARTIAL is not None:
        tmp = PARTIAL.with_name(f".{PARTIAL.name}.tmp")
        tmp.write_text(json.dumps(figures, default=str))
        os.replace(tmp, PARTIAL)


def timed_run(config: dict[str, Any], *, warmup: int, peak_flops: float) -> dict[str, Any]:
    """Train ``config`` with ``synthlm.train.run``; step times, tokens/s, MFU, peak memory."""
    import torch

    from synthlm.train import load_run_config, loop

    cfg = load_run_config([config])
    stamps: list[float] = []
    seen: dict[str, Any] = {}
    original_step, original_fit = loop.Trainer._after_step, loop.Trainer.fit

    def after_step(self: Any, result: Any) -> None:
        original_step(self, result)
        now = time.perf_counter()
        # step ends on a clock that stops while the partial figures are saved: that work is
        # this script's, and must not count in the next step's time
        stamps.append(now - seen.get("saving_s", 0.0))
        seen.setdefault("losses", []).append(result.loss)
        if len(stamps) > warmup:
            save_partial(
                {
                    **step_figures(
                        self, stamps, seen, warmup=warmup, peak_flops=peak_flops, started=started
                    ),
                    **compile_figures(cfg.model.compile),
                }
            )
            seen["saving_s"] = seen.get("saving_s", 0.0) + time.perf_counter() - now

    def fit(self: Any) -> Any:
        seen["trainer"], seen["fit_start"] = self, time.perf_counter()
        # No final checkpoint: for llama 1b it is ~27 GB (fp32 weights, both AdamW moments, the
        # export and its copy), tens of seconds of a phase's cap and 40% of the device's disk.
        # These runs measure steps; the resume and fsdp phases check saving.
        self.save_checkpoint = lambda: None
        self.export = lambda *args, **kwargs: None
        return original_fit(self)

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if cfg.model.compile:  # compile_figures counts this run's graphs alone (--inprocess too)
        import torch._dynamo
        from torch._dynamo.utils import counters

        torch._dynamo.reset()
        counters.clear()
    loop.Trainer._after_step, loop.Trainer.fit = after_step, fit  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        loop.run(cfg, progress=False)
    finally:
        loop.Trainer._after_step, loop.Trainer.fit = original_step, original_fit  # type: ignore[method-assign]
    trainer = seen["trainer"]
    figures = step_figures(
        trainer, stamps, seen, warmup=warmup, peak_flops=peak_flops, started=started
    )
    loader = loader_samples_per_s(trainer, steps=max(len(stamps), 3))
    consumed = trainer.plan.batch.global_batch / figures["step_s"]
    return {
        **figures,
        **compile_figures(cfg.model.compile),
        "loader_samples_per_s": round(loader, 1),
        "loader_headroom": round(loader / consumed, 2),
    }


def compile_figures(compiled: bool) -> dict[str, Any]:
    """What dynamo traced in this process (each phase has its own): per-block compile of a
    decoder-only model must trace one graph for all layers (T5: four), with no graph break."""
    if not compiled:
        return {}
    from synthlm.models import compile_counts

    graphs, breaks = compile_counts()
    return {"compiled_graphs": graphs, "graph_breaks": breaks}


def loader_samples_per_s(trainer: Any, steps: int) -> float:
    """Samples/s of the run's own data path alone (mixture, packing, collate, pinning, workers):
    divided by what a step consumes, the headroom (>1: the GPU never waits for data)."""
    import torch

    from synthlm.train.batches import step_batches

    plan = trainer.plan
    start = time.perf_counter()
    for _ in step_batches(
        plan.mixture,
        plan.objective.collate,
        plan.batch,
        rank=0,
        cursor=10_000,
        steps=steps,
        num_workers=plan.config.train.num_workers,
        pin_memory=torch.cuda.is_available(),
    ):
        pass
    return steps * plan.batch.global_batch / (time.perf_counter() - start)


def step_figures(
    trainer: Any,
    stamps: list[float],
    seen: dict[str, Any],
    *,
    warmup: int,
    peak_flops: float,
    started: float,
) -> dict[str, Any]:
    import torch

    plan = trainer.plan
    times = np.diff(np.array([seen["fit_start"], *stamps]))
    steady = times[min(warmup, len(times) - 1) :]
    step_s = float(statistics.median(steady))
    tokens = plan.batch.global_batch * plan.seq_len
    cuda = torch.cuda.is_available()
    losses = seen.get("losses", [])
    return {
        "steps": len(stamps),
        "setup_s": round(seen["fit_start"] - started, 3),
        "first_step_s": round(float(times[0]), 3),
        "step_s": round(step_s, 4),
        "tokens_per_step": tokens,
        "tokens_per_s": round(tokens / step_s, 1),
        "flops_per_token": trainer.flops_per_token,
        "mfu": round(trainer.flops_per_token * tokens / step_s / peak_flops, 4),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "finite": all(np.isfinite(losses)),
    }


def matmul_peak(n: int, dtype_name: str, repeats: int = 10) -> float:
    """Measured dense matmul FLOP/s (n x n x n) of this device: the MFU denominator."""
    import torch

    dev = device_type()
    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
