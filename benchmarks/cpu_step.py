"""What makes one CPU training step cheaper: bf16 autocast (where the CPU has native bf16,
e.g. AVX512-BF16 / AMX) and synthlm's fp32 cross-entropy vs the plain HF loss, on small Llamas.

One process, variants alternating per round so load swings hit all of them; the median step
time (forward + backward + fused AdamW) of each, and its ratio to the fp32 HF-loss baseline
(the minimal loop's step: ``model(input_ids, labels=ids).loss``).

    python benchmarks/cpu_step.py [--rounds 5] [--steps 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def step_fn(model, ids, loss_kind: str, bf16: bool):
    from synthlm.objectives.clm import CausalLM

    objective = CausalLM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if loss_kind == "hf":
                loss = model(input_ids=ids, labels=ids).loss
            else:
                losses, targets = objective.token_losses(model, {"input_ids": ids, "labels": ids})
                loss = losses.sum() / targets.sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from synthlm.models import ModelConfig, build_model

    shapes = {
        "width 64, vocab 320": (
            {"hidden_size": 64, "intermediate_size": 176, "num_attention_heads": 4},
            320,
        ),
        "width 256, vocab 320": (
            {"hidden_size": 256, "intermediate_size": 704, "num_attention_heads": 4},
            320,
        ),
        "width 256, vocab 32000": (
            {"hidden_size": 256, "intermediate_size": 704, "num_attention_heads": 4},
            32000,
        ),
    }
    print(
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} "
        f"thread(s), seq 128 x batch 8, "
        f"2 layers, median of {args.rounds} rounds x {args.steps} steps"
    )
    for label, (overrides, vocab) in shapes.items():
        torch.manual_seed(0)
        cfg = ModelConfig(
            arch="llama", preset="tiny", overrides={**overrides, "num_hidden_layers": 2}
        )
        ids = torch.randint(0, vocab, (8, 128))
        variants = {
            (loss, bf16): step_fn(build_model(cfg, vocab_size=vocab), ids, loss, bf16)
            for loss in ("hf", "synthlm")
            for bf16 in (False, True)
        }
        times: dict[tuple[str, bool], list[float]] = {k: [] for k in variants}
        for fn in variants.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for key, fn in variants.items():
                start = time.process_time()
                for _ in range(args.steps):
                    fn()
                times[key].append((time.process_time() - start) / args.steps)
        base = statistics.median(times[("hf", False)])
        cells = [
            f"{loss}{' bf16' if bf16 else ' fp32'} {statistics.median(t) * 1e3:.1f} ms "
            f"({statistics.median(t) / base:.2f}x)"
            for (loss, bf16), t in times.items()
        ]
        print(f"{label:24} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
