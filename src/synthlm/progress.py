"""Progress bars that do not flood logs.

On a terminal a tqdm bar redraws in place; redirected to a file (a SLURM log, CI), every redraw
is a new line. There a bar still shows start, a line at most every ``LOG_INTERVAL`` seconds and
the final count, so a long job's log keeps its progress without thousands of lines.
"""

from __future__ import annotations

import sys
from typing import Any

LOG_INTERVAL = 30.0  # seconds between progress lines when stderr is not a terminal


def progress_bar(**options: Any) -> Any:
    """``tqdm(**options)``, throttled to a line every ``LOG_INTERVAL`` s off a terminal."""
    from tqdm import tqdm

    stream = options.get("file") or sys.stderr
    if not _is_terminal(stream):
        options["mininterval"] = max(float(options.get("mininterval", 0.1)), LOG_INTERVAL)
        options.setdefault("dynamic_ncols", False)
    return tqdm(**options)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
