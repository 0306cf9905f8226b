"""Sampled generation: synthlm's per-row seeded sampler against transformers' own sampling.

synthlm gives every sampled completion its own random stream (Gumbel-max over transformers'
processed scores, one generator per row; ``synthlm.inference.row_sampling``) so a sample does
not depend on the batch. The baseline is the same batched ``model.generate`` call with
transformers' ``do_sample=True`` (one stream for the batch). Both decode the same prompts in the
same batches with the KV cache; only the sampler differs, so the ratio is its cost.

Usage: python benchmarks/sampling.py [--repeats 5] [--prompts 16] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from generate_eval import byte_tokenizer, model

from synthlm.inference.sampling import SamplingConfig, generate_texts


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    lm, tokenizer = model(), byte_tokenizer()
    prompts = [f"prompt number {i}: " for i in range(args.prompts)]
    sampling = SamplingConfig(temperature=0.8, top_k=50, max_new_tokens=args.new_tokens, seed=0)
    batch = len(prompts)

    def ours() -> None:
        list(generate_texts(lm, tokenizer, prompts, sampling, batch_size=batch))

    def transformers_sampling() -> None:
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
        torch.manual_seed(0)
        with torch.no_grad():
            lm.generate(
                **encoded,
                do_sample=True,
                temperature=sampling.temperature,
                top_k=sampling.top_k,
                top_p=1.0,
                max_new_tokens=args.new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )

    ours_s = timed(ours, args.repeats)
    base_s = timed(transformers_sampling, args.repeats)
    tokens = args.prompts * args.new_tokens
    print(f"sampled generation, {args.prompts} prompts x {args.new_tokens} new tokens, one batch")
    print(
        f"  synthlm (per-row seeded Gumbel-max): {ours_s:.3f} s  (<= {tokens / ours_s:,.0f} tok/s)"
    )
    print(
        f"  transformers do_sample=True:         {base_s:.3f} s  (<= {tokens / base_s:,.0f} tok/s)"
    )
    print(f"  ratio synthlm / transformers: {ours_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
