"""torch.compile on CPU through synthlm's own training loop: eager vs ``compile_scope: model`` vs
``compile_scope: blocks`` (inductor), each a fresh process, with a cold and then a warm inductor
cache, on one Llama shape.

Per variant: the time from the start of the run to the end of its first step (model build,
then dynamo's tracing and inductor's compile in that step), the median later step
and its ratio to eager, and what dynamo built (graphs, graph breaks). Per-block compile should
trace ONE graph for all layers; the first step's cost then stays flat in the layer count.

    python benchmarks/compile_cpu.py [--layers 8] [--width 256] [--steps 12] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys, time
sys.path.insert(0, {here!r})
from train_timing import time_synthlm
from synthlm.train import load_run_config
from synthlm.models import compile_counts
config = load_run_config([json.loads({config!r})])
start = time.perf_counter()
stamps = [(start, 0.0)] + time_synthlm(config)
graphs, breaks = compile_counts()
print(json.dumps({{"step_ends": [w for w, _ in stamps], "graphs": graphs, "breaks": breaks}}))
"""


def run_config(root: Path, data: dict[str, Path], args: argparse.Namespace, variant: str) -> dict:
    model = {
        "arch": "llama",
        "preset": "tiny",
        "overrides": {
            "hidden_size": args.width,
            "intermediate_size": args.width * 4,
            "num_attention_heads": max(args.width // 64, 1),
            "num_hidden_layers": args.layers,
        },
    }
    if variant != "eager":
        model.update(compile=True, compile_scope=variant.split("-")[0])
    return {
        "run_dir": str(root / f"run-{variant}"),
        "seed": 0,
        "model": model,
        "data": {
            "sources": [{"name": "shakespeare", "path": str(data["store"])}],
            "seq_len": 128,
            "tokenizer": str(data["tok"]),
        },
        "optim": {"name": "adamw", "lr": 3e-4, "options": {"fused": True}},
        "schedule": {"name": "constant"},
        "train": {"max_steps": args.steps, "batch_size": 8, "checkpoint_every": 0},
        "logging": {"tensorboard": False, "progress": False},
    }


def child(config: dict, cache: Path, threads: int) -> dict:
    env = {
        **os.environ,
        "TORCHINDUCTOR_CACHE_DIR": str(cache),
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": f"{HERE.parent / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    code = CHILD.format(here=str(HERE), config=json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{config['run_dir']} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ends = result["step_ends"]
    steps = [b - a for a, b in itertools.pairwise(ends)]
    return {"first": steps[0], "median": statistics.median(steps[2:]), **result}  # [0]: setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from train_startup import build_data

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_data(root)
        rows = []
        for variant in ("eager", "blocks", "model"):
            cache = root / f"inductor-{variant}"  # cold on the first run, warm on the second
            for state in ("cold", "warm") if variant != "eager" else ("-",):
                config = run_config(root, data, args, variant)
                config["run_dir"] += f"-{state}"
                rows.append((variant, state, child(config, cache, args.threads)))
        eager = rows[0][2]["median"]
        print(
            f"llama width {args.width}, {args.layers} layers, seq 128 x batch 8, "
            f"{args.threads} thread(s), inductor"
        )
        print(
            "| compile | inductor cache | to 1st step end s | median step s | vs eager | graphs |"
        )
        print("|---|---|---|---|---|---|")
        for variant, state, r in rows:
            graphs = "-" if variant == "eager" else f"{r['graphs']} ({r['breaks']} breaks)"
            print(
                f"| {variant} | {state} | {r['first']:.2f} | {r['median']:.4f} | "
                f"{r['median'] / eager:.3f}x | {graphs} |"
            )


if __name__ == "__main__":
    main()
