"""The baseline of benchmarks/train_startup.py: a minimal PyTorch training loop on the same HF
model and the same token store, as a researcher would write it by hand (no config system, no
checkpoints beyond the final save_pretrained, no metrics files).

    python benchmarks/minimal_loop.py STORE_PREFIX OUT_DIR --steps 60 --seq-len 128 --batch 8 --vocab 320
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--vocab", type=int, default=320)
    p.add_argument("--width", type=int, default=64)
    a = p.parse_args()
    torch.manual_seed(0)
    tokens = np.memmap(
        a.store + ".bin", dtype=np.uint16, mode="r"
    )  # the store's ids, read as one stream
    config = LlamaConfig(
        vocab_size=a.vocab,
        hidden_size=a.width,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=176,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(
        model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 5) * 0.5 * (1 + math.cos(math.pi * min(s / a.steps, 1.0)))
    )
    window = a.seq_len * a.batch
    for step in range(a.steps):
        start = (step * window) % (len(tokens) - window)
        ids = torch.from_numpy(np.asarray(tokens[start : start + window], dtype=np.int64)).view(
            a.batch, a.seq_len
        )
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % 10 == 0:
            print(step, loss.item(), flush=True)
    model.save_pretrained(a.out)


if __name__ == "__main__":
    main()
