"""Temporaries of killed writers are removed by the next run; those of live writers never are.

A temp name carries its writer's process id (``NAME.tmp-PID-xxxxxxxx``): a run for the same
output deletes the ones whose process is gone, and keeps the ones whose process still runs (a
concurrent writer would otherwise lose its output mid-write). ``data merge`` is killed for real
(SIGKILL) while its temporaries exist, and rerun.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from cli_runner import run_cli
from kill_runner import dead_pid, run_killed_at
from synthlm.data.store import TokenStore, write_store
from synthlm.fileio import (
    is_stale_temp,
    process_alive,
    remove_stale_temps,
    remove_stale_temps_of,
    temp_name,
    temp_owner,
)


def digests(directory: Path, stem: str) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.glob(f"{stem}.*"))
        if ".tmp-" not in p.name
    }


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def test_temp_names_carry_their_writers_pid(tmp_path):
    name = temp_name(tmp_path / "x.bin")
    assert temp_owner(name) == os.getpid() and not is_stale_temp(name)
    gone = dead_pid()
    assert not process_alive(gone)
    assert temp_owner(tmp_path / f"x.bin.tmp-{gone}-0123abcd") == gone
    assert is_stale_temp(tmp_path / f"x.bin.tmp-{gone}-0123abcd")
    for other in ("x.bin", f"x.bin.tmp-{gone}", f"x.bin.tmp-{gone}-notours", "x.tmp-data"):
        assert temp_owner(tmp_path / other) is None, other  # not ours: never deleted


def test_only_dead_writers_temps_are_removed(tmp_path):
    gone = dead_pid()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            stale = tmp_path / f"out.bin.tmp-{gone}-0123abcd"
            running = tmp_path / f"out.bin.tmp-{live.pid}-0123abcd"
            other = tmp_path / f"other.bin.tmp-{gone}-0123abcd"
            aside = tmp_path / f"dir.tmp-{gone}-0123abcd"  # a directory moved aside
            for path in (stale, running, other):
                path.write_bytes(b"x")
            (aside / "inner").mkdir(parents=True)
            assert remove_stale_temps_of([tmp_path / "out.bin", tmp_path / "dir"]) == 2
            assert not stale.exists() and not aside.exists()
            assert running.exists() and other.exists(), "a live writer's or another output's"
            assert remove_stale_temps(tmp_path) == 1 and running.exists() and not other.exists()
        finally:
            live.send_signal(signal.SIGKILL)


def test_merge_killed_with_its_temporaries_on_disk_reruns_and_cleans_up(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        docs = [rng.integers(0, 300, size=int(rng.integers(1, 40))) for _ in range(50)]
        write_store(tmp_path / name, docs, 300, masks=[np.ones(len(d), np.uint8) for d in docs])
    args = ["data", "merge", str(tmp_path / "a"), str(tmp_path / "b")]
    reference = tmp_path / "ref"
    reference.mkdir()
    assert run_cli(*args, "--out", str(reference / "m")).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    # the first publish step: every temporary (.bin, .idx, .mask.bin, .mask.idx) is written
    killed = run_killed_at("synthlm.data.store:_publish_step", 0, *args, "--out", str(out / "m"))
    assert killed == -signal.SIGKILL
    left = temps(out)
    assert len(left) == 4 and all(is_stale_temp(out / name) for name in left), left
    live = out / f"m.bin.tmp-{os.getpid()}-0123abcd"  # another merge into m, still running
    live.write_bytes(b"busy")
    done = run_cli(*args, "--out", str(out / "m"))
    assert done.returncode == 0, done.stderr
    assert temps(out) == [live.name], "the killed run's temporaries are gone, a live one kept"
    assert digests(out, "m") == digests(reference, "m")
    assert len(TokenStore(out / "m")) == 100


def test_tokenize_removes_only_dead_writers_temporaries(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(f'{{"text": "line {i} of the corpus"}}\n' for i in range(20)))
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f"s_text_document.bin.tmp-{dead_pid()}-0123abcd"  # a killed tokenize's
    live = out / f"s_text_document.idx.tmp-{os.getpid()}-0123abcd"  # a tokenize still writing
    for path in (stale, live):
        path.write_bytes(b"x")
    done = run_cli("tokenize", str(corpus), "-t", "byte", "-o", str(out / "s"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert temps(out) == [live.name]
    assert len(TokenStore(out / "s_text_document")) == 20


def test_every_atomic_write_removes_what_killed_writers_of_that_file_left(tmp_path):
    """generate -o, report figures, eval --out, manifests: each goes through atomic_path."""
    from synthlm.fileio import atomic_write_text

    stale = tmp_path / f"out.jsonl.tmp-{dead_pid()}-0123abcd"
    live = tmp_path / f"out.jsonl.tmp-{os.getpid()}-0123abcd"
    neighbour = tmp_path / f"other.jsonl.tmp-{dead_pid()}-0123abcd"
    for path in (stale, live, neighbour):
        path.write_bytes(b"x")
    atomic_write_text(tmp_path / "out.jsonl", "done\n")
    assert (tmp_path / "out.jsonl").read_text() == "done\n"
    assert temps(tmp_path) == sorted([live.name, neighbour.name])
