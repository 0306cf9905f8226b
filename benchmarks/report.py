"""Report speed: reading metrics.jsonl (ours vs pandas.read_json) and a whole report end to end.

Usage: python benchmarks/report.py [--runs 4] [--steps 20000] [--repeat 5]

Each run logs one training record per step (11 keys, like the trainer) and an eval record every
100 steps; the last line is torn, as when a report is built while training writes. The pandas
baseline is what users typically write by hand: ``read_json(lines=True)`` then one column per
key; it cannot read a torn last line, so it is given the file without it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from synthlm.report import build_report
from synthlm.report.load import load_run


def make_run(path: Path, steps: int, weight: float) -> Path:
    path.mkdir(parents=True)
    config = {
        "run_dir": str(path),
        "data": {
            "sources": [
                {"name": "text", "kind": "natural", "weight": 1.0},
                {"name": "dyck", "kind": "synthetic", "weight": weight},
            ],
            "eval": [{"name": "text", "kind": "natural"}, {"name": "dyck", "kind": "synthetic"}],
        },
        "train": {"max_steps": steps * 2},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    lines = []
    for step in range(1, steps + 1):
        loss = 5 / math.sqrt(step)
        lines.append(
            json.dumps(
                {
                    "step": step,
                    "tokens": step * 4096,
                    "loss": loss,
                    "lr": 3e-4,
                    "grad_norm": 1.0,
                    "tokens_per_s": 5e4,
                    "mfu": 0.3,
                    "loss/text": loss,
                    "loss/dyck": loss / 2,
                    "epoch": 0,
                    "phase": "train",
                }
            )
        )
        if step % 100 == 0:
            lines.append(
                json.dumps(
                    {
                        "step": step,
                        "tokens": step * 4096,
                        "eval/text/loss": loss,
                        "eval/text/ppl": math.exp(loss),
                        "eval/dyck/loss": loss / 2,
                        "eval/dyck/acc": min(1, step / steps),
                        "eval/dyck/acc/dyck": min(1, step / steps),
                    }
                )
            )
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][:20])
    (path / "clean.jsonl").write_text("\n".join(lines) + "\n")
    return path


def pandas_columns(path: Path) -> dict:
    import pandas as pd

    frame = pd.read_json(path, lines=True)
    return {
        key: frame[["step", "tokens", key]].dropna()
        for key in frame.columns
        if key not in ("step", "tokens") and frame[key].dtype.kind in "if"
    }


def median_time(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            make_run(Path(tmp) / f"run{i}", args.steps, 0.1 * (i + 1)) for i in range(args.runs)
        ]
        ours = median_time(lambda: [load_run(r) for r in runs], args.repeat)
        base = median_time(lambda: [pandas_columns(r / "clean.jsonl") for r in runs], args.repeat)
        build_report(runs[:1], Path(tmp) / "warm")  # imports matplotlib once, outside the timing
        report = median_time(
            lambda: build_report(runs, Path(tmp) / "report"), max(1, args.repeat // 2)
        )
        figures = len(build_report(runs, Path(tmp) / "report").figures)
        size = sum((r / "metrics.jsonl").stat().st_size for r in runs) / 1e6
    print(f"{args.runs} runs x {args.steps} steps ({size:.1f} MB of metrics.jsonl)")
    print(
        f"load metrics: synthlm {ours:.3f} s   pandas.read_json {base:.3f} s   ratio "
        f"(pandas/synthlm) {base / ours:.2f}x"
    )
    print(f"full report (load + {figures} figures + HTML): {report:.2f} s")


if __name__ == "__main__":
    main()
