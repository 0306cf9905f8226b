"""Progress bars off a terminal: a line at most every LOG_INTERVAL seconds, not one per redraw."""

from __future__ import annotations

import io

from synthlm.progress import LOG_INTERVAL, progress_bar


def test_a_redirected_bar_writes_start_and_end_only_within_the_interval():
    log = io.StringIO()  # not a terminal, like a SLURM log
    with progress_bar(total=10_000, file=log, desc="job") as bar:
        for _ in range(10_000):
            bar.update(1)
    lines = [part for part in log.getvalue().replace("\r", "\n").splitlines() if part.strip()]
    assert bar.mininterval == LOG_INTERVAL
    assert len(lines) <= 3, lines  # the initial line, the final count (and a newline on close)
    assert "10000/10000" in lines[-1]


def test_a_terminal_keeps_the_given_refresh():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    bar = progress_bar(total=1, file=Tty(), mininterval=0.5)
    assert bar.mininterval == 0.5
    bar.close()
