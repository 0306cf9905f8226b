"""``synthlm sweep``: one config per grid point, trained in turn or as a SLURM array."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from synthlm.errors import UserError

if TYPE_CHECKING:
    from synthlm.sweep_launch import Outcome


def sweep(
    args: list[str] = typer.Argument(
        ...,
        help="BASE.yaml [MORE.yaml...] then grid axes KEY=V1,V2 (a single value is a "
        "fixed override).",
    ),
    grid: list[str] = typer.Option(
        [],
        "--grid",
        "-g",
        help="A grid axis KEY=V1,V2,... (repeatable; same as a positional KEY=V1,V2).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Sweep folder: configs/, runs/, sweep.json, sweep.slurm."
    ),
    slurm: bool = typer.Option(
        False,
        "--slurm",
        help="Write SWEEPDIR/sweep.slurm (an array job) instead of training locally.",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Write the configs (and the SLURM script with --slurm), train nothing.",
    ),
    # The trainer is a command, not a fixed call, so users can wrap it (`accelerate launch -m
    # synthlm train`, `torchrun ...`) and tests can check the local loop with a stand-in.
    command: str = typer.Option(
        None,
        "--command",
        help="Trainer command; the config path is appended. Default: `python -m synthlm "
        "train` in this environment.",
    ),
    slurm_option: list[str] = typer.Option(
        [],
        "--slurm-option",
        help="Extra #SBATCH line NAME=VALUE, e.g. partition=gpu, time=24:00:00 (repeatable).",
    ),
    slurm_setup: list[str] = typer.Option(
        [],
        "--slurm-setup",
        help="Shell line run before training in each task, e.g. 'source "
        ".venv/bin/activate' (repeatable).",
    ),
    max_parallel: int = typer.Option(
        None, "--max-parallel", min=1, help="SLURM: at most this many array tasks at once."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace a different sweep in --out, and retrain every point from scratch (each "
        "earlier run dir is moved aside to RUN.replaced-DATE, not deleted).",
    ),
    no_validate: bool = typer.Option(
        False,
        "--no-validate",
        help="Skip loading each point with the trainer's config loader (done by default, "
        "before anything is written).",
    ),
) -> None:
    """Write one training config per grid point; run them one after another, or write a SLURM array.

    Example: synthlm sweep base.yaml data.sources.1.weight=0.1,0.2 --grid optim.lr=1e-3,3e-4 --out sweeps/dyck
    Compare afterwards (or while running): synthlm report sweeps/dyck --out sweeps/dyck/report
    """
    from synthlm.config import split_files_and_overrides
    from synthlm.sweep import default_validator, plan_sweep, write_sweep
    from synthlm.sweep_launch import (
        default_command,
        parse_slurm_options,
        run_local,
        write_slurm_script,
    )

    _refuse_slurm_only_flags(slurm, max_parallel, slurm_option, slurm_setup)
    if force and dry_run:
        raise UserError(
            "--force moves every point's earlier run dir aside, which a --dry-run (configs "
            "only) should not; drop one of them (or write the configs to a new --out)"
        )
    files, axes = split_files_and_overrides(args)
    argv = _command(command) if command else default_command()
    options = parse_slurm_options(slurm_option)
    plan = plan_sweep(files, [*grid, *axes], out)
    validator = None if no_validate else default_validator(resume_checks=not force)
    write_sweep(plan, validator=validator, force=force, echo=typer.echo)
    count = len(plan.points)
    typer.echo(f"wrote {count} config{'' if count == 1 else 's'} to {plan.out / 'configs'}")
    if slurm:
        script = write_slurm_script(
            plan, argv, options=options, setup=slurm_setup, max_parallel=max_parallel
        )
        typer.echo(f"wrote {script}; submit with: sbatch {shlex.quote(str(script))}")
    elif not dry_run:
        _report_outcomes(run_local(plan, argv, echo=typer.echo), count)
    typer.echo(
        f"compare with: synthlm report {shlex.quote(str(plan.out))} --out "
        f"{shlex.quote(str(plan.out / 'report'))}"
    )


def _refuse_slurm_only_flags(
    slurm: bool, max_parallel: int | None, options: list[str], setup: list[str]
) -> None:
    """These flags only shape the SLURM script; a local sweep would silently ignore them."""
    given = [
        flag
        for flag, value in (
            ("--max-parallel", max_parallel is not None),
            ("--slurm-option", bool(options)),
            ("--slurm-setup", bool(setup)),
        )
        if value
    ]
    if given and not slurm:
        flags = ", ".join(given)
        raise UserError(f"{flags}: only used with --slurm; add --slurm or drop {flags}")


def _report_outcomes(outcomes: list[Outcome], total: int) -> None:
    """A stopped point ends the sweep with exit 0, as a stopped `synthlm train` does (a
    requeued job resumes it); failed points, and points another trainer holds, exit 1."""
    if outcomes and outcomes[-1].status == "stopped":
        left = total - sum(o.status in ("done", "skipped") for o in outcomes)
        typer.echo(
            f"sweep stopped at {outcomes[-1].point.name}: {left} of {total} points not "
            "finished; run the same command again to resume"
        )
    bad = [o for o in outcomes if o.status in ("failed", "busy")]
    if bad:
        names = ", ".join(f"{o.point.name} ({_why(o)})" for o in bad)
        typer.secho(
            f"error: {len(bad)} of {total} sweep points failed: {names}",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)


def _why(outcome: Outcome) -> str:
    return "in use by another trainer" if outcome.status == "busy" else f"exit {outcome.returncode}"


def _command(text: str) -> list[str]:
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UserError(f"--command {text!r}: {exc}") from None
    if not argv:
        raise UserError(
            "--command: empty; give the trainer command, e.g. 'python -m synthlm train'"
        )
    return argv


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
