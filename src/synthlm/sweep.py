"""Grid sweeps: one training config per grid point, run locally in turn or as a SLURM array.

An ablation ("does 20% shuffle-Dyck help?") is a base config plus a few keys that vary. A sweep
writes every point as a complete YAML under ``SWEEPDIR/configs/`` (the base merged with that
point's overrides and a ``run_dir`` of its own under ``SWEEPDIR/runs/``), so each run can be
re-launched, inspected or edited alone, and ``synthlm report SWEEPDIR`` compares them all.

Grid values use the same syntax as ``synthlm train`` overrides (``optim.lr=1e-3,3e-4``); commas
inside brackets or quotes do not split (``model.dims=[1,2],[3,4]`` is two values). Every point
is built and validated with the trainer's config loader before any file is written, so a typo
fails the whole sweep at once instead of at point 7 an hour later. Finished points leave a
marker in ``SWEEPDIR/done/``, so re-running an interrupted sweep (locally or by resubmitting the
array) skips them.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthlm import __version__
from synthlm.config import apply_override, deep_merge, dump_yaml, load_yaml, split_override
from synthlm.errors import ConfigError, UserError
from synthlm.fileio import atomic_write_json, atomic_write_text

MANIFEST = "sweep.json"
SLURM_SCRIPT = "sweep.slurm"
NAME_CHARS = re.compile(r"[^A-Za-z0-9.+-]+")
SLURM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
Validator = Callable[[Sequence[Path], Sequence[str]], Any]


def default_command() -> list[str]:
    """The real trainer, in this same Python environment."""
    return [sys.executable, "-m", "synthlm", "train"]


@dataclass(frozen=True)
class Axis:
    """One grid dimension: a dotted key and the override texts of its values."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    index: int
    name: str
    overrides: tuple[str, ...]
    config: Path
    run_dir: Path
    tree: dict[str, Any]


@dataclass(frozen=True)
class Sweep:
    out: Path
    base: tuple[Path, ...]
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]

    def done_marker(self, point: Point) -> Path:
        return self.out / "done" / point.name

    def manifest(self) -> dict[str, Any]:
        return {
            "synthlm_version": __version__,
            "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "base": [str(p) for p in self.base],
            "grid": {axis.key: list(axis.values) for axis in self.axes},
            "points": [
                {
                    "name": p.name,
                    "overrides": list(p.overrides),
                    "config": str(p.config),
                    "run_dir": str(p.run_dir),
                }
                for p in self.points
            ],
        }


# ---------------------------------------------------------------------------------------------
# Grid parsing


def split_values(text: str) -> list[str]:
    """Split ``a,[1,2],'x,y'`` on top-level commas only (brackets and quotes nest)."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_axis(item: str) -> Axis:
    """``key=v1,v2`` -> Axis; a single value is a fixed override for every point."""
    parts, text = split_override(item)
    key = ".".join(parts)
    if key == "run_dir":
        raise UserError(
            f"grid {item!r}: run_dir is set by the sweep (SWEEPDIR/runs/<point>); remove it"
        )
    values = split_values(text)
    if any(not v for v in values):
        raise UserError(
            f"grid {item!r}: empty value; expected KEY=V1,V2,... e.g. optim.lr=1e-3,3e-4"
        )
    if len(set(values)) < len(values):
        raise UserError(f"grid {item!r}: a value is repeated; each grid point must differ")
    return Axis(key, tuple(values))


def parse_grid(items: Sequence[str]) -> tuple[Axis, ...]:
    axes = tuple(parse_axis(item) for item in items)
    keys = [a.key for a in axes]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise UserError(
            f"grid key given twice: {', '.join(repeated)}; list all its values in one KEY=V1,V2"
        )
    return axes


# ---------------------------------------------------------------------------------------------
# Planning


def plan_sweep(base: Sequence[str | Path], grid: Sequence[str], out: str | Path) -> Sweep:
    """Every grid point's merged config tree; checks overrides apply, writes nothing."""
    if not base:
        raise UserError("sweep: give at least one base config YAML")
    files = tuple(Path(p).resolve() for p in base)
    tree: dict[str, Any] = {}
    for path in files:
        deep_merge(tree, load_yaml(path), {}, str(path))
    axes = parse_grid(grid)
    out = Path(out).resolve()
    combos = list(itertools.product(*(a.values for a in axes)))
    names = point_names(axes, combos)
    points = tuple(
        _point(i, name, axes, combo, tree, out)
        for i, (name, combo) in enumerate(zip(names, combos))
    )
    return Sweep(out, files, axes, points)


