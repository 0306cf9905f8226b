"""Tokenization throughput: synthlm's pipeline vs the raw encode_batch ceiling vs GPT-NeoX's design.

All three encode the same documents (tinyshakespeare repeated to ~50 MB, split at blank lines)
with the same byte-level BPE tokenizer, in one process, interleaved, and report median tokens/s:

  (a) ``synthlm.data.tokenization.tokenize`` on a .jsonl file, ``--workers 2``: the real pipeline (read,
      parse, encode, write the store).
  (b) the ceiling: ``tokenizers.Tokenizer.encode_batch`` on the texts already in memory (Rust
      threads on every core; no reading, parsing or writing).
  (c) GPT-NeoX's ``preprocess_data.py`` design, rewritten here: the main process parses each
      JSON line, ``multiprocessing.Pool(2).imap(encode, texts, 25)`` encodes one document per
      call, and the main process writes one array per document (a semaphore bounds the backlog).

  (a') as (a) with the ASCII piece cache switched off, so every document goes through
      encode_batch: what the pipeline costs on top of the ceiling.

Targets: (a) >= 0.85 x (b) and (a) >= 2 x (c). Besides wall-clock tokens/s (noisy on a shared
machine) each method's CPU-seconds per million tokens is printed (own + children, robust to load).

    python benchmarks/tokenization.py [--mb 50] [--repeats 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def build_corpus(directory: Path, megabytes: float) -> tuple[Path, list[str]]:
    text = SHAKESPEARE.read_text(encoding="utf-8")
    docs = [d for d in text.split("\n\n") if d.strip()]
    copies = max(1, round(megabytes * 1e6 / len(text)))
    corpus = docs * copies
    path = directory / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for doc in corpus:
            handle.write(json.dumps({"text": doc}) + "\n")
    return path, corpus


def train(directory: Path, vocab_size: int) -> Path:
    from synthlm.tokenizers import train_tokenizer

    out = directory / "tokenizer"
    train_tokenizer([SHAKESPEARE], "bpe", vocab_size, out, txt_mode="line", quiet=True)
    return out


def run_ours(
    corpus: Path, tokenizer: Path, out: Path, workers: int, piece_cache: bool = True
) -> tuple[float, int]:
    from synthlm.data.tokenization import tokenize
    from synthlm.tokenizers import load_tokenizer

    start = time.perf_counter()
    tok = load_tokenizer(tokenizer)
    if not piece_cache:
        tok.piece_cache = None  # every document through encode_batch: the pipeline's own overhead
    stats = tokenize([corpus], tok, out, workers=workers, quiet=True, overwrite=True)
    return time.perf_counter() - start, stats["tokens"]["text"]


def run_ceiling(texts: list[str], tokenizer: Path) -> tuple[float, int]:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    start = time.perf_counter()
    encodings = backend.encode_batch(texts, add_special_tokens=False)
    seconds = time.perf_counter() - start
    return seconds, sum(len(e.ids) for e in encodings)


class NeoxEncoder:
    """The per-document worker of GPT-NeoX's preprocess_data.py (its design, our code)."""

    tokenizer = None

    def __init__(self, path: Path) -> None:
        self.path = path

    def initializer(self) -> None:
        from tokenizers import Tokenizer

        NeoxEncoder.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))

    def encode(self, text: str):
        return {"text": [NeoxEncoder.tokenizer.encode(text, add_special_tokens=False).ids]}, len(
            text
        )


def neox_documents(corpus: Path, semaphore):
    """NeoX's reader: the main process parses each JSON line; a semaphore bounds docs in flight."""
    with open(corpus, encoding="utf-8") as lines:
        for line in lines:
            semaphore.acquire()
            yield json.loads(line)["text"]


