"""Accelerate setup: processes, precision, and what DeepSpeed needs from the run config.

One ``Accelerator`` drives every backend (CPU, DDP, FSDP, DeepSpeed); the launcher
(``accelerate launch`` with a config file, or ``torchrun``) picks the backend, the run config
picks precision and batch split.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from synthlm.errors import ConfigError, UserError
from synthlm.train.config import RunConfig
from synthlm.train.launch_guard import (
    check_deepspeed_launch,
    check_deepspeed_precision,
    check_engine,
    check_precision,
    check_process_count,
    engine_name,
    requested_engine,
)
from synthlm.train.loss_scale import install_loss_scale
from synthlm.train.run_plan import BatchPlan


def cpu_only() -> bool:
    import torch

    return not torch.accelerator.is_available()


def deepspeed_on_cpu() -> bool:
    """A DeepSpeed launch on a machine without an accelerator.

    accelerate drops a DeepSpeed launch to MULTI_CPU when told ``cpu=True``, and finds no
    backend on a CPU machine otherwise (it would count one process and hand
    ``deepspeed.init_distributed`` no backend). DeepSpeed has its own CPU accelerator, so such a
    launch is not forced to the CPU and its processes are joined over gloo explicitly.
    """
    return cpu_only() and requested_engine() == "DEEPSPEED"


def name_cpu_for_deepspeed() -> None:
    """Tell DeepSpeed this machine has no accelerator, which it would find itself: accelerate
    imports DeepSpeed (when installed) at the first checkpoint, and its search printed a
    "[WARNING] ... Setting accelerator to CPU" line to stdout in every CPU run, --quiet too."""
    import os

    if cpu_only():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def force_cpu() -> bool:
    """Whether accelerate must be told ``cpu=True`` (gloo DDP) on this machine."""
    return cpu_only() and not deepspeed_on_cpu()


def backend_kwargs() -> dict[str, str]:
    """``backend='gloo'`` for DeepSpeed without a GPU, else accelerate's own choice."""
    return {"backend": "gloo"} if deepspeed_on_cpu() else {}


def distributed_state() -> Any:
    """Accelerate's process state; refuses a multi-process launch it would not connect.

    Without a GPU, accelerate joins torchrun's processes only when told to use the CPU (gloo);
    otherwise every rank would silently train its own copy into the same run dir.
    """
    from accelerate import PartialState

    check_process_count()
    check_deepspeed_launch()
    state = PartialState(cpu=force_cpu(), **backend_kwargs())
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != state.num_processes:
        raise UserError(
            f"launched {launched} processes (WORLD_SIZE) but accelerate connected "
            f"{state.num_processes}; check the launcher and accelerate config"
        )
    return state


def make_accelerator(cfg: RunConfig, accum: int) -> Any:
    import torch
    from accelerate import Accelerator

    name_cpu_for_deepspeed()
    check_precision(cfg.train.precision)
    # process-wide, so set on every run (a run in the same process after a 'medium' one would
    # otherwise inherit it)
    torch.set_float32_matmul_precision(cfg.train.matmul_precision)
    precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.train.precision]
    # step_scheduler_with_optimizer=False: accelerate would otherwise step the schedule once per
    # process per optimizer step, shortening it by the number of processes.
    accelerator = Accelerator(
        cpu=force_cpu(),
        mixed_precision=precision,
        gradient_accumulation_steps=accum,
        step_scheduler_with_optimizer=False,
    )
    check_engine(accelerator)
    check_fp16_device(accelerator, cfg.train.precision)
    install_loss_scale(accelerator, cfg.train.loss_scale)
    return accelerator


def check_fp16_device(accelerator: Any, precision: str) -> None:
    """fp16 autocast needs an accelerator: on a CPU, accelerate would train in fp32 silently.

    (It enables neither autocast nor a grad scaler there.) DeepSpeed applies its own fp16
    section instead, so only torch engines are checked.
    """
    cpu = accelerator.device.type == "cpu"
    if precision == "fp16" and cpu and engine_name(accelerator) != "DEEPSPEED":
        raise UserError(
            "train.precision: fp16 needs a GPU: on a CPU accelerate has no fp16 autocast and "
            "would train in fp32; use train.precision=bf16 (CPU autocast) or fp32 here, or "
            "DeepSpeed's fp16 mode (examples/accelerate/deepspeed_zero1_fp16.yaml)"
        )


