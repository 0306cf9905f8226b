"""Launches that would train something other than what they asked for stop before step 0.

The accelerate cases run the real ``accelerate launch`` with the shipped example configs; the
FSDP2 case runs PyTorch's ``fully_shard`` over gloo in two real processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from train_helpers import TRAIN_DIR, subprocess_env, tiny_config, write_config

from synthlm.errors import UserError
from synthlm.train.launch_guard import check_engine, check_precision, check_process_count

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accelerate"


def accelerate_launch(tmp_path: Path, data: dict, *flags: str) -> subprocess.CompletedProcess:
    config = write_config(
        tmp_path / "run.yaml",
        tiny_config(tmp_path, data, train={"max_steps": 2, "checkpoint_every": 0}),
    )
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *flags,
        "-m",
        "synthlm",
        "train",
        str(config),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=subprocess_env(), cwd=tmp_path
    )


@pytest.mark.slow
def test_accelerate_multi_cpu_launch_that_starts_one_process_stops_before_step_0(tmp_path, data):
    done = accelerate_launch(tmp_path, data, "--num_processes", "2", "--cpu")
    assert done.returncode != 0
    assert "asked for several CPU processes but started one" in done.stderr
    assert "torchrun" in done.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_fsdp_launch_config_on_cpu_stops_instead_of_running_ddp(tmp_path, data):
    # --mixed_precision no: the config's bf16 would stop the run first (see the next test)
    flags = (
        "--config_file",
        str(EXAMPLES / "fsdp.yaml"),
        "--num_processes",
        "1",
        "--mixed_precision",
        "no",
    )
    done = accelerate_launch(tmp_path, data, *flags)
    assert done.returncode != 0
    assert "the launch config asks for FSDP but accelerate set up" in done.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_launch_precision_must_match_the_run_config():
    check_precision("bf16", {"ACCELERATE_MIXED_PRECISION": "bf16"})
    check_precision("bf16", {"ACCELERATE_MIXED_PRECISION": "no"})  # the launcher's default
    check_precision("fp32", {})
    with pytest.raises(UserError, match="mixed_precision: bf16 .* train.precision: fp32"):
        check_precision("fp32", {"ACCELERATE_MIXED_PRECISION": "bf16"})
    with pytest.raises(UserError, match="mixed_precision: fp16"):
        check_precision("bf16", {"ACCELERATE_MIXED_PRECISION": "fp16"})


def test_deepspeed_config_that_accelerate_did_not_set_up_is_refused():
    # what accelerate's Accelerator exposes; a real DeepSpeed launch needs deepspeed installed
    env = {"ACCELERATE_USE_DEEPSPEED": "true"}
    check_engine(SimpleNamespace(distributed_type=SimpleNamespace(name="DEEPSPEED")), env)
    with pytest.raises(UserError, match="asks for DEEPSPEED but accelerate set up MULTI_CPU"):
        check_engine(SimpleNamespace(distributed_type=SimpleNamespace(name="MULTI_CPU")), env)


def test_process_count_guard_leaves_real_launches_alone():
    check_process_count({})  # python -m synthlm
    check_process_count(
        {"ACCELERATE_USE_CPU": "True", "ACCELERATE_MIXED_PRECISION": "no"}
    )  # 1 process
    check_process_count(
        {"ACCELERATE_USE_CPU": "False", "MASTER_ADDR": "x", "WORLD_SIZE": "2"}
    )  # torchrun
    check_process_count(
        {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "x", "PMI_SIZE": "2"}
    )  # mpirun
    with pytest.raises(UserError):
        check_process_count({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"})


@pytest.mark.slow
def test_fsdp2_sharded_checkpoint_resumes_exactly_on_cpu(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(TRAIN_DIR / "fsdp2_worker.py"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world"] == 2 and result["sharded"], (
        "parameters were not sharded across the two ranks"
    )
    assert result["resumed"] == result["straight"]  # bit-identical losses after the sharded resume
    assert result["same_weights"]
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()).count(".metadata") == 1
    # the gathered full state dict is a plain HF state dict
    from transformers import AutoModelForCausalLM

    full = torch.load(tmp_path / "full.pt", weights_only=True)
    from synthlm.models import ModelConfig, model_config

    cfg = ModelConfig(
        arch="llama",
        preset="tiny",
        overrides={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2},
    )
    AutoModelForCausalLM.from_config(model_config(cfg, vocab_size=64)).load_state_dict(
        full, strict=True
    )


# -- where a random init is drawn --------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "engine", "zero_stage", "expected"),
    [
        ("cuda:0", "NO", None, "cuda:0"),  # one GPU: drawn there
        ("cuda:1", "MULTI_GPU", None, "cuda:1"),  # DDP: each rank on its own GPU
        ("cuda:0", "FSDP", None, None),  # engines that shard the weights start from a host copy
        ("cuda:0", "DEEPSPEED", 3, None),
        ("cuda:0", "DEEPSPEED", None, None),  # no stage read: taken as sharded
        ("cuda:0", "DEEPSPEED", 1, "cuda:0"),  # ZeRO-1/2 shard optimizer state and gradients,
        ("cuda:1", "DEEPSPEED", 2, "cuda:1"),  # each rank keeps every weight on its GPU
        ("cpu", "NO", None, None),
        ("cpu", "MULTI_CPU", None, None),
        ("cpu", "DEEPSPEED", 2, None),
    ],
)
def test_random_init_is_drawn_on_the_device_only_where_each_process_holds_the_whole_model(
    device, engine, zero_stage, expected
):
    import contextlib

    from accelerate.utils import DistributedType

    from synthlm.train.accel import init_device

    ds_config = {} if zero_stage is None else {"zero_optimization": {"stage": zero_stage}}
    plugin = SimpleNamespace(deepspeed_config=ds_config) if engine == "DEEPSPEED" else None
    accelerator = SimpleNamespace(
        device=torch.device(device),
        distributed_type=DistributedType[engine],
        state=SimpleNamespace(deepspeed_plugin=plugin),
    )  # a stand-in: no CUDA device here; the GPU check builds on a real one
    where = init_device(accelerator)
    if expected is None:
        assert isinstance(where, contextlib.nullcontext)
    else:
        assert where == torch.device(expected)


@pytest.mark.parametrize(
    ("arch", "preset"), [("llama", "tiny"), ("gpt_neox", "14m"), ("t5", "tiny")]
)
def test_a_model_built_under_a_device_puts_every_weight_and_buffer_there(arch, preset):
    """What drawing the init on a GPU relies on: nothing in build_model (presets, finishing
    hooks, checkpointing) pins a tensor to the host. The meta device stands in for the GPU."""
    from synthlm.models import ModelConfig, build_model

    cfg = ModelConfig(arch=arch, preset=preset, gradient_checkpointing=True)
    with torch.device("meta"):
        model = build_model(cfg, vocab_size=160, special_ids={"pad": 0, "eos": 1})
    tensors = [*model.parameters(), *model.buffers()]
    assert tensors and {t.device.type for t in tensors} == {"meta"}
