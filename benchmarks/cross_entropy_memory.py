"""Peak memory of the loss over large-vocabulary logits: synthlm's chunked fp32 cross-entropy
vs the plain recipe (``F.cross_entropy(logits.float(), ...)``), forward + backward.

Each variant runs in a fresh process (peak RSS on CPU, ``max_memory_allocated`` on CUDA) on
bf16 logits of ``batch x seq x vocab`` that require grad, as a model's output does under bf16
autocast. The figure is the peak above the logits themselves.

    python benchmarks/cross_entropy_memory.py [--batch 4 --seq 1024 --vocab 32000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def child(kind: str, batch: int, seq: int, vocab: int) -> dict[str, float]:
    import time

    import torch
    import torch.nn.functional as F

    from synthlm.objectives.cross_entropy import auto_chunk, token_cross_entropy

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    logits = torch.randn(batch, seq, vocab, device=dev, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, vocab, (batch, seq), device=dev)
    base = (
        torch.cuda.memory_allocated()
        if dev == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if kind == "plain":
        losses = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), reduction="none")
    else:
        losses = token_cross_entropy(logits, labels, chunk_tokens=auto_chunk(vocab))  # as on a GPU
    losses.sum().backward()
    seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated()
        if dev == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "extra_gb": (peak - base) / 2**30,
        "logits_gb": logits.numel() * 2 / 2**30,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.seq, args.vocab)))
        return
    shape = ["--batch", str(args.batch), "--seq", str(args.seq), "--vocab", str(args.vocab)]
    for kind in ("plain", "synthlm"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, *shape],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{kind:8} logits {r['logits_gb']:.2f} GB (bf16) | peak above them "
            f"{r['extra_gb']:.2f} GB | {r['seconds']:.2f} s"
        )


if __name__ == "__main__":
    main()