def _point(
    index: int,
    name: str,
    axes: Sequence[Axis],
    combo: Sequence[str],
    base: dict[str, Any],
    out: Path,
) -> Point:
    overrides = tuple(f"{a.key}={v}" for a, v in zip(axes, combo))
    tree = copy.deepcopy(base)
    for override in overrides:
        apply_override(tree, override, {})
    run_dir = out / "runs" / name
    tree["run_dir"] = str(run_dir)
    return Point(index, name, overrides, out / "configs" / f"{name}.yaml", run_dir, tree)


def point_names(axes: Sequence[Axis], combos: Sequence[Sequence[str]]) -> list[str]:
    """``003-weight-0.2_lr-0.001``: index first (sorting, uniqueness), then what varies."""
    varying = [i for i, a in enumerate(axes) if len(a.values) > 1]
    shorts = _short_keys([axes[i].key for i in varying])
    width = max(3, len(str(len(combos) - 1)))
    names = []
    for index, combo in enumerate(combos):
        parts = [f"{short}-{NAME_CHARS.sub('', combo[i])}" for short, i in zip(shorts, varying)]
        names.append("_".join([f"{index:0{width}d}", *parts])[:120].rstrip("_-"))
    return names


def _short_keys(keys: Sequence[str]) -> list[str]:
    """The shortest dotted suffix of each key that no other key shares."""
    parts = [k.split(".") for k in keys]
    shorts = []
    for mine in parts:
        for size in range(1, len(mine) + 1):
            suffix = mine[-size:]
            if sum(other[-size:] == suffix for other in parts) == 1:
                break
        shorts.append(NAME_CHARS.sub("", ".".join(suffix)))
    return shorts


# ---------------------------------------------------------------------------------------------
# Writing


def default_validator() -> Validator:
    """The trainer's own loader, so a point passes exactly when ``synthlm train`` would accept
    its config: unknown keys, wrong types and out-of-range values fail the whole sweep up front."""
    from synthlm.train import load_run_config

    return load_run_config


def validate_points(sweep: Sweep, validator: Validator | None) -> None:
    """Check every point against the training schema before anything is written."""
    if validator is None:
        return
    for point in sweep.points:
        try:
            validator(list(sweep.base), [*point.overrides, f"run_dir={point.run_dir}"])
        except UserError as exc:  # ConfigError, or a path the trainer's checks refuse
            raise ConfigError(
                f"sweep point {point.name} ({' '.join(point.overrides) or 'base'}): {exc}"
            ) from None


def write_sweep(sweep: Sweep, *, validator: Validator | None = None, force: bool = False) -> Path:
    """Write configs/<point>.yaml for every point and SWEEPDIR/sweep.json; returns the manifest path.

    An existing SWEEPDIR of the *same* sweep is reused (finished points stay finished); one of
    a different sweep is an error unless ``force``, which also forgets which points finished.
    """
    validate_points(sweep, validator)
    _check_existing(sweep, force)
    if force:
        for point in sweep.points:
            sweep.done_marker(point).unlink(missing_ok=True)
    for point in sweep.points:
        atomic_write_text(
            point.config,
            f"# synthlm sweep point {point.name}: {' '.join(point.overrides) or '(base)'}\n"
            + dump_yaml(point.tree),
        )
    (sweep.out / "runs").mkdir(parents=True, exist_ok=True)
    return atomic_write_json(sweep.out / MANIFEST, sweep.manifest())


def _check_existing(sweep: Sweep, force: bool) -> None:
    path = sweep.out / MANIFEST
    if sweep.out.exists() and not sweep.out.is_dir():
        raise UserError(f"--out {sweep.out}: exists and is not a directory")
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        same = [(p["name"], p["overrides"]) for p in old["points"]] == [
            (p.name, list(p.overrides)) for p in sweep.points
        ] and old["base"] == [str(p) for p in sweep.base]
    except (ValueError, KeyError, TypeError):
        same = False
    if not same and not force:
        raise UserError(
            f"--out {sweep.out}: already holds a different sweep ({path}); choose another "
            f"--out or pass --force to replace it"
        )
    if not same:
        _remove_old_configs(sweep, old if isinstance(old, dict) else {})


def _remove_old_configs(sweep: Sweep, old: dict[str, Any]) -> None:
    """With --force, drop configs the replaced sweep wrote (so the folder matches sweep.json)."""
    current = {p.config for p in sweep.points}
    for entry in old.get("points", []) if isinstance(old.get("points"), list) else []:
        config = Path(entry.get("config", "")) if isinstance(entry, dict) else None
        if config and config.parent == sweep.out / "configs" and config not in current:
            config.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Launching


