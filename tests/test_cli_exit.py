"""The ``synthlm`` program's exit skips Python's module teardown (``synthlm.cli.fast_exit``) but
keeps what a normal exit does for a finished command: non-daemon threads are waited for,
``atexit`` handlers run, stdout and stderr are flushed, and the exit status is the command's."""

from __future__ import annotations

import os
import subprocess
import sys

# The program as the console script runs it (main() without argv), plus a thread and an atexit
# handler of the kind libraries leave behind (a tracker's upload, a logging flush).
PROGRAM = """
import atexit, sys, threading, time
from synthlm.cli import main
atexit.register(lambda: print("atexit ran", flush=False))
def late():
    time.sleep(0.3)
    sys.stdout.write("thread done\\n")
threading.Thread(target=late).start()
sys.argv = ["synthlm", *sys.argv[1:]]
main()
"""


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered: flushed?
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_finished_command_exits_with_threads_joined_and_atexit_run():
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["synthlm 0.1.0", "thread done", "atexit ran"]


def test_a_failed_command_keeps_its_status_and_error_line():
    done = run("train", "no-such-config.yaml")
    assert done.returncode == 2
    assert "error: no-such-config.yaml: config file not found" in done.stderr
    assert done.stdout.splitlines() == ["thread done", "atexit ran"]


def test_an_idle_thread_pool_worker_does_not_keep_the_program_alive():
    """torch's compiler leaves idle ``concurrent.futures`` workers after ``model.compile``; a
    plain join waits on them forever (they sleep until the pool's shutdown hook wakes them)."""
    program = PROGRAM.replace(
        "main()",
        "import concurrent.futures\n"
        "pool = concurrent.futures.ThreadPoolExecutor(2)\n"
        "pool.submit(lambda: 1).result()\n"
        "main()",
    )
    done = subprocess.run(
        [sys.executable, "-c", program, "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["synthlm 0.1.0", "thread done", "atexit ran"]
