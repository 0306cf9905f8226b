"""Read run directories (config, metrics, eval result files) into columns ready to plot.

A report must work while training is still writing, so reading is forgiving where a live run
is legitimately incomplete (a torn last line, no metrics yet, no eval files) and strict only
where the user pointed at the wrong thing (a path that is not a run at all).

Metrics are turned into one column per numeric key as soon as they are read, because every
plot and table asks "give me key K over tokens", never "give me record R". A run resumed from
an older checkpoint logs some steps twice; for each key the later records win, so curves never
zigzag back in time.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from synthlm.config import yaml_error
from synthlm.errors import UserError
from synthlm.report.interrupts import interrupts_kept
from synthlm.sweep import FAILED_DIR as SWEEP_FAILED
from synthlm.sweep import MANIFEST as SWEEP_MANIFEST

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
EVAL_DIR = "eval"
AXIS_KEYS = ("step", "tokens")


@dataclass(frozen=True)
class Column:
    """One metric over time: parallel arrays, ordered as logged, superseded points removed."""

    steps: np.ndarray
    tokens: np.ndarray  # NaN where a record had no token count
    values: np.ndarray

    @property
    def final(self) -> float:
        return float(self.values[-1])

    def x(self, axis: str) -> np.ndarray:
        return self.tokens if axis == "tokens" else self.steps


@dataclass
class Run:
    """Everything the report needs from one run directory."""

    path: Path
    config: dict[str, Any]
    columns: dict[str, Column]
    results: dict[str, dict[str, float]]  # eval/<file stem>.json -> flat numeric metrics
    bad_lines: int = 0  # unparseable lines other than a torn last line
    updated: float | None = None  # mtime of metrics.jsonl
    source_kinds: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def finished(self) -> bool:
        """Training writes RUN/final/ last, so its presence means the run completed."""
        return (self.path / "final").is_dir()

    def last(self, key: str) -> float | None:
        column = self.columns.get(key)
        return column.final if column is not None and len(column.values) else None

    def max_steps(self) -> int | None:
        value = (
            self.config.get("train", {}).get("max_steps")
            if isinstance(self.config.get("train"), dict)
            else None
        )
        return value if isinstance(value, int) and value > 0 else None

    def kind_of(self, name: str) -> str:
        """'natural' or 'synthetic' for a source or eval-set name (unknown names count as natural)."""
        return self.source_kinds.get(name, "natural")

    def status(self, now: float | None = None) -> str:
        if self.finished:
            return "finished"
        if not self.columns:
            return "no metrics yet"
        age = (
            ""
            if self.updated is None
            else f", last record {_age((now or time.time()) - self.updated)} ago"
        )
        return f"in progress{age}"


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---------------------------------------------------------------------------------------------
# Finding runs


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or (path / METRICS_FILE).is_file())


def expand_run_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Run dirs as given; a sweep dir or a folder of runs expands to the runs inside it."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"{path}: no such run directory")
        found.extend(_runs_in(path))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise UserError("no runs given")
    return unique


def _runs_in(path: Path) -> list[Path]:
    if is_run_dir(path):
        return [path]
    if (path / SWEEP_MANIFEST).is_file():
        return _sweep_runs(path)
    children = sorted(p for p in path.iterdir() if is_run_dir(p)) if path.is_dir() else []
    if not children and (path / "runs").is_dir():
        children = sorted(p for p in (path / "runs").iterdir() if is_run_dir(p))
    if not children:
        raise UserError(
            f"{path}: not a run directory (expected {CONFIG_FILE} or {METRICS_FILE} in it), "
            "nor a sweep dir or a folder of run directories"
        )
    return children


def _sweep_runs(path: Path) -> list[Path]:
    points = sweep_points(path)
    started = [p.run_dir for p in points if p.has_run]
    if not started:
        failed = [p for p in points if p.state == FAILED]
        why = f"; {len(failed)} failed: {failure_list(failed)}" if failed else ""
        raise UserError(
            f"{path}: sweep of {len(points)} runs, none started yet (no {CONFIG_FILE} or "
            f"{METRICS_FILE} in {path / 'runs'}){why}"
        )
    return started


# states of a sweep point, as far as the sweep dir tells them
NOT_STARTED = "not started"
STARTED = "started"  # running, or stopped without finishing (to resume)
FINISHED = "finished"  # RUN/final/, written last by the trainer (as the sweep itself judges)
FAILED = "failed"  # its last attempt exited non-zero (SWEEPDIR/failed/<point>.json), no final/
GONE = "run dir missing"  # a done/<point> marker, but its run dir was moved or deleted since


@dataclass(frozen=True)
class SweepPoint:
    """One grid point of a sweep, started or not: a report must not drop the ones not begun."""

    name: str
    run_dir: Path
    config: Path | None
    state: str
    exit_status: int | None = None  # FAILED: the trainer's, when the record says
    failed_at: str | None = None  # FAILED: when, as the record says

    @property
    def has_run(self) -> bool:
        """Whether there is a run to show (a failed point may have died before writing one)."""
        return self.state in (STARTED, FINISHED) or (
            self.state == FAILED and is_run_dir(self.run_dir)
        )

    def outcome(self) -> str:
        """``exit 3``, ``killed by signal 9``; "" unless the point failed."""
        if self.state != FAILED:
            return ""
        if self.exit_status is None:
            return "exit status unknown"
        if self.exit_status < 0:  # Popen's way of saying a signal ended it
            return f"killed by signal {-self.exit_status}"
        return f"exit {self.exit_status}"

    def to_dict(self) -> dict[str, Any]:
        config = None if self.config is None else str(self.config)
        return {
            "name": self.name,
            "state": self.state,
            "run_dir": str(self.run_dir),
            "config": config,
            "exit_status": self.exit_status,
            "failed_at": self.failed_at,
        }


@dataclass(frozen=True)
class Sweep:
    """A sweep dir named on the command line and every point its manifest lists."""

    path: Path
    points: list[SweepPoint]

    def named(self, state: str) -> list[SweepPoint]:
        return [p for p in self.points if p.state == state]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "points": [p.to_dict() for p in self.points],
            "not_started": [p.name for p in self.named(NOT_STARTED)],
            "failed": [
                {"name": p.name, "exit_status": p.exit_status, "failed_at": p.failed_at}
                for p in self.named(FAILED)
            ],
        }


def failure_list(points: Sequence[SweepPoint]) -> str:
    """``000_lr-1e-3 (exit 3), 001_lr-2e-3 (killed by signal 9)``."""
    return ", ".join(f"{p.name} ({p.outcome()})" for p in points)


def find_sweeps(paths: Sequence[str | Path]) -> list[Sweep]:
    """The sweep dirs among ``paths`` (SWEEPDIR/sweep.json), with the state of each point."""
    sweeps = []
    for raw in paths:
        path = Path(raw)
        if not is_run_dir(path) and (path / SWEEP_MANIFEST).is_file():
            sweeps.append(Sweep(path.resolve(), sweep_points(path)))
    return sweeps


def sweep_points(path: Path) -> list[SweepPoint]:
    """Every point of the sweep at ``path``: finished (RUN/final/), failed (its last attempt,
    as SWEEPDIR/failed/ records it), started (a run dir with a config or metrics), or not
    started; relative paths are taken from the sweep dir."""
    manifest = _read_json(path / SWEEP_MANIFEST)
    entries = manifest.get("points", []) if isinstance(manifest, dict) else []
    points = []
    for entry in entries:
        if not isinstance(entry, dict) or "run_dir" not in entry:
            continue
        run_dir = _in_sweep(path, entry["run_dir"])
        name = str(entry.get("name") or run_dir.name)
        config = _in_sweep(path, entry["config"]) if entry.get("config") else None
        points.append(_sweep_point(path, name, run_dir, config))
    return points


def _sweep_point(sweep: Path, name: str, run_dir: Path, config: Path | None) -> SweepPoint:
    """A finished run wins over a failure record (a later attempt finished, or the record
    outlived a run that finished anyway); otherwise the record says the point failed."""
    state = _point_state(sweep, name, run_dir)
    record = sweep / SWEEP_FAILED / f"{name}.json"
    if state == FINISHED or not record.is_file():
        return SweepPoint(name, run_dir, config, state)
    status, when = _failure(record)
    return SweepPoint(name, run_dir, config, FAILED, status, when)


def _failure(record: Path) -> tuple[int | None, str | None]:
    """(exit status, time) of a failure record; (None, None) where it cannot be read: the
    file's presence alone says the point failed."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    status = data.get("exit_status")
    when = data.get("time")
    return (
        status if isinstance(status, int) and not isinstance(status, bool) else None,
        when if isinstance(when, str) else None,
    )


