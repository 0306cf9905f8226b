"""T5 pretraining throughput: ``synthlm train`` (span corruption) vs HF ``Seq2SeqTrainer``.

Both trainers run in this process, alternating, on the same T5 (built from the same preset,
overrides and seed), the same corrupted batches (synthlm's ``span_corruption`` collate of the
same mixture windows over tinyshakespeare, byte tokenizer + sentinels: inputs of ``--seq-len``
tokens, targets of the matching T5 length), the same global batch, fp32, the same optimizer
(nanoT5's AdamWScale, handed to the HF trainer) and schedule shape (cosine with warmup), and
gradient clipping at 1.0. Each records the wall time at the end of every optimizer step; the
first ``--warmup`` steps are dropped and the median step time gives input tokens/s, in wall time
and in CPU time of this process (which other jobs on a shared machine disturb far less). The
ratio is the median of the per-repeat ratios. Target: ours / HF >= 1.0.

    python benchmarks/t5.py [--shape reduced|small] [--steps 30] [--repeats 3] [--seq-len 128] [--batch 8]

``--shape small`` is T5-v1.1-small (8+8 layers, d_model 512); ``reduced`` (the default, for a
2-core CPU) keeps its structure at d_model 128, 2+2 layers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from train_timing import build_data, median_step, stamp_callback, time_synthlm

SHAPES = {
    "reduced": (
        "tiny",
        {
            "d_model": 128,
            "d_ff": 256,
            "d_kv": 32,
            "num_heads": 4,
            "num_layers": 2,
            "num_decoder_layers": 2,
        },
    ),
    "small": ("small", {}),
}


def run_config(root: Path, data: dict[str, Path], args: argparse.Namespace, steps: int) -> Any:
    from synthlm.train import load_run_config

    preset, overrides = SHAPES[args.shape]
    return load_run_config(
        [
            {
                "run_dir": str(root / "run0"),
                "seed": 0,
                "model": {"arch": "t5", "preset": preset, "overrides": overrides},
                "data": {
                    "sources": [{"name": "shakespeare", "path": str(data["store"])}],
                    "seq_len": args.seq_len,
                    "tokenizer": str(data["tok"]),
                },
                "objective": {"name": "span_corruption"},
                "optim": {"name": "adamwscale", "lr": 2e-2, "weight_decay": 0.0},
                "schedule": {"name": "cosine", "warmup_steps": 5, "final_lr_ratio": 0.0},
                "train": {
                    "max_steps": steps,
                    "batch_size": args.batch,
                    "log_every": 10,
                    "checkpoint_every": 0,
                    "clip_grad": 1.0,
                },
                "logging": {"tensorboard": False, "progress": False},
            }
        ]
    )


class CorruptedDataset:
    """The batches synthlm trains on, row by row, as Seq2SeqTrainer inputs (labels -100 where
    not a target); collating in ``__getitem__`` keeps the corruption cost on the HF side too."""

    def __init__(self, plan: Any, count: int) -> None:
        self.plan, self.count = plan, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, Any]:
        batch = self.plan.objective.collate([self.plan.mixture.sample(i)])
        return {
            k: batch[k][0] for k in ("input_ids", "attention_mask", "decoder_input_ids", "labels")
        }


def time_hf_trainer(config: Any, root: Path) -> list[tuple[float, float]]:
    """Step-end timestamps of ``Seq2SeqTrainer`` on the same model, batches and optimizer."""
    import torch
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    from synthlm.models import build_model
    from synthlm.train.optim import build_optimizer
    from synthlm.train.planners import plan_run
    from synthlm.train.schedules import build_schedule

    plan = plan_run(config, 1)
    torch.manual_seed(config.seed)
    model = build_model(
        config.model, vocab_size=plan.layout.model_vocab_size, special_ids=plan.special_ids
    )
    optimizer = build_optimizer(model, config.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, build_schedule(config.schedule, plan.total_steps)
    )
    stamps: list[tuple[float, float]] = []

    args = Seq2SeqTrainingArguments(
        output_dir=str(root / "hf"),
        per_device_train_batch_size=config.train.batch_size,
        max_steps=plan.total_steps,
        max_grad_norm=config.train.clip_grad,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=config.seed,
        disable_tqdm=True,
    )
    dataset = CorruptedDataset(plan, plan.total_steps * plan.batch.global_batch)
    Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        optimizers=(optimizer, scheduler),
        callbacks=[stamp_callback(stamps)],
    ).train()
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="reduced")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="Steps dropped from the timing.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each trainer, alternating.")
    parser.add_argument(
        "--seq-len", type=int, default=128, help="Encoder input tokens (after corruption)."
    )
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_data(root)
        warm = run_config(root, data, args, steps=args.warmup + 2).model_copy(
            update={"run_dir": root / "warm"}
        )
        (
            time_synthlm(warm),
            time_hf_trainer(warm, root),
        )  # untimed: first-use costs (imports, allocator) hit neither
        config = run_config(root, data, args, steps=args.steps)
        ours, theirs = [], []
        for repeat in range(args.repeats):  # interleaved, so neither always goes first
            config = config.model_copy(update={"run_dir": root / f"run{repeat}"})
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
    tokens = args.batch * args.seq_len
    preset, overrides = SHAPES[args.shape]
    print(
        f"t5 {args.shape} ({preset} {overrides or 'as published'}), inputs {args.seq_len}, "
        f"batch {args.batch}, fp32, "
        f"{torch.get_num_threads()} threads, {args.steps} steps x {args.repeats} repeats "
        f"(median step after {args.warmup})"
    )
    for clock, k in (("wall", 0), ("CPU", 1)):
        mine, hf = statistics.median(o[k] for o in ours), statistics.median(t[k] for t in theirs)
        ratios = [t[k] / o[k] for o, t in zip(ours, theirs)]
        print(
            f"[{clock:4}] synthlm {tokens / mine:9,.0f} tokens/s ({mine * 1e3:.1f} "
            f"ms/step) | Seq2SeqTrainer {tokens / hf:9,.0f} "
            f"tokens/s ({hf * 1e3:.1f} ms/step) | ratio {statistics.median(ratios):.2f} "
            f"(per repeat {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
