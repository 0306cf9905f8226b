"""Launching a sweep's points: one after another here, or as a SLURM array job.

Split from :mod:`synthlm.sweep` (which plans and writes a sweep) because launching is about
processes: a locally started trainer dies with the sweep (a SIGKILLed sweep leaves no orphan),
holds a lock on its point so two trainers never share one run dir, and hears the stop signals
the sweep gets, so it saves a checkpoint instead of being killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json, atomic_write_text
from synthlm.sweep import FAILED_DIR, NAME_CHARS, SLURM_SCRIPT, Point, Sweep

SLURM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # the trainer's (synthlm.train.signals)


def default_command() -> list[str]:
    """The real trainer, in this same Python environment."""
    return [sys.executable, "-m", "synthlm", "train"]


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
    """A SLURM array job: task i trains point i; finished points are skipped on resubmission.

    Finished means RUN/final/ exists: a task stopped by preemption or its time limit exits 0
    with a checkpoint saved, and must train on (resume) when requeued or resubmitted. A task
    whose trainer fails writes SWEEPDIR/failed/<point>.json as a local sweep does (written to a
    temporary name and renamed, so a report never reads half of it) and exits with the
    trainer's status; its next attempt that does not fail removes the record.
    """
    count = len(sweep.points)
    array = f"0-{count - 1}" + (f"%{max_parallel}" if max_parallel else "")
    given = {key for key, _ in options}
    log = _sbatch_quote(f"{sweep.out / 'logs'}/%x-%A_%a.out")
    header = [f"#SBATCH --array={array}"]
    header += [] if "job-name" in given else [f"#SBATCH --job-name={_job_name(sweep)}"]
    header += [] if "output" in given else [f"#SBATCH --output={log}"]
    header += [
        f"#SBATCH --{key}={value}" if value else f"#SBATCH --{key}" for key, value in options
    ]
    configs = "\n".join(f"  {shlex.quote(str(p.config))}" for p in sweep.points)
    names = "\n".join(f"  {shlex.quote(p.name)}" for p in sweep.points)
    runs = "\n".join(f"  {shlex.quote(str(p.run_dir))}" for p in sweep.points)
    done = shlex.quote(str(sweep.out / "done"))
    failed = shlex.quote(str(sweep.out / FAILED_DIR))
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
RUNS=(
{runs}
)
TASK=${{SLURM_ARRAY_TASK_ID:?run this script with sbatch (it needs SLURM_ARRAY_TASK_ID)}}
NAME="${{NAMES[$TASK]}}"
CONFIG="${{CONFIGS[$TASK]}}"
RUN="${{RUNS[$TASK]}}"
# finished = the trainer wrote $RUN/final (a stop signal also exits 0, with a checkpoint only)
if [ -d "$RUN/final" ]; then echo "sweep point $NAME already finished; skipping"; exit 0; fi
{chr(10).join(setup)}
echo "sweep point $NAME: $CONFIG"
FAILED={failed}
STATUS=0
{shlex.join(command)} "$CONFIG" || STATUS=$?
if [ "$STATUS" -ne 0 ]; then
  echo "sweep point $NAME failed with exit status $STATUS" >&2
  mkdir -p "$FAILED"
  printf '{{"point": "%s", "exit_status": %d, "time": "%s", "runner": "slurm", "job": "%s"}}\n' \
    "$NAME" "$STATUS" "$(date -Iseconds)" "${{SLURM_ARRAY_JOB_ID:-}}_$TASK" \
    > "$FAILED/$NAME.json.tmp-$$"
  mv -f "$FAILED/$NAME.json.tmp-$$" "$FAILED/$NAME.json"
  exit "$STATUS"
fi
rm -f "$FAILED/$NAME.json"
if [ ! -d "$RUN/final" ]; then
  echo "sweep point $NAME stopped before finishing (no $RUN/final); it resumes when requeued" \\
    "or when the array is submitted again"
  exit 0
fi
mkdir -p {done} && date -Iseconds > {done}/"$NAME"
"""


def _sbatch_quote(value: str) -> str:
    """sbatch reads #SBATCH lines itself (no shell): double quotes keep a path with spaces whole."""
    if '"' in value:
        raise UserError(f"sweep folder {value!r}: a double quote cannot be written to #SBATCH")
    return f'"{value}"'


def _job_name(sweep: Sweep) -> str:
    return "synthlm-" + (NAME_CHARS.sub("", sweep.out.name) or "sweep")


def write_slurm_script(sweep: Sweep, command: Sequence[str], **kwargs: Any) -> Path:
    (sweep.out / "logs").mkdir(parents=True, exist_ok=True)  # SLURM does not create --output dirs
    path = atomic_write_text(sweep.out / SLURM_SCRIPT, slurm_script(sweep, command, **kwargs))
    path.chmod(0o755)
    return path


class PointBusy(UserError):
    """Another process (an earlier sweep's trainer that outlived it) holds the point's lock."""


