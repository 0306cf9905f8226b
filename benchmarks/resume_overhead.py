"""What resumability costs: tokenize and synth generate with their per-chunk / per-block state
saves, vs the same runs with the saves switched off (``WorkDir.save`` a no-op), in one process,
interleaved; median seconds of each and the ratio.

The saves flush the partial files to the OS and replace a small ``state.json`` (no fsync) after
every ~1 MiB input chunk (tokenize) or every generation block (synth). Target: < 3% overhead.

    python benchmarks/resume_overhead.py [--mb 20] [--tokens 5M] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from synthlm.partial import WorkDir

SPEC = {
    "name": "bench",
    "seed": 0,
    "domains": [
        {"type": "copy", "vocab": {"num_vocab": 100}, "length": {"min": 8, "max": 64}},
        {"type": "dyck", "k": 3, "max_depth": 6},
    ],
}


def corpus(directory: Path, megabytes: float) -> Path:
    path = directory / "in.jsonl"
    line = json.dumps({"text": "the quick brown fox jumps over the lazy dog " * 20}) + "\n"
    path.write_text(line * int(megabytes * 1e6 / len(line)), encoding="utf-8")
    return path


def timed(job, out: Path) -> float:
    start = time.perf_counter()
    job(out)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--tokens", default="5M")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from synthlm.data.tokenization import tokenize
    from synthlm.synth.build import build_dataset
    from synthlm.synth.spec import load_spec

    real_save = WorkDir.save
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = corpus(root, args.mb)
        jobs = {
            "tokenize": lambda out: tokenize([source], "byte", out / "x", workers=1, quiet=True),
            "synth generate": lambda out: build_dataset(
                load_spec(SPEC, num_tokens=args.tokens), out / "d", quiet=True
            ),
        }
        for name, job in jobs.items():
            times: dict[str, list[float]] = {"with saves": [], "without": []}
            for i in range(args.repeats):
                for mode in (
                    list(times) if i % 2 == 0 else list(times)[::-1]
                ):  # alternate who goes first
                    WorkDir.save = real_save if mode == "with saves" else (lambda self, state: None)
                    out = root / f"{name.replace(' ', '_')}-{mode.replace(' ', '_')}-{i}"
                    out.mkdir()
                    times[mode].append(timed(job, out))
            WorkDir.save = real_save
            with_saves, without = (statistics.median(times[m]) for m in times)
            ratio = with_saves / without
            print(
                f"{name:15s} with saves {with_saves:7.3f}s  without {without:7.3f}s  ratio "
                f"{ratio:.3f}"
            )


if __name__ == "__main__":
    main()
