"""DeepSpeed ZeRO-2 trains for real on CPU: two processes over gloo, launched by the real
``accelerate launch`` with the shipped ``examples/accelerate/deepspeed_zero2.yaml``.

What would go wrong quietly is checked against DeepSpeed's own output and an independent run:
the engine must be DeepSpeed with ZeRO stage 2 (read back from the engine into ``synthlm.json``,
and DeepSpeed's checkpoint holds one optimizer shard per rank); its losses must equal plain DDP's
on the same config (DeepSpeed owns clipping and accumulation, so a wrong hand-over would show);
and a run resumed from a ZeRO checkpoint must continue with the same losses and weights.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from train_helpers import (
    deepspeed_accelerator,
    final_weights,
    read_records,
    tiny_config,
    write_config,
)

from deepspeed_helpers import (
    assert_engine,
    launch,
    needs_deepspeed,
    require_deepspeed_cpu_fp16,
    require_deepspeed_cpu_op,
    shipped,
)
from deepspeed_helpers import zero2 as zero2_launch
from synthlm.config import validate
from synthlm.errors import ConfigError, UserError
from synthlm.train.launch_guard import (
    check_deepspeed_launch,
    check_deepspeed_precision,
    deepspeed_precision,
)

# accumulation 2 and a clip below the gradient norm (about 0.7 here): both are DeepSpeed's job
TRAIN = {
    "max_steps": 4,
    "batch_size": 2,
    "grad_accum": 2,
    "clip_grad": 0.5,
    "checkpoint_every": 2,
    "keep_last": 2,
}


def zero2(config: Path) -> None:
    # the shipped config is bf16 for GPUs; this run is fp32 (exact comparisons)
    zero2_launch(config, "no")


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_records(run_dir) if "loss" in r]


@pytest.mark.slow
@needs_deepspeed
def test_zero2_on_cpu_trains_like_ddp_and_resumes_exactly(tmp_path, data):
    require_deepspeed_cpu_op()
    config = tiny_config(tmp_path, data, train=TRAIN)
    zero2(write_config(tmp_path / "zero2.yaml", config))
    run = tmp_path / "run"

    assert_engine(run, 2, "fp32")
    shards = sorted(p.name for p in (run / "checkpoints" / "step-4" / "trainer").rglob("*.pt"))
    assert shards == [
        "mp_rank_00_model_states.pt",
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",  # ZeRO: the optimizer state is split
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    zero = losses(run)
    assert len(zero) == 4 and all(math.isfinite(x) for x in zero) and zero[-1] < zero[0]

    ddp_dir = tmp_path / "ddp"
    ddp = tiny_config(ddp_dir, data, train=TRAIN)
    launch(
        write_config(tmp_path / "ddp.yaml", ddp),
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    )
    assert zero == pytest.approx(losses(ddp_dir / "run"), rel=1e-5)

    # resume from step 2 (DeepSpeed's sharded checkpoint) in a copy of the run
    again = tmp_path / "again"
    shutil.copytree(run, again / "run")
    shutil.rmtree(again / "run" / "checkpoints" / "step-4")
    shutil.rmtree(again / "run" / "final")
    zero2(write_config(tmp_path / "again.yaml", tiny_config(again, data, train=TRAIN)))
    assert losses(again / "run") == zero
    resumed, straight = final_weights(again / "run"), final_weights(run)
    assert all(resumed[k].equal(straight[k]) for k in straight)


@pytest.mark.slow
@needs_deepspeed
def test_micro_batch_averaging_under_zero2_equals_ddp(tmp_path, data):
    """train.loss_average: micro_batch hands DeepSpeed, which scales each backward by its own
    accumulation count, the same per-micro-batch factors as accelerate's DDP path: the losses
    and the final weights of the two launches agree (the data's loss masks give the
    micro-batches different target counts, so a wrong factor would show)."""
    import torch

    require_deepspeed_cpu_op()
    train = {**TRAIN, "loss_average": "micro_batch", "checkpoint_every": 0}
    zero2(write_config(tmp_path / "zero2.yaml", tiny_config(tmp_path / "z", data, train=train)))
    launch(
        write_config(tmp_path / "ddp.yaml", tiny_config(tmp_path / "d", data, train=train)),
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    )
    zero, ddp = tmp_path / "z" / "run", tmp_path / "d" / "run"
    assert losses(zero) == pytest.approx(losses(ddp), rel=1e-5)
    theirs = final_weights(ddp)
    for name, tensor in final_weights(zero).items():
        torch.testing.assert_close(tensor, theirs[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
@needs_deepspeed
def test_pythias_fp16_mode_runs_under_the_shipped_zero1_config(tmp_path, data):
    """Pythia trained in DeepSpeed's fp16 mode under ZeRO-1 (GPT-NeoX's pythia-*.yml): the
    shipped deepspeed_zero1_fp16.yaml gives that engine, and what DeepSpeed saved shows it
    ran so: fp16 weights, fp32 master partitions, and its own loss scaler holding Pythia's
    settings, handed over from train.loss_scale."""
    import torch

    require_deepspeed_cpu_op()
    require_deepspeed_cpu_fp16()
    loss_scale = {"initial": 4096, "window": 1000, "hysteresis": 2, "min": 1}  # pythia-160m.yml
    config = tiny_config(
        tmp_path,
        data,
        model={"arch": "gpt_neox", "preset": "14m", "overrides": {"num_hidden_layers": 2}},
        train={**TRAIN, "precision": "fp16", "loss_scale": loss_scale, "checkpoint_every": 0},
    )
    shipped(write_config(tmp_path / "pythia.yaml", config), "deepspeed_zero1_fp16.yaml")
    run = tmp_path / "run"
    assert_engine(run, 1, "fp16")
    saved = run / "checkpoints" / "step-4" / "trainer" / "pytorch_model"
    # DeepSpeed's own pickles (written by this test's run): weights_only cannot read them
    model = torch.load(saved / "mp_rank_00_model_states.pt", weights_only=False)["module"]
    assert {t.dtype for t in model.values()} == {torch.float16}
    state = torch.load(saved / "zero_pp_rank_0_mp_rank_00_optim_states.pt", weights_only=False)
    optimizer = state["optimizer_state_dict"]
    assert {t.dtype for t in optimizer["single_partition_of_fp32_groups"]} == {torch.float32}
    scaler = optimizer["loss_scaler"]
    assert type(scaler).__name__ == "DynamicLossScaler"
    assert (scaler.cur_scale, scaler.scale_window, scaler.delayed_shift, scaler.min_scale) == (
        4096,
        1000,
        2,
        1,
    )
    assert all(math.isfinite(x) for x in losses(run))


def test_deepspeed_precision_must_match_the_run_config():
    # accelerate fills only 'auto': a DeepSpeed config file enabling bf16 would win silently
    assert deepspeed_precision({}) == "fp32"
    assert deepspeed_precision({"bf16": {"enabled": True}, "fp16": {"enabled": False}}) == "bf16"
    assert deepspeed_precision({"fp16": {"enabled": "true"}}) == "fp16"
    check_deepspeed_precision({"bf16": {"enabled": False}}, "fp32")
    with pytest.raises(UserError, match="trains in bf16 but the run config has train.precision"):
        check_deepspeed_precision({"bf16": {"enabled": True}}, "fp32")


def test_deepspeed_config_without_its_launcher_is_refused():
    check_deepspeed_launch({"ACCELERATE_USE_DEEPSPEED": "true", "LOCAL_RANK": "0"})
    check_deepspeed_launch({})
    with pytest.raises(UserError, match="no launcher started this process"):
        check_deepspeed_launch({"ACCELERATE_USE_DEEPSPEED": "true"})


@pytest.mark.parametrize("section, ours", [("optimizer", "optim"), ("scheduler", "schedule")])
def test_a_deepspeed_config_with_its_own_optimizer_or_schedule_is_refused(tmp_path, section, ours):
    from synthlm.train.accel import configure_deepspeed
    from synthlm.train.config import RunConfig
    from synthlm.train.run_plan import BatchPlan

    config = validate(
        RunConfig,
        {
            "run_dir": str(tmp_path),
            "data": {"sources": [{"name": "a", "path": str(tmp_path)}]},
            "train": {"max_steps": 1},
        },
    )
    ds = {section: {"type": "AdamW", "params": {"lr": 1e-3}}}
    with pytest.raises(ConfigError, match=f"own '{section}' section.*{ours}"):
        configure_deepspeed(deepspeed_accelerator(ds), config, BatchPlan(8, 1, 1))
