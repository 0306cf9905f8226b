"""FSDP2 (``fully_shard``) over gloo on CPU: train, save a sharded checkpoint, resume from it.

Usage: torchrun --nproc_per_node 2 fsdp2_worker.py OUT_DIR. accelerate's FSDP needs GPUs (on
CPU it falls back to DDP, which synthlm refuses), so this drives the same PyTorch pieces
accelerate uses for ``fsdp_version: 2`` with ``SHARDED_STATE_DICT``: ``fully_shard`` per decoder
layer and at the root, ``torch.distributed.checkpoint`` for the sharded model and optimizer
state, and a full state dict gathered for the HF copy, on synthlm's model and optimizer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from synthlm.models import ModelConfig, build_model
from synthlm.train.optim import OptimConfig, build_optimizer

VOCAB = 64


def sharded_model(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        arch="llama",
        preset="tiny",
        overrides={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2},
    )
    model = build_model(cfg, vocab_size=VOCAB)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    return model, build_optimizer(model, OptimConfig(lr=3e-3))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> float:
    ids = torch.randint(
        0, VOCAB, (4, 16), generator=torch.Generator().manual_seed(1000 * step + dist.get_rank())
    )
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    total = loss.detach().clone()
    dist.all_reduce(total)
    return total.item() / dist.get_world_size()


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model, optimizer = sharded_model(seed=0)
    weight = model.model.layers[0].mlp.up_proj.weight
    sharded = isinstance(weight, DTensor) and weight.to_local().numel() < weight.numel()
    first = [train_step(model, optimizer, s) for s in range(3)]
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(out / "sharded"))
    straight = [train_step(model, optimizer, s) for s in range(3, 6)]
    final = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )

    resumed_model, resumed_optim = sharded_model(
        seed=1
    )  # other weights: the load must replace them
    model_sd, optim_sd = get_state_dict(resumed_model, resumed_optim)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(out / "sharded"))
    set_state_dict(
        resumed_model,
        resumed_optim,
        model_state_dict=state["model"],
        optim_state_dict=state["optim"],
    )
    resumed = [train_step(resumed_model, resumed_optim, s) for s in range(3, 6)]
    resumed_final = get_model_state_dict(
        resumed_model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if rank == 0:
        same = all(torch.equal(final[k], resumed_final[k]) for k in final)
        result = {
            "sharded": sharded,
            "first": first,
            "straight": straight,
            "resumed": resumed,
            "same_weights": same,
            "world": dist.get_world_size(),
        }
        (out / "result.json").write_text(json.dumps(result))
        torch.save({k: v for k, v in final.items()}, out / "full.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