@dataclass(frozen=True)
class Outcome:
    point: Point
    status: str  # "done", "skipped" (finished earlier), "stopped" (signal), "failed", "busy"
    returncode: int = 0


def run_local(
    sweep: Sweep,
    command: Sequence[str],
    *,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Train the points one after another; a failed point is reported and the rest still run.

    A stopped point (stop signal: checkpoint saved, exit 0, no final/) ends the sweep there: the
    stop was meant for the whole sweep, and the next run resumes that point first.
    """
    outcomes = []
    for point in sweep.points:
        outcomes.append(_run_point(sweep, point, command, echo))
        if outcomes[-1].status == "stopped":
            break
    return outcomes


def _run_point(
    sweep: Sweep, point: Point, command: Sequence[str], echo: Callable[[str], None]
) -> Outcome:
    label = f"[{point.index + 1}/{len(sweep.points)}] {point.name}"
    if point.finished:
        echo(f"{label}: finished earlier, skipping ({point.run_dir / 'final'})")
        return Outcome(point, "skipped")
    argv = [*command, str(point.config)]
    try:
        with point_lock(sweep, point) as lock:
            echo(f"{label}: {shlex.join(argv)}")
            code = _train(argv, lock)
    except PointBusy as exc:
        echo(f"{label}: {exc}")
        return Outcome(point, "busy")
    if code != 0:
        echo(f"{label}: failed with exit status {code}")
        record_failure(sweep, point, code)
        return Outcome(point, "failed", code)
    sweep.failure_record(point).unlink(missing_ok=True)  # this attempt did not fail
    if not point.finished:
        echo(
            f"{label}: stopped before finishing (the trainer exited 0 without writing "
            f"{point.run_dir / 'final'}); run the same command again to resume it"
        )
        return Outcome(point, "stopped")
    atomic_write_text(sweep.done_marker(point), _now() + "\n")
    return Outcome(point, "done")


def record_failure(sweep: Sweep, point: Point, code: int) -> Path:
    """Write SWEEPDIR/failed/<point>.json: the exit status outlives the terminal that showed
    it, so ``synthlm report`` can list the failed points (a failed run dir looks like one
    still training). A negative status is a signal, as :class:`subprocess.Popen` gives it."""
    record = {"point": point.name, "exit_status": code, "time": _now(), "runner": "local"}
    return atomic_write_json(sweep.failure_record(point), record)


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


@contextlib.contextmanager
def point_lock(sweep: Sweep, point: Point) -> Iterator[int | None]:
    """Exclusive lock on one point (advisory ``flock``); yields its file descriptor.

    The trainer inherits the descriptor, so the lock lasts as long as the trainer does, even
    past a killed sweep: a rerun then refuses the point instead of starting a second trainer
    in the same run dir. Windows has no flock; there a concurrent run is the user's risk.
    """
    try:
        import fcntl
    except ImportError:
        yield None
        return
    path = sweep.out / "locks" / point.name
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = path.read_text(encoding="utf-8").strip() or "unknown"
            raise PointBusy(
                f"another process (pid {holder}) is training this point in {point.run_dir}; "
                f"wait for it to end or stop it, then run the sweep again"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield handle
    finally:
        os.close(handle)  # the trainer's inherited copy keeps the lock until it exits


def _train(argv: Sequence[str], lock: int | None) -> int:
    """Run one trainer to its end; its exit status.

    A stop signal sent to the sweep (scancel, ``timeout``, ``kill``) is passed on, so the
    trainer saves a checkpoint and exits 0 instead of being killed mid-step; the handler is in
    place before the trainer starts, so no signal falls between the two.
    """
    with _forward_stop_signals() as forward:
        process = subprocess.Popen(
            argv,
            pass_fds=() if lock is None else (lock,),
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )
        forward(process)
        if lock is not None:
            os.pwrite(lock, f"{process.pid}\n".ljust(16).encode(), 0)
        try:
            return process.wait()
        except BaseException:  # Ctrl-C, or a bug: never leave the trainer behind
            process.kill()
            process.wait()
            raise


@contextlib.contextmanager
def _forward_stop_signals() -> Iterator[Callable[[subprocess.Popen], None]]:
    """Yields ``forward(process)``: stop signals, from now on and any already received, go to
    ``process``. Signal handlers can only be set in the main thread; elsewhere nothing is."""
    received: list[int] = []
    target: list[subprocess.Popen] = []

    def handle(signum: int, frame: object) -> None:
        received.append(signum)
        for process in target:
            process.send_signal(signum)

    def forward(process: subprocess.Popen) -> None:
        target.append(process)
        for signum in received:
            process.send_signal(signum)

    if threading.current_thread() is not threading.main_thread():
        yield lambda process: None
        return
    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield forward
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent(parent: int) -> None:
    """In the trainer, before exec: the kernel sends it SIGTERM when the sweep dies, even by
    SIGKILL (which no handler sees). SIGTERM, not SIGKILL: the trainer saves a checkpoint.
    As in :mod:`synthlm.workers`, other systems rely on the point lock alone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the sweep died before the request above took effect
        os._exit(1)
