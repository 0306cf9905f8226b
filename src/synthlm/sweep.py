"""Grid sweeps: one training config per grid point, run locally in turn or as a SLURM array.

An ablation ("does 20% shuffle-Dyck help?") is a base config plus a few keys that vary. A sweep
writes every point as a complete YAML under ``SWEEPDIR/configs/`` (the base merged with that
point's overrides and a ``run_dir`` of its own under ``SWEEPDIR/runs/``), so each run can be
re-launched, inspected or edited alone, and ``synthlm report SWEEPDIR`` compares them all.

Grid values use the same syntax as ``synthlm train`` overrides (``optim.lr=1e-3,3e-4``); commas
inside brackets or quotes do not split (``model.dims=[1,2],[3,4]`` is two values). Every point
is built and validated with the trainer's config loader before any file is written, so a typo
fails the whole sweep at once instead of at point 7 an hour later; the same goes for the
pre-flight checks of ``synthlm train --dry-run`` (data paths, tokenizer, batch and budget plan),
and for two grid values that parse to one setting (``1e-3`` and ``0.001``).

A point is finished when its run dir holds ``final/`` (the trainer writes it last, and the report
reads it the same way), not when the trainer exits 0: a stop signal (SIGTERM, SIGUSR1) saves a
checkpoint and exits 0 too, and such a point must resume on the next run, locally or when the
array is resubmitted. ``SWEEPDIR/done/`` keeps a dated marker per finished point, for people.
A point whose trainer exits non-zero gets ``SWEEPDIR/failed/<point>.json`` (exit status, time,
where it ran), so ``synthlm report`` can list failures after the terminal or SLURM log is gone;
its next attempt that does not fail (finished, or stopped to resume) removes it.
Launching the points (here, or as a SLURM array) is :mod:`synthlm.sweep_launch`.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthlm import __version__
from synthlm.config import apply_override, deep_merge, dump_yaml, load_yaml, split_override
from synthlm.errors import ConfigError, UserError
from synthlm.fileio import atomic_write_json, atomic_write_text

MANIFEST = "sweep.json"
FAILED_DIR = "failed"  # SWEEPDIR/failed/<point>.json: the point's last attempt failed
SLURM_SCRIPT = "sweep.slurm"
NAME_CHARS = re.compile(r"[^A-Za-z0-9.+-]+")
Validator = Callable[[Sequence[Path], Sequence[str]], Any]


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

    @property
    def finished(self) -> bool:
        """Training writes RUN/final/ last; a trainer stopped by a signal exits 0 without it."""
        return (self.run_dir / "final").is_dir()

    @property
    def digest(self) -> str:
        """What this point trains with, so a rerun notices a base config edited in place."""
        return hashlib.sha256(dump_yaml(self.tree).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Sweep:
    out: Path
    base: tuple[Path, ...]
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]

    def done_marker(self, point: Point) -> Path:
        return self.out / "done" / point.name

    def failure_record(self, point: Point) -> Path:
        """Where a failed attempt at ``point`` is recorded (read by ``synthlm report``)."""
        return self.out / FAILED_DIR / f"{point.name}.json"

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
                    "config_sha256": p.digest,
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
    refuse_duplicates(points, [_setting(p.tree) for p in points])
    return Sweep(out, files, axes, points)


def _setting(tree: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tree.items() if key != "run_dir"}


def refuse_duplicates(points: Sequence[Point], settings: Sequence[Any]) -> None:
    """Two points with equal settings (``1e-3`` and ``0.001``, ``6`` and ``6.0``) would train
    one config twice under two names and plot as two curves that differ only by noise."""
    for first, second in itertools.combinations(range(len(points)), 2):
        if settings[first] == settings[second]:
            a, b = points[first], points[second]
            raise UserError(
                f"grid points {a.name} ({' '.join(a.overrides)}) and {b.name} "
                f"({' '.join(b.overrides)}) are the same config once their values are parsed; "
                f"give each grid value once"
            )


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


def default_validator(*, resume_checks: bool = True) -> Validator:
    """What ``synthlm train --dry-run`` checks, per point: the trainer's config loader (unknown
    keys, wrong types, out-of-range values), the run dir can be written, a checkpoint a resume
    would load is readable, and the run plan (data paths, tokenizer, batch, token budget).
    Planning for one process: a multi-process launch divides the batch further at start-up.
    ``resume_checks=False`` (with --force) skips checkpoints that are about to be moved aside.
    """
    from synthlm.fileio import check_output
    from synthlm.train import load_run_config, plan_run
    from synthlm.train.checkpoint import read_state, resolve_resume

    def check(files: Sequence[Path], overrides: Sequence[str]) -> Any:
        config = load_run_config(list(files), list(overrides))
        check_output(config.run_dir, kind="dir", what="run_dir")
        checkpoint = resolve_resume(config.run_dir, config.train.resume) if resume_checks else None
        if checkpoint is not None:
            read_state(checkpoint)
        plan_run(config, 1)
        return config

    return check


def validate_points(sweep: Sweep, validator: Validator | None) -> None:
    """Check every point before anything is written; points whose resolved configs are equal
    (the trainer's types coerce what the grid parser kept apart) are refused too."""
    if validator is None:
        return
    resolved = []
    for point in sweep.points:
        try:
            config = validator(list(sweep.base), [*point.overrides, f"run_dir={point.run_dir}"])
        except UserError as exc:  # ConfigError, or a path the trainer's checks refuse
            raise ConfigError(
                f"sweep point {point.name} ({' '.join(point.overrides) or 'base'}): {exc}"
            ) from None
        dump = getattr(config, "model_dump", None)
        resolved.append(_setting(dump()) if dump else id(point))  # unknown results never match
    refuse_duplicates(sweep.points, resolved)


def write_sweep(
    sweep: Sweep,
    *,
    validator: Validator | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> Path:
    """Write configs/<point>.yaml for every point and SWEEPDIR/sweep.json; returns the manifest path.

    An existing SWEEPDIR of the *same* sweep is reused (finished points stay finished); one of
    a different sweep, or of this one with a base config since edited, is an error unless
    ``force``, which moves each point's earlier run dir aside so every point trains anew.
    """
    validate_points(sweep, validator)
    _check_existing(sweep, force)
    if force:
        for point in sweep.points:
            _replace_run(sweep, point, echo)
    for point in sweep.points:
        atomic_write_text(
            point.config,
            f"# synthlm sweep point {point.name}: {' '.join(point.overrides) or '(base)'}\n"
            + dump_yaml(point.tree),
        )
    (sweep.out / "runs").mkdir(parents=True, exist_ok=True)
    return atomic_write_json(sweep.out / MANIFEST, sweep.manifest())


def _replace_run(sweep: Sweep, point: Point, echo: Callable[[str], None]) -> None:
    """--force: keep the earlier run (never deleted) but out of the way, so nothing resumes it."""
    sweep.done_marker(point).unlink(missing_ok=True)
    sweep.failure_record(point).unlink(missing_ok=True)  # of the run moved aside, not the next
    if not point.run_dir.exists():
        return
    from synthlm.sweep_launch import point_lock

    with point_lock(sweep, point):  # refuses while a trainer still writes to it
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = point.run_dir.with_name(f"{point.name}.replaced-{stamp}")
        for number in itertools.count(2):
            if not target.exists():
                break
            target = point.run_dir.with_name(f"{point.name}.replaced-{stamp}-{number}")
        point.run_dir.rename(target)
    echo(f"{point.name}: --force: moved its earlier run dir to {target}")


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
    elif not force:
        _refuse_changed_points(sweep, old["points"])


def _refuse_changed_points(sweep: Sweep, old: list[dict[str, Any]]) -> None:
    """Same names and overrides, but a base file edited in place: a started point would resume
    (or a finished one be kept) under a config its weights never saw. Manifests of older
    versions carry no digest, so they cannot be checked."""
    changed = [
        point.name
        for point, entry in zip(sweep.points, old)
        if entry.get("config_sha256", point.digest) != point.digest and point.run_dir.exists()
    ]
    if changed:
        raise UserError(
            f"--out {sweep.out}: the base config changed since {len(changed)} point(s) were "
            f"started ({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}), so their "
            f"runs no longer match their configs; pass --force to retrain every point (earlier "
            f"run dirs are moved aside) or choose a new --out"
        )


def _remove_old_configs(sweep: Sweep, old: dict[str, Any]) -> None:
    """With --force, drop configs the replaced sweep wrote (so the folder matches sweep.json)."""
    current = {p.config for p in sweep.points}
    for entry in old.get("points", []) if isinstance(old.get("points"), list) else []:
        config = Path(entry.get("config", "")) if isinstance(entry, dict) else None
        if config and config.parent == sweep.out / "configs" and config not in current:
            config.unlink(missing_ok=True)
