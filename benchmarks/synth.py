"""Synthetic data generation speed: ``synthlm synth generate`` vs a Seqthetic-style baseline.

    python benchmarks/synth.py                      # everything, 5M tokens, 3 repeats
    python benchmarks/synth.py --skip-domains       # only the end-to-end comparison
    python benchmarks/synth.py --domains copy dyck  # per-domain throughput for a few domains

The baseline: Seqthetic itself is not installable here (not on PyPI) and its code is not ours to
copy, so ``seqthetic_style`` re-creates the approach its README describes for the same identity
spec: one Python iteration per sequence with its own ``default_rng(seed + i)``, token lists, and
a pandas DataFrame written as CSV. The issue's reference figure for the real script on this kind
of machine is 21 s wall, 780 MB, 72 MB of CSV for 5M tokens.

Reported: medians over ``--repeats`` runs, and our speed-up (baseline time / our time) measured
in the same process (in-process functions) and as separate commands (wall and peak RSS via
``os.wait4`` of the child).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IDENTITY = {
    "name": "identity",
    "vocab_size": 10000,
    "sequence_length_min": 256,
    "sequence_length_max": 1024,
    "seed": 0,
}


def seqthetic_style(num_tokens: int, out: Path, seed: int = 0) -> int:
    """The baseline: per-sequence Python generation written as CSV; returns bytes written."""
    import numpy as np
    import pandas as pd

    rows, total, i = [], 0, 0
    while total < num_tokens:
        rng = np.random.default_rng(seed + i)  # what Seqthetic does (and what synthlm avoids)
        length = int(
            rng.integers(IDENTITY["sequence_length_min"], IDENTITY["sequence_length_max"] + 1)
        )
        tokens = rng.integers(0, IDENTITY["vocab_size"], size=length).tolist()
        sequence = [*tokens, IDENTITY["vocab_size"], *tokens]
        mask = [0] * (length + 1) + [1] * length
        rows.append({"sequence": sequence, "mask": mask, "domain": "identity"})
        total += len(sequence)
        i += 1
    path = out / "identity.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path.stat().st_size


def ours(num_tokens: int, out: Path, workers: int = 1) -> int:
    from synthlm.synth import build_dataset, load_spec

    spec = load_spec(dict(IDENTITY), num_tokens=num_tokens)
    build_dataset(spec, out / "data", workers=workers, quiet=True)
    return sum(p.stat().st_size for p in (out / "data").iterdir())


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="synth-bench-"))


# Peak memory of a child: VmHWM of its own address space, read at exit. (``ru_maxrss`` from
# wait4 would include the benchmark process itself, which the child briefly is before exec.)
PEAK_AT_EXIT = """
import atexit, runpy, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write(f"VMHWM {line.split()[1]}\\n")
atexit.register(_peak)
sys.argv = sys.argv[1:]
if sys.argv[0] == "-m":
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_child(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``python ARGS`` in a fresh process."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PEAK_AT_EXIT, *args], capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed: {result.stderr}")
    peaks = [
        int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("VMHWM ")
    ]
    return wall, peaks[-1] / 1024


def end_to_end(tokens: int, repeats: int, workers: int) -> dict:
    spec = fresh_dir() / "identity.json"
    spec.write_text(json.dumps(IDENTITY))
    results: dict[str, list] = {
        "startup": [],
        "ours_cli": [],
        "ours_cli_w": [],
        "baseline_cli": [],
        "ours_fn": [],
        "baseline_fn": [],
    }
    sizes = {}
    for _ in range(repeats):
        results["startup"].append(run_child(["-m", "synthlm", "--version"]))
        for key, extra in (("ours_cli", []), ("ours_cli_w", ["--workers", str(workers)])):
            out = fresh_dir()
            results[key].append(
                run_child(
                    [
                        "-m",
                        "synthlm",
                        "synth",
                        "generate",
                        str(spec),
                        "--num-token",
                        str(tokens),
                        "--out",
                        str(out / "d"),
                        "-q",
                        *extra,
                    ]
                )
            )
            sizes["ours"] = sum(p.stat().st_size for p in (out / "d").iterdir())
            shutil.rmtree(out)
        out = fresh_dir()
        results["baseline_cli"].append(
            run_child([__file__, "--baseline-child", str(tokens), str(out)])
        )
        sizes["baseline"] = (out / "identity.csv").stat().st_size
        shutil.rmtree(out)
        for key, fn in (("ours_fn", ours), ("baseline_fn", seqthetic_style)):
            out = fresh_dir()
            results[key].append(timed(fn, tokens, out)[0])
            shutil.rmtree(out)
    return {"results": results, "sizes": sizes}


