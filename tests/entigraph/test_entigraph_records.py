"""The durable log: a torn last line (a killed write) is dropped, never glued to the next record."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from synthlm.entigraph import records as records_module
from synthlm.entigraph.records import AppendLog, GroupCommitLog, iter_log, valid_length
from synthlm.errors import UserError


def keys(path) -> list[str]:
    return [record["key"] for _, _, record in iter_log(path)]


def test_append_then_read_round_trips_with_offsets(tmp_path):
    path = tmp_path / "log.jsonl"
    with AppendLog(path) as log:
        log.append({"key": "a", "text": "ünï"})
        log.append({"key": "b"}, {"key": "c"})
    entries = list(iter_log(path))
    assert [r["key"] for _, _, r in entries] == ["a", "b", "c"]
    data = path.read_bytes()
    assert all(json.loads(data[o : o + n]) == r for o, n, r in entries)
    assert valid_length(path) == len(data)


def test_torn_tail_is_ignored_and_truncated_before_the_next_append(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"key": "a"}\n{"key": "b", "te')
    assert keys(path) == ["a"] and valid_length(path) == len(b'{"key": "a"}\n')
    with AppendLog(path) as log:
        log.append({"key": "c"})
    assert keys(path) == ["a", "c"]
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["a", "c"]


def test_a_log_that_is_only_a_torn_line_restarts_empty(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"key": "a", "te')
    with AppendLog(path) as log:
        log.append({"key": "b"})
    assert keys(path) == ["b"]


def test_missing_log_is_empty(tmp_path):
    assert keys(tmp_path / "none.jsonl") == [] and valid_length(tmp_path / "none.jsonl") == 0


def test_damage_in_the_middle_is_reported_not_skipped(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"key": "a"}\nGARBAGE\n{"key": "c"}\n')
    with pytest.raises(UserError, match=r"log\.jsonl:2: damaged record"):
        keys(path)


def test_group_commit_makes_every_record_durable_with_fewer_fsyncs(tmp_path, monkeypatch):
    """Records finishing together share an fsync; each write returns only after its fsync."""
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(records_module.os, "fsync", counting_fsync)
    path = tmp_path / "log.jsonl"

    async def write_all() -> list[int]:
        log = GroupCommitLog(AppendLog(path))
        seen_on_disk = []

        async def one(i: int) -> None:
            await log.write({"key": f"k{i}"})
            seen_on_disk.append(f"k{i}" in keys(path))

        await asyncio.gather(*(one(i) for i in range(50)))
        log.log.close()
        return seen_on_disk

    seen = asyncio.run(write_all())
    assert all(seen) and sorted(keys(path)) == sorted(f"k{i}" for i in range(50))
    assert 1 <= len(fsyncs) < 50
