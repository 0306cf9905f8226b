"""2-process DDP on CPU (gloo) trains the same model as one process with the same global batch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import (
    TRAIN_DIR,
    final_weights,
    read_records,
    subprocess_env,
    tiny_config,
    write_config,
)

from synthlm.train import load_run_config, run

pytestmark = pytest.mark.slow
STEPS = 6


@pytest.mark.parametrize(
    ("loss_average", "single_batch"),
    [
        # global batch 8 both ways: 1 process x 8, and 2 processes x 2 sequences x 2 accumulation
        # steps; the token mean does not depend on how the batch is split
        ("tokens", 8),
        # a mean of micro-batch means does, so the single process takes micro-batches of 2 too
        # (x 4 accumulation steps): the same four groups of consecutive samples as the ranks
        ("micro_batch", 2),
    ],
)
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(
    tmp_path, data, loss_average, single_batch
):
    train = {"max_steps": STEPS, "checkpoint_every": 0, "loss_average": loss_average}
    single = write_config(
        tmp_path / "single.yaml",
        tiny_config(
            tmp_path / "single",
            data,
            train={**train, "batch_size": single_batch, "global_batch_size": 8},
        ),
    )
    ddp = write_config(
        tmp_path / "ddp.yaml",
        tiny_config(
            tmp_path / "ddp", data, train={**train, "batch_size": 2, "global_batch_size": 8}
        ),
    )
    out = tmp_path / "ranks"
    out.mkdir()

    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(TRAIN_DIR / "ddp_worker.py"),
            str(ddp),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    assert launched.stdout.count("distributed_type=DistributedType.MULTI_CPU") == 2
    run(load_run_config([single]))  # in this process, one thread like the workers

    ddp_losses = [r["loss"] for r in read_records(tmp_path / "ddp" / "run") if "loss" in r]
    single_losses = [r["loss"] for r in read_records(tmp_path / "single" / "run") if "loss" in r]
    assert len(ddp_losses) == len(single_losses) == STEPS
    torch.testing.assert_close(
        torch.tensor(ddp_losses), torch.tensor(single_losses), rtol=1e-5, atol=1e-6
    )

    rank0, rank1 = (
        load_file(str(out / "rank0.safetensors")),
        load_file(str(out / "rank1.safetensors")),
    )
    reference = final_weights(tmp_path / "single" / "run")
    for name, tensor in rank0.items():
        assert torch.equal(tensor, rank1[name]), f"ranks disagree on {name}"
        torch.testing.assert_close(
            tensor,
            reference[name],
            rtol=1e-4,
            atol=1e-5,
            msg=f"DDP and single process differ on {name}",
        )
