"""Run the real ``synthlm`` command in a subprocess (imported by CLI tests as ``cli_runner``).

A module of its own, not conftest: several conftest.py files exist under tests/, and
``from conftest import ...`` would pick whichever was imported last.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the real ``synthlm`` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
