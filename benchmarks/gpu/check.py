"""The prepared GPU check: one command that a session holding a device runs (under 8 minutes on
one H200), and the same paths in ``--smoke`` mode on CPU with tiny shapes (the test suite runs
it, so the check cannot rot between GPU sessions).

    python benchmarks/gpu/check.py --out DIR [--smoke] [--only llama,t5] [--budget 460] [--inprocess]

Each phase (see phases.py) runs in its own Python process under its own time cap (or what is
left of the whole budget, if less: phases run in order of importance), so an out-of-memory
error, a hang or a crash in one is recorded in the summary and the others still run.
``DIR/summary.json`` and ``DIR/summary.md`` are rewritten after every phase (atomically), so
even a run killed from the outside leaves the phases it finished. Exit status: 0 when every phase passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import phases  # noqa: E402

import report  # noqa: E402

SMOKE_CAP = 120.0  # seconds per phase on CPU


def run_phase(name: str, work: Path, smoke: bool) -> dict[str, Any]:
    """Run one phase in this process; its figures, or the error, as a record."""
    shapes = phases.SMOKE if smoke else phases.GPU
    work.mkdir(parents=True, exist_ok=True)
    ctx = phases.Context(shapes, work, smoke)
    peak = work / "peak.json"
    ctx.peak_flops = json.loads(peak.read_text())["peak_flops"] if peak.is_file() else 1.0
    phases.wl.PARTIAL = partial_path(work, name)
    phases.wl.PARTIAL.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        figures = phases.PHASES[name][0](ctx)
        record = {"status": "ok", "figures": figures}
    except Exception as exc:  # recorded: one failing phase must not stop the others
        record = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}"[-4000:],
            "traceback": traceback.format_exc()[-4000:],
        }
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record


def child(name: str, work: Path, cap: float, smoke: bool) -> dict[str, Any]:
    """Run ``name`` in a fresh process (its own CUDA context and memory) under ``cap`` seconds."""
    result = work / f"phase-{name}.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(HERE / "check.py"),
        "--phase",
        name,
        "--out",
        str(work),
        "--work",
        str(work),
        *(["--smoke"] if smoke else []),
    ]
    started = time.perf_counter()
    returncode, stderr = run_capped(cmd, cap)
    if returncode is None:
        return timeout_record(name, work, cap, stderr[-2000:])
    if result.is_file():
        record = json.loads(result.read_text())
        # the phase's own seconds plus the process's start (imports: unknown on the device's
        # sandboxed file system, and paid by every phase)
        record["process_s"] = round(time.perf_counter() - started, 2)
        return record
    return {
        "status": "failed",
        "error": f"the phase process exited with {returncode} and wrote no result",
        "stderr_tail": stderr[-3000:],
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_capped(cmd: list[str], cap: float) -> tuple[int | None, str]:
    """``cmd``'s exit status (None: stopped at ``cap`` seconds) and its stderr.

    The process leads its own process group, and everything in the group goes when it ends or
    is stopped: the fsdp phase's ``accelerate launch`` and its training process, inductor's
    compile workers. A survivor would hold GPU memory and cores through the phases after it.
    """
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=cap)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a process that left the group still holds the pipe
            stderr = ""
        return None, stderr or ""
    finally:
        with contextlib.suppress(ProcessLookupError):  # what the phase left running
            os.killpg(proc.pid, signal.SIGKILL)


def partial_path(work: Path, name: str) -> Path:
    return work / f"phase-{name}.partial.json"


def timeout_record(name: str, work: Path, cap: float, stderr_tail: str) -> dict[str, Any]:
    """A phase stopped at its cap: with the figures of the steps it timed, if it got that far."""
    record: dict[str, Any] = {
        "status": "timeout",
        "error": f"over its {cap:.0f} s cap",
        "stderr_tail": stderr_tail,
        "seconds": round(cap, 2),
    }
    partial = partial_path(work, name)
    if partial.is_file():
        record["partial_figures"] = json.loads(partial.read_text())
    return record


def run_all(
    names: list[str], out: Path, work: Path, *, smoke: bool, budget: float, inprocess: bool
) -> dict[str, Any]:
    """Every phase in turn; the summary is rewritten after each one."""
    summary: dict[str, Any] = {
        "mode": "smoke (CPU, tiny shapes)" if smoke else "gpu",
        "phases": {},
        "started": time.time(),
    }
    deadline = time.perf_counter() + budget
    for name in names:
        # first come, first served: phases run in order of importance (the targets' first), so
        # each gets its whole cap while the budget lasts and the last extras take the shortfall
        own = SMOKE_CAP if smoke else phases.PHASES[name][1]
        cap = min(own, max(deadline - time.perf_counter(), 0.0))
        if cap < 5:
            summary["phases"][name] = {
                "status": "skipped",
                "error": "the check's time budget ran out",
            }
        elif inprocess:
            summary["phases"][name] = run_phase(name, work, smoke)
        else:
            summary["phases"][name] = child(name, work, cap, smoke)
        summary["phases"][name]["cap_s"] = round(cap, 1)
        report.write(out, summary)
    summary["passed"] = all(p["status"] == "ok" for p in summary["phases"].values())
    report.write(out, summary)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="Folder for summary.json / summary.md (and scratch).",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny shapes: every path, in a couple of minutes."
    )
    parser.add_argument(
        "--only",
        default="",
        help="Comma-separated phases (default: all): " + ", ".join(phases.PHASES),
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=460.0,
        help="Seconds for the whole check (the last phases get what is left, or are skipped).",
    )
    parser.add_argument(
        "--inprocess",
        action="store_true",
        help="All phases in this process (faster start, no isolation).",
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="Scratch folder (stores, runs, checkpoints), emptied first; default OUT/work.",
    )
    parser.add_argument(
        "--phase", help=argparse.SUPPRESS
    )  # internal: run one phase, write its record
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out / "work"
    if args.phase:
        record = run_phase(args.phase, work, args.smoke)
        (work / f"phase-{args.phase}.json").write_text(json.dumps(record, default=str))
        return 0
    names = [n for n in args.only.split(",") if n] or list(phases.PHASES)
    unknown = [n for n in names if n not in phases.PHASES]
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; allowed: {', '.join(phases.PHASES)}")
    if "env" not in names:
        names.insert(0, "env")  # the measured peak is every MFU's denominator
    # a fresh scratch folder: a rerun on a warm machine must not resume the last call's runs
    shutil.rmtree(work, ignore_errors=True)
    summary = run_all(
        names, args.out, work, smoke=args.smoke, budget=args.budget, inprocess=args.inprocess
    )
    print(json.dumps({n: p["status"] for n, p in summary["phases"].items()}))
    print(f"summary: {args.out / 'summary.md'}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
