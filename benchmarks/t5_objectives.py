"""Encoder-decoder objectives: cost of batch preparation and of DEPTH's hierarchical masks.

Usage: python benchmarks/t5_objectives.py [--repeat 5] [--batch 8] [--seq-len 512]

Side by side, in one process, on tinyshakespeare with a 2k BPE vocabulary:

1. ``span_corruption.collate`` (noise masks, sentinels) against one forward/backward step of a
   small T5 (d_model 128, 2+2 layers) on the same batch: is data preparation a bottleneck?
2. ``depth.collate`` with the default ``pysbd`` splitter against the ``rules`` splitter
   (decode, split, re-encode dominates DEPTH's data side).
3. a DEPTH training step with ``hierarchical_attention`` against the same batch through HF
   T5's own mask path (the baseline): what the three custom 4D masks and the hook cost.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from synthlm.data.mixture import Sample
from synthlm.objectives.depth import Depth
from synthlm.objectives.span_corruption import SpanCorruption
from synthlm.text.special_tokens import TextCodec, add_t5_special_tokens

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def corpus() -> str:
    if CORPUS.is_file():
        return CORPUS.read_text(encoding="utf-8")
    from synthlm.data.corpus import shipped_corpus

    return shipped_corpus().read_text(encoding="utf-8")


def tokenizer(text: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([text], trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False)
    add_t5_special_tokens(hf, num_sentence_tokens=20)
    return hf


def windows(ids: np.ndarray, raw: int, count: int, offset: int) -> list[Sample]:
    out = []
    for i in range(count):
        start = (offset + i) * raw
        out.append(
            Sample(ids[start : start + raw], np.ones(raw, np.uint8), np.zeros(raw, np.int32), 0)
        )
    return out


def median_seconds(fn: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_medians(
    a: Callable[[int], object], b: Callable[[int], object], repeat: int
) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` run alternately, so load changes on a shared machine hit both."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        for fn, out in ((a, times[0]), (b, times[1])):
            start = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def small_t5(vocab: int, pad: int, eos: int):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=vocab,
        d_model=128,
        d_ff=512,
        d_kv=32,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        dropout_rate=0.0,
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=pad,
    )
    torch.manual_seed(0)
    return T5ForConditionalGeneration(config)


def step(objective, model, batch) -> None:
    total, count = objective.loss_sum(model, batch)
    (total / count).backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()
    text = corpus()
    tok = tokenizer(text)
    ids = np.asarray(TextCodec(tok).encode(text), dtype=np.int64)
    b, L, r = args.batch, args.seq_len, args.repeat
    print(f"torch threads: {torch.get_num_threads()}, batch {b}, input length {L}, median of {r}")

    span = SpanCorruption(tokenizer=tok)
    raw = span.window_length(L)
    collate_span = median_seconds(lambda i: span.collate(windows(ids, raw, b, i * b)), r)
    model = small_t5(len(tok), span.pad_id, span.eos_id)
    batch = span.collate(windows(ids, raw, b, 0))
    step(span, model, batch)  # warm-up
    step_span = median_seconds(lambda i: step(span, model, batch), r)
    print(
        f"span_corruption collate {collate_span * 1e3:8.1f} ms/batch  "
        f"({collate_span / b * 1e6:.0f} us/window)"
    )
    print(
        f"T5 train step           {step_span * 1e3:8.1f} ms/batch  collate/step = "
        f"{collate_span / step_span:.3f}"
    )

    pysbd, rules = Depth(tokenizer=tok), Depth(tokenizer=tok, splitter="rules")
    raw_depth = pysbd.window_length(L)
    rules.window_length(L)
    slow, fast = paired_medians(
        lambda i: pysbd.collate(windows(ids, raw_depth, b, i * b)),
        lambda i: rules.collate(windows(ids, raw_depth, b, i * b)),
        r,
    )
    for name, seconds in (("pysbd", slow), ("rules", fast)):
        print(
            f"depth collate ({name:5s}) {seconds * 1e3:8.1f} ms/batch  "
            f"({seconds / b * 1e3:.2f} ms/window)"
        )
    print(f"pysbd / rules = {slow / fast:.1f}x")

    hierarchical, plain = pysbd, Depth(tokenizer=tok, hierarchical_attention=False)
    batch = hierarchical.collate(windows(ids, raw_depth, b, 0))
    step(hierarchical, model, batch)
    with_masks, without = paired_medians(
        lambda i: step(hierarchical, model, batch), lambda i: step(plain, model, batch), r
    )
    print(
        f"depth step hierarchical {with_masks * 1e3:8.1f} ms  HF mask path "
        f"{without * 1e3:8.1f} ms  ratio {with_masks / without:.2f}"
    )


if __name__ == "__main__":
    main()
