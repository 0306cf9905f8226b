"""A whole short CPU run: ``synthlm train`` vs a minimal PyTorch loop (benchmarks/minimal_loop.py)
on the same tiny Llama and the same token store, each a fresh process, as a user runs them.

What it measures is the whole run, start-up included (imports, config validation, planning,
model build, the steps, the final save), in CPU time of the child process (user + sys, which
other jobs on a shared machine disturb far less than wall time) and in wall time. The two
alternate for ``--repeats`` runs; ratios are medians of per-repeat ratios. Target: <= 1.0x.

synthlm runs as installed: its modules' bytecode is compiled once before timing (pip does so on
install; torch and transformers come with theirs). Without that, an environment that sets
PYTHONDONTWRITEBYTECODE (as ours does) compiles synthlm's ~60 modules from source in every
run, ~0.08 s of CPU that no installed copy pays and the baseline's libraries never pay.

    python benchmarks/train_startup.py [--steps 60] [--repeats 5] [--import-profile]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_data(root: Path) -> dict[str, Path]:
    """Byte tokenizer + tinyshakespeare (one document per paragraph) as a token store."""
    from synthlm.data.corpus import shipped_corpus
    from synthlm.data.store import write_store
    from synthlm.tokenizers import train_tokenizer

    tokenizer = train_tokenizer([], "byte", None, root / "tok", quiet=True)
    text = Path(shipped_corpus()).read_text(encoding="utf-8")
    docs = tokenizer.encode_batch([d for d in text.split("\n\n") if d.strip()])
    write_store(root / "shakespeare", docs, vocab_size=tokenizer.vocab_size)
    return {"tok": root / "tok", "store": root / "shakespeare"}


def synthlm_cmd(root: Path, data: dict[str, Path], steps: int, run: str) -> list[str]:
    config = {
        "run_dir": str(root / run),
        "seed": 0,
        "model": {
            "arch": "llama",
            "preset": "tiny",
            "overrides": {
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 176,
            },
        },
        "data": {
            "sources": [{"name": "s", "path": str(data["store"])}],
            "seq_len": 128,
            "tokenizer": str(data["tok"]),
        },
        "optim": {"lr": 1e-3, "weight_decay": 0.1},
        "schedule": {"name": "cosine", "warmup_steps": 5},
        "train": {"max_steps": steps, "batch_size": 8, "log_every": 10, "checkpoint_every": 0},
        "logging": {"tensorboard": False, "progress": False},
    }
    path = root / f"{run}.json"
    path.write_text(json.dumps(config))
    return [sys.executable, "-m", "synthlm", "train", str(path), "--quiet"]


def minimal_cmd(root: Path, data: dict[str, Path], steps: int, run: str) -> list[str]:
    return [
        sys.executable,
        str(HERE / "minimal_loop.py"),
        str(data["store"]),
        str(root / run),
        "--steps",
        str(steps),
        "--vocab",
        "320",
    ]


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, child CPU s) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import synthlm

    compileall.compile_dir(Path(synthlm.__file__).parent, quiet=1)  # as pip install does
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_data(root)
        (
            timed(synthlm_cmd(root, data, 2, "warm")),
            timed(minimal_cmd(root, data, 2, "warm-min")),
        )  # disk caches
        ours, base = [], []
        for r in range(args.repeats):
            pair = [
                ("ours", synthlm_cmd(root, data, args.steps, f"run{r}")),
                ("min", minimal_cmd(root, data, args.steps, f"min{r}")),
            ]
            results = {name: timed(cmd) for name, cmd in pair[:: 1 if r % 2 == 0 else -1]}
            ours.append(results["ours"])
            base.append(results["min"])
    print(
        f"tiny llama (2 x 64, vocab 320), seq 128 x batch 8, {args.steps} steps, fp32, 1 "
        f"thread, {args.repeats} repeats"
    )
    for clock, k in (("wall", 0), ("CPU", 1)):
        mine, theirs = statistics.median(o[k] for o in ours), statistics.median(b[k] for b in base)
        ratios = [o[k] / b[k] for o, b in zip(ours, base)]
        print(
            f"[{clock:4}] synthlm train {mine:.2f} s | minimal loop {theirs:.2f} s | ratio "
            f"{statistics.median(ratios):.3f} "
            f"(per repeat {', '.join(f'{x:.2f}' for x in ratios)})"
        )


if __name__ == "__main__":
    main()