def parse_slurm_options(items: Sequence[str]) -> list[tuple[str, str]]:
    """``partition=gpu`` or ``--gpus-per-node=1`` -> ('partition', 'gpu'); array is ours."""
    options = []
    for item in items:
        key, sep, value = item.lstrip("-").partition("=")
        if not SLURM_KEY.match(key):
            raise UserError(
                f"--slurm-option {item!r}: expected NAME=VALUE, e.g. partition=gpu or time=24:00:00"
            )
        if key == "array":
            raise UserError(
                f"--slurm-option {item!r}: the sweep sets --array itself (use "
                f"--max-parallel to limit concurrency)"
            )
        options.append((key, value if sep else ""))
    return options


def slurm_script(
    sweep: Sweep,
    command: Sequence[str],
    options: Sequence[tuple[str, str]] = (),
    setup: Sequence[str] = (),
    max_parallel: int | None = None,
    workdir: Path | None = None,
) -> str:
    """A SLURM array job: task i trains point i; finished points are skipped on resubmission."""
    count = len(sweep.points)
    array = f"0-{count - 1}" + (f"%{max_parallel}" if max_parallel else "")
    given = {key for key, _ in options}
    header = [f"#SBATCH --array={array}"]
    header += [] if "job-name" in given else [f"#SBATCH --job-name={_job_name(sweep)}"]
    header += [] if "output" in given else [f"#SBATCH --output={sweep.out / 'logs'}/%x-%A_%a.out"]
    header += [
        f"#SBATCH --{key}={value}" if value else f"#SBATCH --{key}" for key, value in options
    ]
    configs = "\n".join(f"  {shlex.quote(str(p.config))}" for p in sweep.points)
    names = "\n".join(f"  {shlex.quote(p.name)}" for p in sweep.points)
    done = shlex.quote(str(sweep.out / "done"))
    return f"""#!/bin/bash
# Written by `synthlm sweep` on {dt.date.today()}: {count} grid points, one per array task.
# Submit with: sbatch {shlex.quote(str(sweep.out / SLURM_SCRIPT))}
{chr(10).join(header)}
set -euo pipefail
cd {shlex.quote(str(workdir or Path.cwd()))}
CONFIGS=(
{configs}
)
NAMES=(
{names}
)
TASK=${{SLURM_ARRAY_TASK_ID:?run this script with sbatch (it needs SLURM_ARRAY_TASK_ID)}}
NAME="${{NAMES[$TASK]}}"
CONFIG="${{CONFIGS[$TASK]}}"
if [ -e {done}/"$NAME" ]; then echo "sweep point $NAME already finished; skipping"; exit 0; fi
{chr(10).join(setup)}
echo "sweep point $NAME: $CONFIG"
{shlex.join(command)} "$CONFIG"
mkdir -p {done} && touch {done}/"$NAME"
"""


def _job_name(sweep: Sweep) -> str:
    return "synthlm-" + (NAME_CHARS.sub("", sweep.out.name) or "sweep")


def write_slurm_script(sweep: Sweep, command: Sequence[str], **kwargs: Any) -> Path:
    (sweep.out / "logs").mkdir(parents=True, exist_ok=True)  # SLURM does not create --output dirs
    path = atomic_write_text(sweep.out / SLURM_SCRIPT, slurm_script(sweep, command, **kwargs))
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class Outcome:
    point: Point
    status: str  # "done", "skipped" (finished earlier), "failed"
    returncode: int = 0


def run_local(
    sweep: Sweep,
    command: Sequence[str],
    *,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Train the points one after another; a failed point is reported and the rest still run."""
    outcomes = []
    for point in sweep.points:
        marker = sweep.done_marker(point)
        label = f"[{point.index + 1}/{len(sweep.points)}] {point.name}"
        if marker.exists():
            echo(f"{label}: finished earlier, skipping ({marker})")
            outcomes.append(Outcome(point, "skipped"))
            continue
        argv = [*command, str(point.config)]
        echo(f"{label}: {shlex.join(argv)}")
        code = subprocess.run(argv, check=False).returncode
        if code == 0:
            atomic_write_text(
                marker, dt.datetime.now().astimezone().isoformat(timespec="seconds") + "\n"
            )
        else:
            echo(f"{label}: failed with exit status {code}")
        outcomes.append(Outcome(point, "done" if code == 0 else "failed", code))
    return outcomes
