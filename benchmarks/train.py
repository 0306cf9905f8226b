"""Training throughput: ``synthlm train`` vs the Hugging Face ``Trainer``, and loader headroom.

Both trainers run in this process, one after the other, on the same model (a small Llama or
Pythia built from the same config and seed), the same samples (synthlm's mixture over
tinyshakespeare, byte tokenizer), the same global batch, fp32, AdamW + cosine schedule and
gradient clipping. Each records the wall time at the end of every optimizer step; the first
``--warmup`` steps are dropped and the median step time gives tokens/s, in wall time and in
CPU time of this process (which other jobs on a shared machine disturb far less). The two
alternate for ``--repeats`` runs; the ratio is the median of the per-repeat ratios.
Target: ours / HF >= 1.0.

The loader figure: samples/s that synthlm's data path (mixture sampling + packing + collate,
``num_workers=0``) produces, divided by the samples/s a training step consumes. Target >= 50x.

    python benchmarks/train.py [--arch llama|gpt_neox] [--steps 60] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from train_timing import build_data, median_step, stamp_callback, time_synthlm

SHAPES = {  # tiny, as in the tests: framework overhead is visible next to the math
    "llama": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 176,
    },
    "gpt_neox": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
    },
}


def run_config(root: Path, data: dict[str, Path], args: argparse.Namespace) -> Any:
    from synthlm.train import load_run_config

    return load_run_config(
        [
            {
                "run_dir": str(root / "run0"),
                "seed": 0,
                "model": {
                    "arch": args.arch,
                    "preset": "14m" if args.arch == "gpt_neox" else "tiny",
                    "overrides": SHAPES[args.arch],
                },
                "data": {
                    "sources": [{"name": "shakespeare", "path": str(data["store"])}],
                    "seq_len": args.seq_len,
                    "tokenizer": str(data["tok"]),
                },
                "optim": {"lr": 1e-3, "weight_decay": 0.1},
                "schedule": {"name": "cosine", "warmup_steps": 5},
                "train": {
                    "max_steps": args.steps,
                    "batch_size": args.batch,
                    "log_every": 10,
                    "checkpoint_every": 0,
                    "clip_grad": 1.0,
                },
                "logging": {"tensorboard": False, "progress": False},
            }
        ]
    )


class SampleDataset:
    """The same samples synthlm trains on, as HF-Trainer rows (labels -100 where not a target)."""

    def __init__(self, mixture: Any, count: int) -> None:
        self.mixture, self.count = mixture, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        sample = self.mixture.sample(i)
        labels = np.where(sample.loss_mask.astype(bool), sample.input_ids, -100)
        return {"input_ids": torch.from_numpy(sample.input_ids), "labels": torch.from_numpy(labels)}


def time_hf_trainer(config: Any, root: Path) -> list[tuple[float, float]]:
    """Step-end timestamps of ``transformers.Trainer`` on the same model, samples and optimizer."""
    import torch
    from transformers import Trainer, TrainingArguments

    from synthlm.models import build_model
    from synthlm.train.run_plan import plan_run, special_ids

    plan = plan_run(config, 1)
    torch.manual_seed(config.seed)
    model = build_model(
        config.model,
        vocab_size=plan.layout.model_vocab_size,
        special_ids=special_ids(plan.tokenizer),
    )
    stamps: list[tuple[float, float]] = []

    args = TrainingArguments(
        output_dir=str(root / "hf"),
        per_device_train_batch_size=config.train.batch_size,
        max_steps=plan.total_steps,
        learning_rate=config.optim.lr,
        weight_decay=config.optim.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.95,
        lr_scheduler_type="cosine",
        warmup_steps=config.schedule.warmup_steps,
        max_grad_norm=config.train.clip_grad,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=config.seed,
        disable_tqdm=True,
    )
    dataset = SampleDataset(plan.mixture, plan.total_steps * plan.batch.global_batch)
    Trainer(
        model=model, args=args, train_dataset=dataset, callbacks=[stamp_callback(stamps)]
    ).train()
    return stamps


def loader_samples_per_s(config: Any, steps: int) -> float:
    """Samples/s of synthlm's data path alone: mixture sampling, packing, collate."""
    from synthlm.train.batches import step_batches
    from synthlm.train.run_plan import plan_run

    plan = plan_run(config, 1)
    start = time.perf_counter()
    for _ in step_batches(
        plan.mixture, plan.objective.collate, plan.batch, rank=0, cursor=10_000, steps=steps
    ):
        pass
    return steps * plan.batch.global_batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=sorted(SHAPES), default="llama")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5, help="Steps dropped from the timing.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each trainer, alternating.")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_data(root)
        config = run_config(root, data, args)
        tokens = config.train.batch_size * config.data.seq_len
        ours, theirs = [], []
        short = config.model_copy(
            update={
                "run_dir": root / "warm",
                "train": config.train.model_copy(update={"max_steps": 10}),
            }
        )
        (
            time_synthlm(short),
            time_hf_trainer(short, root),
        )  # untimed: first-use costs (imports, allocator) hit neither
        for repeat in range(args.repeats):  # interleaved, first one then the other, so neither
            config = config.model_copy(
                update={"run_dir": root / f"run{repeat}"}
            )  # always goes first
            runs = [
                ("ours", lambda c=config: time_synthlm(c)),
                ("hf", lambda c=config: time_hf_trainer(c, root)),
            ]
            steps = {
                name: median_step(timer(), args.warmup)
                for name, timer in runs[:: 1 if repeat % 2 == 0 else -1]
            }
            ours.append(steps["ours"])
            theirs.append(steps["hf"])
        loader = loader_samples_per_s(config, steps=50)
    print(
        f"{args.arch}: {SHAPES[args.arch]}, seq {args.seq_len}, batch {args.batch}, fp32, "
        f"{torch.get_num_threads()} threads, "
        f"{args.steps} steps x {args.repeats} repeats (median step after {args.warmup})"
    )
    for clock, k in (("wall", 0), ("CPU", 1)):
        mine, hf = statistics.median(o[k] for o in ours), statistics.median(t[k] for t in theirs)
        ratios = [t[k] / o[k] for o, t in zip(ours, theirs)]
        print(
            f"[{clock:4}] synthlm {tokens / mine:9,.0f} tokens/s ({mine * 1e3:.1f} "
            f"ms/step) | HF Trainer {tokens / hf:9,.0f} "
            f"tokens/s ({hf * 1e3:.1f} ms/step) | ratio {statistics.median(ratios):.2f} "
            f"(per repeat {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    consumed = config.train.batch_size / statistics.median(o[0] for o in ours)
    print(
        f"loader  {loader:,.0f} samples/s vs {consumed:,.1f} consumed per s by training: "
        f"{loader / consumed:,.0f}x (target >= 50x)"
    )


if __name__ == "__main__":
    main()
