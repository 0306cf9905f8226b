"""Append-only JSON-lines logs: the durable record of completed (and failed) generations.

A record counts as done only once its line is written, flushed and fsynced. A kill can tear
only the *last* line (a write's missing part is its end, newline included), so a final line
without its newline is a torn write: readers skip it and :class:`AppendLog` truncates it before
appending, so the next record never glues onto garbage. A complete line that fails to parse is
not something we write; it is reported instead of skipped.

Logs are read as a stream (offset, length, record), never loaded whole: a full-size EntiGraph
log holds gigabytes of text, and resume needs only the keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from synthlm.errors import UserError


def iter_log(path: str | Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Yield ``(offset, length, record)`` for every complete record; stop at a torn tail."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as handle:
        offset = 0
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return  # torn tail
            if line.strip():
                yield offset, len(line), _parse(path, number, line)
            offset += len(line)


def valid_length(path: str | Path) -> int:
    """Bytes of ``path`` up to the end of its last complete line (0 if missing)."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    with open(path, "rb") as handle:
        position = size
        while position > 0:  # scan back for the last newline, a block at a time
            start = max(0, position - 65536)
            handle.seek(start)
            block = handle.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            position = start
    return 0


def _parse(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        raise UserError(
            f"{path}:{number}: damaged record in the middle of the log; fix or delete that "
            f"line to resume"
        )
    return record


class AppendLog:
    """One writer for one log file: ``append`` returns only once the records are on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep = valid_length(self.path)
        self._file: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 (closed in close())
        if self._file.tell() > keep:
            self._file.truncate(keep)  # drop a torn tail left by a killed run

    def append(self, *records: dict[str, Any]) -> None:
        data = "".join(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records
        )
        self._file.write(data.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GroupCommitLog:
    """Async front of an :class:`AppendLog`: ``await write(record)`` returns once it is on disk.

    The fsync (milliseconds locally, far more on network file systems) runs in a worker thread,
    so the event loop keeps serving requests meanwhile, and records that complete while one
    fsync runs share the next one (group commit): one writer, durability per record, no cap of
    one record per fsync on throughput.
    """

    def __init__(self, log: AppendLog) -> None:
        self.log = log
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, record: dict[str, Any]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.log.append, *(record for record, _ in batch))
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
