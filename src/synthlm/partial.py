"""Work directories that let a killed long job continue where it stopped.

``synthlm tokenize`` and ``synthlm synth generate`` write their outputs into a hidden work
directory next to the output (``.NAME.tokenize-partial``, ``.NAME.synth-partial``), with a small
``state.json`` saved after every completed chunk or block. Rerunning the same command finds the
directory, checks that its fingerprint (everything that decides the output bytes) matches, cuts
the partial files back to the recorded state and continues; the result is byte-identical to an
uninterrupted run because chunks and blocks are deterministic and written in order. A different
command (another spec, seed, tokenizer or input) finds a mismatched fingerprint and starts over,
removing the stale directory, so no rerun ever leaves one behind.

Saves are throttled to one per :attr:`WorkDir.every` seconds (a resume then redoes at most that
much work): the state always describes a consistent prefix of the written files, so skipping a
save is always safe. The state is replaced by rename without fsync: a killed *process* loses
nothing the OS already has; after a power loss a data file may be shorter than the state says,
which the resuming writer detects (and asks for the directory to be removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from synthlm import __version__
from synthlm.fileio import temp_name

STATE = "state.json"


def work_dir(out: str | Path, job: str) -> Path:
    """The hidden work directory of ``job`` for the output ``out``."""
    out = Path(out)
    return out.parent / f".{out.name}.{job}-partial"


def fingerprint(payload: Any) -> str:
    """A digest of everything that decides the output bytes (and the synthlm version)."""
    text = json.dumps({"synthlm": __version__, "payload": payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class WorkDir:
    """A job's work directory: open (resuming or fresh), save state, remove when done."""

    every = 1.0  # seconds between state saves (measured: benchmarks/resume_overhead.py)

    def __init__(self, path: Path, digest: str) -> None:
        self.path = Path(path)
        self.digest = digest
        self._saved = float("-inf")

    def open(self) -> dict[str, Any] | None:
        """The state of a matching interrupted run, or None (any stale directory is removed)."""
        state = self._read()
        if state is None or state.get("fingerprint") != self.digest:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            return None
        return state

    def peek(self) -> dict[str, Any] | None:
        """The state of a matching interrupted run, without touching the directory."""
        state = self._read()
        return state if state is not None and state.get("fingerprint") == self.digest else None

    def _read(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.path / STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def due(self) -> bool:
        """Whether a throttled save would be written now (callers skip building the state)."""
        return time.monotonic() - self._saved >= self.every

    def save(self, state: dict[str, Any]) -> None:
        """Record ``state`` now (callers throttle with :meth:`due`)."""
        self._saved = time.monotonic()
        path = self.path / STATE
        temp = temp_name(path)
        temp.write_text(json.dumps({**state, "fingerprint": self.digest}), encoding="utf-8")
        os.replace(temp, path)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def keep_if_resumable(self, exc: BaseException) -> None:
        """After a failure: keep the directory when a rerun can continue (a kill or Ctrl-C, a
        full disk or another OS error), remove it when rerunning would fail the same way (bad
        input, a bug), so nothing useless is left behind."""
        if isinstance(exc, Exception) and not _system_error(exc):
            self.remove()
        elif isinstance(exc, OSError) and self.path.exists():
            exc.add_note(
                f"the partial output in {self.path} is kept: rerun the same command to "
                "continue, or delete it to give the space back"
            )


def _system_error(exc: BaseException) -> bool:
    """An OSError the system raised (it has an errno: a full disk, a lost mount), which a
    rerun can get past; not a file-format error that subclasses OSError without one (gzip's
    BadGzipFile: "Not a gzipped file"), which a rerun would meet again."""
    return isinstance(exc, OSError) and exc.errno is not None
