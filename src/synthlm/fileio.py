"""Atomic file output: a file appears at its final name only when it is complete.

Every writer in synthlm goes through these helpers, so that a run killed at any moment (even with
SIGKILL) leaves either the previous complete file or nothing at the final path, never a torn one.
The temporary name lives in the same directory so the final ``os.replace`` is a rename on one
file system, which POSIX makes atomic.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"


def temp_name(path: str | Path) -> Path:
    """A unique sibling name for ``path`` that no reader will mistake for the real file."""
    path = Path(path)
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temp: str | Path, final: str | Path) -> Path:
    """Flush ``temp`` to disk and rename it to ``final``."""
    fsync_file(temp)
    os.replace(temp, final)
    return Path(final)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, on error removed.

    Once the file is in place, the temporaries that killed writers of the same file left (a
    SIGKILL runs no clean-up) are removed too, so reruns never pile them up; a writer that
    still runs keeps its own (:func:`remove_stale_temps_of`).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(final)
    try:
        yield temp
        publish(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    remove_stale_temps_of([final])


def publish_dir(staging: str | Path, final: str | Path) -> Path:
    """Rename the finished directory ``staging`` to ``final`` (same file system), so ``final``
    is only ever a complete directory: the old one, the new one, or for a moment absent.

    An existing non-empty ``final`` is first renamed aside to a :func:`temp_name` and deleted
    after; a kill between the two renames leaves that aside copy, which the next publish to
    ``final`` removes (a live writer's stays, see :func:`remove_stale_temps_of`).
    """
    staging, final = Path(staging), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    aside = None
    if final.is_dir() and any(final.iterdir()):
        aside = temp_name(final)
        os.replace(final, aside)
    os.replace(staging, final)  # onto an absent or empty directory: one rename
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    remove_stale_temps_of([final])
    return final


def swap_dir(staging: str | Path, final: str | Path) -> Path:
    """Put the finished directory ``staging`` at ``final`` with no moment where ``final`` is
    missing, then delete the directory it replaces.

    :func:`publish_dir` needs two renames, and in between ``final`` is absent: a browser
    reloading a page there (``synthlm report --watch``) would show "file not found" and stop
    reloading. Linux exchanges two directories in one step (``renameat2(RENAME_EXCHANGE)``);
    where that is not available (another OS, a file system without it) this is
    :func:`publish_dir`. A kill before the old directory is deleted leaves it under
    ``staging``'s :func:`temp_name`, which the next publish to ``final`` removes.
    """
    staging, final = Path(staging), Path(final)
    if final.is_symlink() or not final.is_dir() or not _exchange(staging, final):
        return publish_dir(staging, final)
    shutil.rmtree(staging, ignore_errors=True)  # the old final, now under the staging name
    remove_stale_temps_of([final])
    return final


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the OS or file system cannot (nothing moved)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    paths = (os.fsencode(first), os.fsencode(second))
    if renameat2(_AT_FDCWD, paths[0], _AT_FDCWD, paths[1], _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def temp_owner(path: str | Path) -> int | None:
    """The process id a :func:`temp_name` carries, or None for any other name (never ours to
    delete)."""
    name = Path(path).name
    if TMP_MARK not in name:
        return None
    match = _TEMP_TAIL.fullmatch(name.rsplit(TMP_MARK, 1)[1])
    return int(match.group(1)) if match else None


_TEMP_TAIL = re.compile(r"(\d+)-[0-9a-f]{8}")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs, so its temporaries must be left alone.

    Errs on the side of "alive" whenever it cannot tell (another user's process, no way to
    probe on Windows, where ``os.kill(pid, 0)`` would send Ctrl-C): a stale file kept costs
    space, a live writer's file deleted costs its output. A killed process that its parent has
    not reaped yet (a zombie) runs nothing and counts as dead.
    """
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False  # no process can have this id
    except OSError:
        return True  # exists, but belongs to someone else
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return True
    return "\nState:\tZ" not in status


def is_stale_temp(path: str | Path) -> bool:
    """A :func:`temp_name` whose writer is dead: a killed run's leftover, safe to delete."""
    pid = temp_owner(path)
    return pid is not None and not process_alive(pid)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temps_of(finals: Iterable[str | Path]) -> int:
    """Delete the temporaries (``FINAL.tmp-PID-...``, files or directories) that killed writers
    left for these final names; those of a writer that still runs are kept. Returns how many
    were removed.

    Every writer here removes its temporaries when it fails, but a SIGKILL gives it no chance:
    the next run for the same output cleans up after it, so the space comes back.
    """
    removed = 0
    for final in finals:
        final = Path(final)
        if not final.parent.is_dir():
            continue
        for candidate in final.parent.glob(f"{glob.escape(final.name)}{TMP_MARK}*"):
            if candidate.name.rsplit(TMP_MARK, 1)[0] == final.name and is_stale_temp(candidate):
                _remove(candidate)
                removed += 1
    return removed


def remove_stale_temps(directory: str | Path) -> int:
    """Delete temporary files killed writers left in ``directory`` (those of live writers are
    kept); returns how many were removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    removed = 0
    for candidate in directory.iterdir():
        if candidate.is_file() and is_stale_temp(candidate):
            candidate.unlink(missing_ok=True)
            removed += 1
    return removed


def _cannot_write_in(directory: Path) -> str | None:
    """Why no file can be created in ``directory``, or None. A real probe (create, then delete an
    empty file): ``os.access`` says yes to root on read-only mounts and on sysfs."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".synthlm-probe-"):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Give an ``OSError`` raised inside (``write`` on a full disk carries no file name) the name
    of the file being written, so the CLI's error line says which file it was."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def check_output(path: str | Path, *, kind: str = "file", what: str = "--out") -> Path:
    """Fail fast, before any long work, when ``path`` can never be written as a ``kind``.

    ``kind`` is ``"file"`` (a file, or a store prefix: its files are siblings), or ``"dir"``.
    Nothing is created: a command that stops later leaves no empty folders behind. Catches an
    output that is a directory (or a file where a directory is needed), a parent that is a
    file, and a location that is read-only or not writable; a full disk can only be seen
    while writing, and every writer here removes its partial output when that happens.
    """
    from synthlm.errors import UserError

    path = Path(path)
    if kind == "file" and path.is_dir():
        raise UserError(
            f"{what} {path}: is a directory, but a file (prefix) is needed; give a file path"
        )
    if kind == "dir" and path.exists() and not path.is_dir():
        raise UserError(f"{what} {path}: exists and is a file, but a directory is needed")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file, so it cannot hold {path.name}")
    for place in (existing, path) if path.is_dir() else (existing,):
        problem = _cannot_write_in(place)
        if problem:
            raise UserError(
                f"{what} {path}: {place} is not writable ({problem}); choose a writable location"
            )
    return path
