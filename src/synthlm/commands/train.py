"""``synthlm train CONFIG... [key=value...]``: train or resume a run from merged YAML configs."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from synthlm.train import RunConfig


def train(
    args: list[str] = typer.Argument(
        ...,
        help="YAML config files (merged in order), then dotted overrides such as optim.lr=3e-4.",
        metavar="CONFIG... [KEY=VALUE...]",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Validate, run every pre-flight check and print the resolved config; train nothing.",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar (metrics still go to RUN/metrics.jsonl)."
    ),
) -> None:
    """Train a decoder-only or T5 model on a natural + synthetic mixture, or on input/target
    pairs (mode ft); resumes automatically.

    eval_only=true scores the latest checkpoint; predict_only=true writes RUN/predictions.jsonl
    (mode ft).

    Runs on one CPU/GPU as is; for DDP, FSDP or DeepSpeed launch it with `accelerate launch -m
    synthlm train ...` or `torchrun -m synthlm train ...`. SIGTERM/SIGUSR1 save a checkpoint and
    exit 0.
    """
    from synthlm.config import split_files_and_overrides
    from synthlm.errors import ConfigError
    from synthlm.train import load_run_config

    files, overrides = split_files_and_overrides(args)
    if not files:
        raise ConfigError("synthlm train: give at least one YAML config file")
    # --quiet is the same as logging.progress=false, so every stage (data prep too) hears it
    config = load_run_config(files, [*overrides, *(["logging.progress=false"] if quiet else [])])
    with _located(files, overrides):
        _preflight(config)
        if dry_run:
            _dry_run(config)
            return
        from synthlm.train import run

        run_dir = run(config, progress=False if quiet else None, freeze_heap=True)
    if os.environ.get("RANK", "0") == "0":  # once per launch, not once per process
        typer.echo(f"run dir: {run_dir}")


@contextlib.contextmanager
def _located(files: list[str], overrides: list[str]) -> Iterator[None]:
    """A config problem found once the config has loaded (a store that is not one, a length
    past the model's positions) names its key; lead it with the files the key came from, as
    the loader's own errors do."""
    from synthlm.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        message = str(exc)
        if any(message.startswith(str(name)) for name in files):
            raise
        where = ", ".join(files) + (" with overrides" if overrides else "")
        raise ConfigError(f"{where}: {message}") from None


def _preflight(config: RunConfig) -> None:
    """Checks that take no time, before the model is built: the run dir can be written, and the
    checkpoint a resume would load has a readable trainer state (else nothing is rewritten)."""
    from synthlm.fileio import check_output
    from synthlm.train.checkpoint import read_state, resolve_resume

    check_output(config.run_dir, kind="dir", what="run_dir")
    checkpoint = resolve_resume(config.run_dir, config.train.resume)
    if checkpoint is not None:
        read_state(checkpoint)


def _dry_run(config: RunConfig) -> None:
    from synthlm.config import dump_yaml
    from synthlm.train import plan_run

    typer.echo(dump_yaml(config), nl=False)
    plan = plan_run(config, int(os.environ.get("WORLD_SIZE", "1")))
    for warning in [*plan.warnings(), *_device_notes(config)]:
        typer.echo(warning, err=True)
    typer.echo("# plan")
    typer.echo(json.dumps(plan.summary(), indent=2))


def _device_notes(config: RunConfig) -> list[str]:
    """What the run itself would refuse on this machine, which a dry run does not launch (a
    login node without GPUs may be planning for a GPU job, so it is a note, not an error)."""
    import torch

    engine_is_deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
    if (
        config.train.precision == "fp16"
        and not torch.cuda.is_available()
        and not engine_is_deepspeed
    ):
        return [
            "note: train.precision fp16 needs a GPU (accelerate has no fp16 autocast on a CPU): "
            "run here, this config would stop before step 0"
        ]
    return []


def register(app: typer.Typer) -> None:
    app.command("train")(train)
