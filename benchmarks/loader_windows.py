"""What NeoX-style rows cost the loader: ``data.shared_boundary`` and ``data.shuffle_windows``.

One process builds one tinyshakespeare store (byte tokenizer, a document per paragraph) and
reads the same sample indices through synthlm's mixture + clm collate four ways: the default
(consecutive ``seq_len`` windows), ``shared_boundary`` (``seq_len + 1`` tokens a row),
``shuffle_windows`` (each pass's windows in a keyed permuted order, a Feistel permutation
evaluated per index) and both. The variants alternate for ``--repeats`` rounds; samples/s is
the median over rounds (CPU time of this process, which other jobs disturb far less than
wall time), the ratio the median of per-round ratios against the default.

    python benchmarks/loader_windows.py [--seq-len 2048] [--samples 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from train_timing import build_data

VARIANTS = {
    "default": {},
    "shared_boundary": {"shared_boundary": True},
    "shuffle_windows": {"shuffle_windows": True},
    "both": {"shared_boundary": True, "shuffle_windows": True},
}


def plan(root: Path, data: dict[str, Path], seq_len: int, keys: dict) -> tuple:
    from synthlm.train import load_run_config
    from synthlm.train.planners import plan_run

    config = load_run_config(
        [
            {
                "run_dir": str(root / "run"),
                "seed": 0,
                "model": {"arch": "llama", "preset": "tiny"},
                "data": {
                    "sources": [{"name": "shakespeare", "path": str(data["store"])}],
                    "tokenizer": str(data["tok"]),
                    "seq_len": seq_len,
                    **keys,
                },
                "train": {"max_steps": 1, "batch_size": 8},
                "logging": {"tensorboard": False, "progress": False},
            }
        ]
    )
    run = plan_run(config, 1)
    return run.mixture, run.objective


def samples_per_second(mixture, objective, count: int, batch: int = 8) -> float:
    """Sample + collate ``count`` consecutive indices, as a num_workers=0 loader does."""
    start = time.process_time()  # CPU time: robust to other jobs on a shared machine
    for first in range(0, count, batch):
        objective.collate([mixture.sample(i) for i in range(first, min(first + batch, count))])
    return count / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_data(root)
        loaders = {name: plan(root, data, args.seq_len, keys) for name, keys in VARIANTS.items()}
        for mixture, objective in loaders.values():  # warm the page cache and the epoch orders
            samples_per_second(mixture, objective, min(args.samples, 200))
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name, (mixture, objective) in loaders.items():
                rates[name].append(samples_per_second(mixture, objective, args.samples))
    print(f"seq_len {args.seq_len}, {args.samples} samples x {args.repeats} rounds")
    print(f"{'variant':<16} {'samples/s':>10} {'ratio':>6}  per round")
    for name, values in rates.items():
        ratios = [v / d for v, d in zip(values, rates["default"], strict=True)]
        print(
            f"{name:<16} {statistics.median(values):>10,.0f} {statistics.median(ratios):>6.2f}  "
            + ", ".join(f"{r:.2f}" for r in ratios)
        )


if __name__ == "__main__":
    main()