def _in_sweep(sweep: Path, raw: str) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else sweep / path


def _point_state(sweep: Path, name: str, run_dir: Path) -> str:
    if not is_run_dir(run_dir):
        return GONE if (sweep / "done" / name).exists() else NOT_STARTED
    return FINISHED if (run_dir / "final").is_dir() else STARTED


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Reading one run


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Load every run named (sweep dirs and folders of runs expanded), in the order given."""
    runs = [load_run(path) for path in expand_run_paths(paths)]
    align_config_defaults(runs)
    return runs


def align_config_defaults(runs: Sequence[Run]) -> None:
    """Fill each run's config sections with their defaults when the runs list different keys.

    A run saved by an older synthlm lacks the keys added since (``model.init``, the objective's
    options before 2026-12-01), and a missing key would read as a difference from a newer run
    that lists its default. Each section is validated alone and written back with every
    default, only when the runs' keys differ (the config code imports torch-free pydantic
    models; the objective's, torch); a section that no longer validates is left as written.
    """
    from synthlm.report.diff import flatten

    if len({frozenset(flatten(r.config)) for r in runs if r.config}) <= 1:
        return
    sections = _section_models()
    for run in runs:
        for name, model in sections.items():
            section = run.config.get(name)
            if isinstance(section, dict):
                # one call at a time: after a swallowed interrupt the next call would import
                # the half-initialised torch again (a crash), so the interrupt is raised here
                with interrupts_kept():
                    run.config[name] = _with_defaults(model, section)


def _section_models() -> dict[str, Any]:
    """Config section name -> its pydantic model (``RunConfig``'s section fields)."""
    from pydantic import BaseModel

    from synthlm.train.config import RunConfig

    out = {}
    for name, info in RunConfig.model_fields.items():
        for candidate in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                out[name] = candidate
    return out


def _with_defaults(model: Any, section: dict[str, Any]) -> dict[str, Any]:
    """``section`` with its defaults, or as written when it no longer validates.

    The ``ValueError`` caught includes pydantic's wrapping of anything a serializer raised, a
    Ctrl-C or SIGTERM too: call this inside :func:`~synthlm.report.interrupts.interrupts_kept`.
    """
    from pydantic import ValidationError

    from synthlm.errors import ConfigError

    try:
        return model.model_validate(section).model_dump(mode="json")
    except (ValidationError, ConfigError, ValueError, OSError):
        return section


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not is_run_dir(path):
        raise UserError(
            f"{path}: not a run directory (expected {CONFIG_FILE} or {METRICS_FILE} in it)"
        )
    config = read_config(path / CONFIG_FILE)
    metrics = path / METRICS_FILE
    columns, bad = read_metrics(metrics) if metrics.is_file() else ({}, 0)
    return Run(
        path=path,
        config=config,
        columns=columns,
        results=read_results(path / EVAL_DIR),
        bad_lines=bad,
        updated=metrics.stat().st_mtime if metrics.is_file() else None,
        source_kinds=source_kinds(config),
    )


def read_config(path: Path) -> dict[str, Any]:
    """The resolved config, or {} while a run has not written it yet."""
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(yaml_error(path, exc)) from None
    return data if isinstance(data, dict) else {}


def read_metrics(path: Path) -> tuple[dict[str, Column], int]:
    """Columns from a metrics.jsonl and the number of bad lines (a torn last line is not bad).

    The trainer appends one line per log step; if we read while it writes, the last line may
    be cut mid-object. That is expected and silent. A bad line elsewhere means damage worth
    mentioning, but still not worth refusing to draw everything else.

    Long runs log hundreds of thousands of lines and reports are rebuilt every few seconds
    with ``--watch``, so well-formed files go through pyarrow's C++ JSON reader; anything it
    refuses (a damaged line, a key whose type changes) takes the tolerant pure-Python path.
    """
    data = path.read_bytes()
    complete, _, tail = data.rpartition(b"\n")
    if not complete.strip() and not tail.strip():
        return {}, 0
    if not _is_record(tail):
        with interrupts_kept():  # pyarrow's first to_numpy imports pandas and drops a Ctrl-C
            fast = _arrow_columns(complete)
        if fast is not None:
            return fast, 0
    records, bad = read_records(data)
    return to_columns(records), bad


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _arrow_columns(data: bytes) -> dict[str, Column] | None:
    import pyarrow as pa
    import pyarrow.json as pa_json

    try:
        table = pa_json.read_json(io.BytesIO(data))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    numeric = {
        name: table.column(name)
        for name in table.column_names
        if _arrow_numeric(table.schema.field(name).type)
    }
    rows = np.arange(table.num_rows, dtype=np.float64)
    steps = _floats(numeric.pop("step")) if "step" in numeric else np.full(table.num_rows, np.nan)
    steps = np.where(np.isnan(steps), rows, steps)
    tokens = (
        _floats(numeric.pop("tokens")) if "tokens" in numeric else np.full(table.num_rows, np.nan)
    )
    columns = {}
    for name, column in numeric.items():
        values = _floats(column)
        keep = np.isfinite(values)
        if keep.any():
            columns[name] = make_column(steps[keep], tokens[keep], values[keep])
    return columns


def _arrow_numeric(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _floats(column: Any) -> np.ndarray:
    return column.cast("float64").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def read_records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Parsed records and the number of unparseable lines, not counting a torn final line."""
    lines = data.split(b"\n")
    records: list[dict[str, Any]] = []
    bad = 0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad += index < len(lines) - 1
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, bad


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def to_columns(records: Iterable[Mapping[str, Any]]) -> dict[str, Column]:
    """One :class:`Column` per numeric key (x axes excluded), superseded points dropped."""
    raw: dict[str, list[tuple[float, float, float]]] = {}
    for position, record in enumerate(records):
        step = _numeric(record.get("step"))
        tokens = _numeric(record.get("tokens"))
        step = float(position) if step is None else step
        tokens = math.nan if tokens is None else tokens
        for key, value in record.items():
            number = _numeric(value)
            if number is not None and key not in AXIS_KEYS:
                raw.setdefault(key, []).append((step, tokens, number))
    columns = {}
    for key, points in raw.items():
        array = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        columns[key] = make_column(array[:, 0], array[:, 1], array[:, 2])
    return columns


def make_column(steps: np.ndarray, tokens: np.ndarray, values: np.ndarray) -> Column:
    """Keep only points logged before every later one: after a resume the later records win."""
    backwards = steps[::-1]
    earliest_later = np.minimum.accumulate(np.concatenate([[np.inf], backwards[:-1]]))
    keep = (backwards < earliest_later)[::-1]
    return Column(steps=steps[keep], tokens=tokens[keep], values=values[keep])


def read_results(directory: Path) -> dict[str, dict[str, float]]:
    """Every RUN/eval/*.json as flat {metric: number}; nested maps join their keys with '/'."""
    if not directory.is_dir():
        return {}
    results = {}
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue  # an eval still being written (or not ours); the next report picks it up
        flat = dict(_flat_numbers(data)) if isinstance(data, dict) else {}
        if flat:
            results[path.stem] = flat
    return results


def _flat_numbers(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flat_numbers(value, f"{name}/")
        elif (number := _numeric(value)) is not None:
            yield name, number


def source_kinds(config: Mapping[str, Any]) -> dict[str, str]:
    """Source and eval-set names -> 'natural' | 'synthetic', from data.sources and data.eval."""
    data = config.get("data")
    kinds: dict[str, str] = {}
    if not isinstance(data, Mapping):
        return kinds
    for section in ("sources", "eval"):
        items = data.get(section)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                kinds[item["name"]] = str(item.get("kind", "natural"))
    return kinds


def run_names(runs: Sequence[Run]) -> list[str]:
    """Directory names, with the parent added where two runs share a name, and the whole path
    where that is still not enough (``a/x/run``, ``b/x/run``): always unique."""
    names = [r.name for r in runs]
    names = [f"{r.path.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in runs]
    return [str(r.path) if names.count(n) > 1 else n for r, n in zip(runs, names)]
