"""AdamWScale (nanoT5's optimizer): synthlm's two paths, the per-tensor loop and foreach
kernels over all tensors, against nanoT5's loop written out below as the baseline, on the
parameters of real T5 v1.1 shapes, on the device given (cpu, or cuda where there is one).

Per shape: the median step time of each (alternating rounds, one process) and its ratio to the
baseline. synthlm takes the loop on CPU and foreach on a GPU (``foreach: null``), where the
loop's ~10 small kernels per tensor, launched from Python, cost more than they compute.

    python benchmarks/optimizer_step.py [--presets tiny,small,base] [--device cpu] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch


class LoopAdamWScale(torch.optim.Optimizer):
    """The baseline: nanoT5's per-tensor AdamWScale loop (the form synthlm used until now)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        )

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                state["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
                scale = (p.norm(2) / math.sqrt(p.numel())).clamp(min=1e-3)
                p.addcdiv_(state["m"] * (-step_size * scale), state["v"].sqrt().add_(group["eps"]))
                if group["weight_decay"] > 0:
                    p.mul_(1 - group["lr"] * group["weight_decay"])


def parameters(preset: str, device: str) -> list[torch.nn.Parameter]:
    from synthlm.models import ModelConfig, build_model

    torch.manual_seed(0)
    with torch.device(device):  # a random init drawn on a GPU takes a fraction of the host's
        model = build_model(ModelConfig(arch="t5", preset=preset), vocab_size=32128)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return params


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


VARIANTS = ("nanoT5 loop", "synthlm loop", "synthlm foreach")


def make(variant: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    from synthlm.train.adamw_scale import AdamWScale

    if variant == "nanoT5 loop":
        return LoopAdamWScale(params, lr=2e-2)
    return AdamWScale(params, lr=2e-2, foreach=variant.endswith("foreach"))


def compare(preset: str, device: str, rounds: int, steps: int) -> dict:
    """Median seconds per step of each variant, and how far synthlm's two paths ended apart
    (the same start, gradients and number of steps: max |a - b| / max |a| over all tensors)."""
    runs = {}
    for variant in VARIANTS:
        optimizer = make(variant, parameters(preset, device))
        optimizer.step()  # states exist before timing
        runs[variant] = (optimizer, [])
    for _ in range(rounds):
        for optimizer, times in runs.values():
            sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                optimizer.step()
            sync(device)
            times.append((time.perf_counter() - start) / steps)
    loop, foreach = (
        [p.detach() for p in runs[v][0].param_groups[0]["params"]] for v in VARIANTS[1:]
    )
    gap = max(
        float((a - b).abs().max() / a.abs().max().clamp(min=1e-30)) for a, b in zip(loop, foreach)
    )
    return {
        "preset": preset,
        "tensors": len(loop),
        "params_m": round(sum(p.numel() for p in loop) / 1e6, 1),
        "step_ms": {v: round(statistics.median(t) * 1e3, 2) for v, (_, t) in runs.items()},
        "foreach_vs_loop_max_rel_diff": gap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.device}, {args.threads} CPU thread(s)")
    print("| T5 preset | tensors | params | " + " | ".join(VARIANTS) + " | loop vs foreach |")
    print("|---|---|---|" + "---|" * (len(VARIANTS) + 1))
    for preset in args.presets.split(","):
        row = compare(preset, args.device, args.rounds, args.steps)
        base = row["step_ms"]["nanoT5 loop"]
        cells = [f"{ms:.1f} ms ({ms / base:.2f}x)" for ms in row["step_ms"].values()]
        print(
            f"| {preset} | {row['tensors']} | {row['params_m']}M | "
            + " | ".join(cells)
            + f" | {row['foreach_vs_loop_max_rel_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
