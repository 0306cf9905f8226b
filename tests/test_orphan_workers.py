"""Real SIGKILLs of the CLI mid-run: the pool workers die with it, and the same command finishes.

Linux only: children are found through ``/proc``. A worker that died but was not yet reaped by
PID 1 (a zombie) counts as gone: it holds no memory and runs nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli
from synthlm.data.store import TokenStore
from synthlm.data.tokenization import tokenize

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(c) for c in text.split()]
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def kill_mid_run(args: list[str], state: Path, workers: int) -> list[int]:
    """Start the CLI, wait until its workers run and a resume point is saved, SIGKILL it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "synthlm", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    pool: list[int] = []
    while len(pool) < workers or not state.is_file():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no workers or no resume point appeared"
        pool = children(process.pid)
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return pool


def assert_gone(pool: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pool):
        assert time.monotonic() < deadline, (
            f"workers {[p for p in pool if alive(p)]} outlived their parent"
        )
        time.sleep(0.05)


@pytest.mark.slow
def test_tokenize_workers_die_with_a_killed_parent_and_the_rerun_resumes(tmp_path):
    corpus = tmp_path / "in.jsonl"
    with open(corpus, "w", encoding="utf-8") as handle:
        for i in range(60_000):
            handle.write(
                json.dumps({"text": f"record {i} " + "lorem ipsum dolor " * (i % 13)}) + "\n"
            )
    out = tmp_path / "out" / "x"
    args = ["tokenize", str(corpus), "-t", "byte", "-o", str(out), "--workers", "2", "--quiet"]
    pool = kill_mid_run(args, tmp_path / "out" / ".x.tokenize-partial" / "state.json", 2)
    assert_gone(pool)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    tokenize([corpus], "byte", tmp_path / "ref", workers=1, quiet=True)
    for suffix in (".bin", ".idx", ".json"):
        got = Path(f"{out}_text_document{suffix}").read_bytes()
        assert got == Path(f"{tmp_path}/ref_text_document{suffix}").read_bytes(), suffix
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"x_text_document{s}" for s in (".bin", ".idx", ".json")
    ]


@pytest.mark.slow
def test_synth_workers_die_with_a_killed_parent_and_the_rerun_finishes(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "name": "o",
                "seed": 1,
                "domains": [
                    {"type": "copy", "vocab": {"num_vocab": 50}, "length": {"min": 8, "max": 32}},
                    {"type": "dyck", "k": 2, "max_depth": 5},
                ],
            }
        )
    )
    args = [
        "synth",
        "generate",
        str(spec),
        "--tokens",
        "1M",
        "-o",
        str(tmp_path / "d"),
        "--workers",
        "2",
        "-q",
    ]
    pool = kill_mid_run(args, tmp_path / ".d.synth-partial" / "state.json", 2)
    assert_gone(pool)
    assert not (tmp_path / "d").exists()
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert len(TokenStore(tmp_path / "d" / "train")) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "spec.json"]  # the work dir is gone
