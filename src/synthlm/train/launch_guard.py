"""Checks that a launch got the processes, engine and precision its launcher asked for.

Launchers fail quietly in ways that matter: ``accelerate launch`` with a multi-CPU config and no
mpirun starts one process instead of N; an FSDP or DeepSpeed accelerate config on a machine
without GPUs becomes plain DDP; a launcher's ``mixed_precision`` is overridden by the run
config. Each of these would train something other than what the user launched, so each stops
the run before step 0 (exit 2) with the fix in the message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from synthlm.errors import UserError

# environment variables set by a launcher that really starts several processes
_RANKED = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def check_process_count(env: Mapping[str, str] = os.environ) -> None:
    """Refuse ``accelerate launch`` runs that asked for several CPU processes but started one.

    accelerate's simple launcher (used for ``distributed_type: MULTI_CPU`` without an mpirun
    hostfile) execs a single process; it sets MASTER_ADDR/MASTER_PORT because more than one
    process was requested, but no WORLD_SIZE or RANK, so nothing else would notice.
    """
    launched_by_accelerate = "ACCELERATE_USE_CPU" in env or "ACCELERATE_MIXED_PRECISION" in env
    if not launched_by_accelerate or "MASTER_ADDR" not in env:
        return
    if any(name in env for name in _RANKED):
        return
    raise UserError(
        "accelerate launch asked for several CPU processes but started one (accelerate runs "
        "multi-CPU configs as a single process unless mpirun is set up); launch CPU processes "
        "with torchrun instead: torchrun --standalone --nproc_per_node N -m synthlm train CONFIG"
    )


def check_deepspeed_launch(env: Mapping[str, str] = os.environ) -> None:
    """A DeepSpeed config needs its launcher: ``accelerate launch`` starts ranks with torchrun
    (LOCAL_RANK set); without one DeepSpeed goes looking for MPI and fails deep inside."""
    if requested_engine(env) == "DEEPSPEED" and "LOCAL_RANK" not in env:
        raise UserError(
            "ACCELERATE_USE_DEEPSPEED is set but no launcher started this process (no "
            "LOCAL_RANK); run: accelerate launch --config_file examples/accelerate/"
            "deepspeed_zero2.yaml -m synthlm train CONFIG"
        )


def requested_engine(env: Mapping[str, str] = os.environ) -> str | None:
    """The sharding engine an accelerate config asked for (``FSDP``/``DEEPSPEED``), if any."""
    for engine in ("FSDP", "DEEPSPEED"):
        if env.get(f"ACCELERATE_USE_{engine}", "false").lower() == "true":
            return engine
    return None


def engine_name(accelerator: Any) -> str:
    """The engine accelerate set up, by its ``DistributedType`` name (``NO``, ``MULTI_GPU``,
    ``FSDP``, ``DEEPSPEED``, ...)."""
    kind = accelerator.distributed_type
    return str(getattr(kind, "name", kind))


def check_engine(accelerator: Any, env: Mapping[str, str] = os.environ) -> None:
    """The engine accelerate actually set up must be the one the launch config named."""
    wanted = requested_engine(env)
    got = engine_name(accelerator)
    if wanted is not None and got != wanted:
        why = " (accelerate supports it on GPUs only)" if wanted == "FSDP" else ""
        raise UserError(
            f"the launch config asks for {wanted} but accelerate set up {got}{why}; this run "
            "would train without sharding. Launch on the devices the config is written for, or "
            "use a DDP config (examples/accelerate/ddp.yaml, or torchrun on CPU)"
        )


def check_precision(run_precision: str, env: Mapping[str, str] = os.environ) -> None:
    """A launcher's ``mixed_precision`` must agree with the run config's ``train.precision``.

    accelerate launch always exports ACCELERATE_MIXED_PRECISION ('no' when the config file has
    no such line), so only an explicit bf16/fp16/fp8 there can conflict with the run config.
    """
    launched = env.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if launched != "no" and launched != _PRECISION[run_precision]:
        raise UserError(
            f"the accelerate launch config sets mixed_precision: {launched} but the run config "
            f"has train.precision: {run_precision}; set train.precision to match "
            f"({ {v: k for k, v in _PRECISION.items()}.get(launched, launched) }) or drop the "
            "mixed_precision line from the launch config"
        )


def deepspeed_precision(ds_config: Mapping[str, Any]) -> str:
    """The precision a DeepSpeed config trains in (``fp16``/``bf16`` sections, else fp32)."""
    for name in ("fp16", "bf16"):
        section = ds_config.get(name) or {}
        if str(section.get("enabled", False)).lower() == "true":
            return name
    return "fp32"


def check_deepspeed_precision(ds_config: Mapping[str, Any], run_precision: str) -> None:
    """DeepSpeed trains in the precision its own config enables, not the run config's.

    accelerate fills only ``auto`` values from ``mixed_precision``, so a DeepSpeed config file
    with ``bf16.enabled: true`` would turn an fp32 run into a bf16 one without a word.
    """
    got = deepspeed_precision(ds_config)
    if got != run_precision:
        source = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE") or "the launch config"
        section = got if got != "fp32" else run_precision  # the one set to false there
        raise UserError(
            f"the DeepSpeed config ({source}) trains in {got} but the run config has "
            f"train.precision: {run_precision}; set the precision there to 'auto' "
            f"({section}.enabled: auto), or set train.precision: {got}"
        )
