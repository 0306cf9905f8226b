"""Run the real ``synthlm`` command in a subprocess that SIGKILLs itself at a chosen point.

A kill after "about two seconds" lands somewhere different on every machine; this one lands on
the k-th call of a named function (a publish step, a chunk, a rename), so a test can put a
real SIGKILL (no ``finally``, no ``except``, no flush) exactly between two steps it cares
about. The process is killed by the kernel as ``kill -9`` would: whatever it left on disk is
what a user would find.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

_BOOTSTRAP = """
import importlib, os, signal, sys
where, after = sys.argv[1], int(sys.argv[2])
module_name, _, dotted = where.partition(":")
owner = importlib.import_module(module_name)
*path, attr = dotted.split(".")
for name in path:
    owner = getattr(owner, name)
real = getattr(owner, attr)
calls = []
def stand_in(*args, **kwargs):
    if len(calls) == after:
        os.kill(os.getpid(), signal.SIGKILL)
    calls.append(1)
    return real(*args, **kwargs)
setattr(owner, attr, stand_in)
sys.argv = ["synthlm", *sys.argv[3:]]
from synthlm.cli import main
main()
"""


def run_killed_at(where: str, after: int, *args: str, timeout: float = 300) -> int:
    """Run ``synthlm ARGS`` and SIGKILL it on call number ``after`` (0 = the first) of
    ``where`` (``"package.module:function"`` or ``"package.module:Class.method"``); returns
    the exit status (``-SIGKILL`` when the kill point was reached)."""
    done = subprocess.run(
        [sys.executable, "-c", _BOOTSTRAP, where, str(after), *args],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.returncode


def dead_pid() -> int:
    """The id of a process that has exited and been reaped (for a killed run's temp names)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