def report_end_to_end(data: dict, tokens: int, workers: int) -> None:
    r = data["results"]
    med = {
        k: statistics.median(v if isinstance(v[0], float) else [w for w, _ in v])
        for k, v in r.items()
    }
    rss = {k: statistics.median(m for _, m in v) for k, v in r.items() if not k.endswith("_fn")}
    print(
        f"\nEnd to end, identity spec (vocab 10000, lengths 256-1024), {tokens:,} tokens, "
        f"median of {len(r['ours_fn'])}"
    )
    print(f"  {'':34} {'wall s':>8} {'peak MiB':>9} {'output MB':>10}")
    print(f"  {'synthlm --version (CLI start-up)':34} {med['startup']:8.2f} {rss['startup']:9.0f}")
    print(
        f"  {'synthlm synth generate (CLI)':34} {med['ours_cli']:8.2f} "
        f"{rss['ours_cli']:9.0f} {data['sizes']['ours'] / 1e6:10.1f}"
    )
    print(
        f"  {f'synthlm synth generate -w {workers}':34} {med['ours_cli_w']:8.2f} "
        f"{rss['ours_cli_w']:9.0f}  (peak of the main process)"
    )
    print(
        f"  {'seqthetic-style baseline (CLI)':34} {med['baseline_cli']:8.2f} "
        f"{rss['baseline_cli']:9.0f} {data['sizes']['baseline'] / 1e6:10.1f}"
    )
    print(f"  {'synthlm build_dataset() in process':34} {med['ours_fn']:8.2f}")
    print(f"  {'baseline function in process':34} {med['baseline_fn']:8.2f}")
    print(
        f"  speed-up: CLI {med['baseline_cli'] / med['ours_cli']:.1f}x, in process "
        f"{med['baseline_fn'] / med['ours_fn']:.1f}x; "
        f"vs the reference Seqthetic run (21 s): {21 / med['ours_cli']:.1f}x "
        f"({21 / (med['ours_cli'] - med['startup']):.1f}x without the CLI start-up)"
    )


# Domains with a required key: the illustrative dependency lengths of examples/synth/tilt.yaml.
REQUIRED = {
    "tilt_flat_parens": {
        "dep_lengths": {1: 4500, 2: 2200, 3: 1200, 4: 700, 5: 450, 6: 300, 7: 200, 8: 150, 10: 100}
    }
}


def per_domain(
    tokens: int, repeats: int, names: list[str] | None
) -> list[tuple[str, float, float]]:
    from synthlm.synth import build_dataset, load_spec
    from synthlm.synth.registry import load_domains

    rows = []
    for name in names or sorted(load_domains()):
        seconds = []
        for _ in range(repeats):
            out = fresh_dir()
            spec = load_spec(
                {
                    "num_tokens": tokens,
                    "seed": 0,
                    "domains": [{"type": name, **REQUIRED.get(name, {})}],
                }
            )
            seconds.append(timed(build_dataset, spec, out / "d", quiet=True)[0])
            written = json.loads((out / "d" / "manifest.json").read_text())["num_tokens"]
            shutil.rmtree(out)
        median = statistics.median(seconds)
        rows.append((name, median, written / median / 1e6))
        print(f"  {name:20} {median:7.2f} s {written / median / 1e6:7.1f} M tok/s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", default="5M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--domains", nargs="*", help="Per-domain throughput for these domains only."
    )
    parser.add_argument("--skip-domains", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument(
        "--baseline-child", nargs=2, metavar=("TOKENS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline_child:
        seqthetic_style(int(args.baseline_child[0]), Path(args.baseline_child[1]))
        return
    from synthlm.config import parse_count

    tokens = parse_count(args.tokens)
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    if not args.skip_e2e:
        report_end_to_end(end_to_end(tokens, args.repeats, args.workers), tokens, args.workers)
    if not args.skip_domains:
        print(
            f"\nPer domain (default parameters), build_dataset() with writing, 1 process, "
            f"{tokens:,} tokens, median of {args.repeats}"
        )
        per_domain(tokens, args.repeats, args.domains)


if __name__ == "__main__":
    main()