def run_neox(corpus: Path, tokenizer: Path, out: Path, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    context = multiprocessing.get_context("fork")
    encoder, semaphore = NeoxEncoder(tokenizer), context.Semaphore(10_000 + workers)
    sizes, tokens = [], 0
    with open(out, "wb") as sink, context.Pool(workers, initializer=encoder.initializer) as pool:
        for doc, _ in pool.imap(encoder.encode, neox_documents(corpus, semaphore), 25):
            semaphore.release()
            for ids in doc["text"]:
                array = np.array(ids, dtype=np.uint16)
                sink.write(array.tobytes(order="C"))
                sizes.append(array.size)
                tokens += array.size
    np.array(sizes, dtype=np.int32).tofile(f"{out}.sizes")
    return time.perf_counter() - start, tokens


def cpu_seconds() -> float:
    """User + system CPU of this process, its threads and its finished children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="corpus size in MB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        corpus, texts = build_corpus(work, args.mb)
        tokenizer = train(work, args.vocab_size)
        print(
            f"corpus: {corpus.stat().st_size / 1e6:.1f} MB, {len(texts):,} documents; BPE "
            f"vocab {args.vocab_size}"
        )
        methods = {
            "ceiling": lambda: run_ceiling(texts, tokenizer),
            "ours": lambda: run_ours(corpus, tokenizer, work / "ours", args.workers),
            "nocache": lambda: run_ours(
                corpus, tokenizer, work / "ours", args.workers, piece_cache=False
            ),
            "neox": lambda: run_neox(corpus, tokenizer, work / "neox.bin", args.workers),
        }
        speed: dict[str, list[float]] = {name: [] for name in methods}
        cost: dict[str, list[float]] = {name: [] for name in methods}
        counts: dict[str, int] = {}
        for repeat in range(args.repeats):
            for name, fn in methods.items():
                cpu = cpu_seconds()
                seconds, tokens = fn()
                cpu = cpu_seconds() - cpu
                speed[name].append(tokens / seconds)
                cost[name].append(cpu / tokens * 1e6)
                counts[name] = tokens
                print(
                    f"  repeat {repeat}: {name:8s} {seconds:7.2f} s  "
                    f"{tokens / seconds / 1e6:6.3f} M tokens/s  {cpu / tokens * 1e6:5.2f} "
                    f"CPU-s per M tokens"
                )
        if len(set(counts.values())) != 1:
            raise SystemExit(f"token counts differ between methods: {counts}")
        med = {name: statistics.median(values) for name, values in speed.items()}
        cpu = {name: statistics.median(values) for name, values in cost.items()}
        print(
            f"\nmedians over {args.repeats} repeats ({counts['ours']:,} tokens each):  "
            f"tokens/s | CPU-s per M tokens"
        )
        print(
            f"  (a) synthlm tokenize --workers {args.workers}:    {med['ours'] / 1e6:6.3f} "
            f"M/s | {cpu['ours']:.2f}"
        )
        print(
            f"  (a') the same, piece cache off:        {med['nocache'] / 1e6:6.3f} M/s | "
            f"{cpu['nocache']:.2f}"
        )
        print(
            f"  (b) encode_batch ceiling:              {med['ceiling'] / 1e6:6.3f} M/s | "
            f"{cpu['ceiling']:.2f}"
        )
        print(
            f"  (c) NeoX-style Pool.imap ({args.workers} workers):  "
            f"{med['neox'] / 1e6:6.3f} M/s | {cpu['neox']:.2f}"
        )
        print(
            f"  (a)/(b) = {med['ours'] / med['ceiling']:.2f}  (target >= 0.85);  CPU cost "
            f"(b)/(a) = {cpu['ceiling'] / cpu['ours']:.2f}"
        )
        print(
            f"  (a)/(c) = {med['ours'] / med['neox']:.2f}  (target >= 2);     CPU cost "
            f"(c)/(a) = {cpu['neox'] / cpu['ours']:.2f}"
        )
        print(
            f"  (a')/(b) = {med['nocache'] / med['ceiling']:.2f}  (pipeline overhead "
            f"alone); CPU cost (b)/(a') = {cpu['ceiling'] / cpu['nocache']:.2f}"
        )


if __name__ == "__main__":
    main()
