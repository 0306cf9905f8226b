"""Worker processes that never outlive the command that started them.

A pool worker whose parent is SIGKILLed (an OOM kill, ``kill -9``, a scheduler's hard stop) gets
no message: ``concurrent.futures`` notices only from the parent's side, so the worker is
re-parented to PID 1 and keeps running, holding memory and CPUs. On Linux each worker asks the
kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``); elsewhere, and as a second
guard, a daemon thread in the worker polls ``getppid`` and exits when the parent is gone.

Call :func:`die_with_parent` first thing in a pool initializer.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end as soon as ``parent_pid`` is gone.

    Also restores the default SIGTERM action, which the CLI replaced in the parent (to unwind
    cleanly): a worker has nothing to clean up and should simply end.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl (an unusual libc): the thread below remains
            pass
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)
    threading.Thread(
        target=_watch, args=(parent_pid,), daemon=True, name="synthlm-parent-watch"
    ).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)