def configure_deepspeed(accelerator: Any, cfg: RunConfig, batch: BatchPlan) -> None:
    """Give DeepSpeed the batch split and clipping it needs in its own config.

    Accelerate derives them from a prepared DataLoader, which we do not use (see batches.py).
    Values the DeepSpeed config already fixes must agree with the run config, precision
    included. DeepSpeed applies the update inside ``backward``, so a non-finite batch cannot be
    skipped there.
    """
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    check_deepspeed_precision(plugin.deepspeed_config, cfg.train.precision)
    check_deepspeed_weights_dtype(plugin.deepspeed_config, cfg)
    if cfg.train.max_bad_steps:
        raise ConfigError(
            "train.max_bad_steps must be 0 under DeepSpeed: it updates inside backward, "
            "so a bad batch cannot be skipped"
        )
    for section, ours in (("optimizer", "optim"), ("scheduler", "schedule")):
        if section in plugin.deepspeed_config:
            raise ConfigError(
                f"the DeepSpeed config has its own '{section}' section, which would replace the "
                f"run's {ours} section; remove it there and set {ours}.* in the run config"
            )
    if cfg.train.loss_scale is not None:
        _set_deepspeed_keys(
            config=plugin.deepspeed_config.setdefault("fp16", {}),
            wanted=cfg.train.loss_scale.deepspeed_fp16(),
            section="fp16.",
            source="train.loss_scale",
        )
    wanted = {
        "train_micro_batch_size_per_gpu": batch.micro,
        "gradient_accumulation_steps": batch.accum,
        "train_batch_size": batch.global_batch,
        "gradient_clipping": cfg.train.clip_grad or 0.0,
    }
    _set_deepspeed_keys(plugin.deepspeed_config, wanted, section="", source="the train section")


def check_deepspeed_weights_dtype(ds_config: dict[str, Any], cfg: RunConfig) -> None:
    """``model.dtype`` other than fp32 promises weights stored and updated in that dtype, which
    DeepSpeed does not do: its ZeRO stages (and its bf16 / fp16 modes at any stage) keep fp32
    master weights, update those and cast the module to the engine's precision, so a bf16
    model trains exactly as an fp32 one would under the same launch (checked on ZeRO-2)."""
    dtype = cfg.model.dtype
    stage = (ds_config.get("zero_optimization") or {}).get("stage", 0)
    if dtype == "fp32" or (stage == 0 and cfg.train.precision == "fp32"):
        return
    raise ConfigError(
        f"model.dtype: {dtype} has no effect under DeepSpeed (ZeRO stage {stage}, "
        f"train.precision {cfg.train.precision}): it keeps fp32 master weights, updates them "
        "and casts the model to its own precision; set model.dtype=fp32 (train.precision: "
        "bf16 gives DeepSpeed's bf16 mode) or launch without DeepSpeed"
    )


def _set_deepspeed_keys(
    config: dict[str, Any], wanted: dict[str, Any], *, section: str, source: str
) -> None:
    """Fill ``wanted`` into a DeepSpeed config where it is absent or 'auto'; refuse a clash."""
    for key, value in wanted.items():
        current = config.get(key, "auto")
        if current != "auto" and current != value:
            raise ConfigError(
                f"the DeepSpeed config sets {section}{key}={current} but this run needs {value} "
                f"(from {source}); set it to 'auto' there or remove it"
            )
        config[key] = value


def engine_record(accelerator: Any, model: Any) -> dict[str, Any]:
    """What a DeepSpeed run really trains with, read back from the prepared engine.

    Written into each checkpoint's ``synthlm.json`` (``engine``) and printed at the start, so a
    run's record shows the ZeRO stage and precision DeepSpeed set up, not the launch config's
    wish. Empty for other engines (their model files do not depend on the process count).
    """
    if getattr(accelerator.state, "deepspeed_plugin", None) is None:
        return {}
    precision = "bf16" if model.bfloat16_enabled() else "fp16" if model.fp16_enabled() else "fp32"
    return {
        "type": "deepspeed",
        "zero_stage": int(model.zero_optimization_stage()),
        "precision": precision,
        "processes": accelerator.num_processes,
    }


# Engines whose every process holds the whole model on its own device anyway (one process, DDP,
# and DeepSpeed's ZeRO stages 1 and 2, which shard optimizer state and gradients but not the
# weights): there the weights can be drawn on that device. FSDP and ZeRO-3 shard the weights
# from a host copy, so a model that fits in host memory but not on one device still starts.
WHOLE_MODEL_ON_DEVICE = ("NO", "MULTI_GPU")


def holds_whole_model(accelerator: Any) -> bool:
    """Whether each process keeps every weight of the model on its own device."""
    name = engine_name(accelerator)
    if name == "DEEPSPEED":
        plugin = getattr(accelerator.state, "deepspeed_plugin", None)
        stage = plugin.deepspeed_config.get("zero_optimization", {}).get("stage") if plugin else 3
        return isinstance(stage, int) and stage < 3  # "auto" or absent: taken as sharded
    return name in WHOLE_MODEL_ON_DEVICE


def init_device(accelerator: Any) -> Any:
    """Where a randomly initialised model is built: the accelerator itself where it can be.

    A model built on the host draws every weight twice on one CPU thread (torch's default
    init, then the architecture's own) and is then copied to the device: a 1.3B Llama takes
    ~24 s on a 2-core host before its first step, and most of a 7B's minutes of start-up. Built
    under ``torch.device(cuda)`` the same draws take well under a second. The weights come from
    the device's generator, seeded from the run's seed: reruns on the same kind of device are
    identical, and a CPU run of the same config draws other (equally distributed) weights.
    """
    import torch

    device = accelerator.device
    if device.type == "cpu" or not holds_whole_model(accelerator):
        return contextlib.nullcontext()
    return torch.device(device)
