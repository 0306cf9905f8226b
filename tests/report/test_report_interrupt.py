"""A stopped report exits 130 and leaves ``--out`` as it was: the whole earlier report, or nothing.

The CLI tests signal the real ``synthlm report`` when it reaches a phase, told from outside: a
library's shared object appearing in ``/proc/PID/maps`` (pandas, imported by pyarrow's first
``to_numpy``; torch, imported by the objective config's pydantic serializer: both used to
swallow the interrupt, the report then finished with exit 0 or segfaulted), or the first PNG
written (the figures).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, model_serializer
from report_fixtures import tiny_config, write_run

from synthlm.report import build_report, watch_report
from synthlm.report.interrupts import interrupts_deferred, interrupts_kept
from synthlm.report.publish import publish_report, staging_dir

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/maps").is_file() or os.name != "posix", reason="needs Linux signals"
)


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Two runs whose config keys differ (one names its objective), so the report fills in the
    objective's defaults, which imports torch."""
    first = write_run(tmp_path / "runs" / "a", weight=0.1, steps=40, qa={"f1": 0.5})
    second = write_run(tmp_path / "runs" / "b", weight=0.4, steps=40, qa={"f1": 0.7})
    config = tiny_config(second, 0.4, objective={"name": "clm"})
    (second / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return [first, second]


@pytest.fixture
def earlier(runs: list[Path], tmp_path: Path) -> dict[str, bytes]:
    """A complete report of the first run alone at ``tmp_path/out``; its files' bytes."""
    out = tmp_path / "out"
    build_report(runs[:1], out)
    return snapshot(out)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def mapped(needle: str) -> Callable[[subprocess.Popen, Path], bool]:
    """The process has loaded a shared object whose path contains ``needle``."""

    def check(proc: subprocess.Popen, tmp_path: Path) -> bool:
        try:
            return needle in Path(f"/proc/{proc.pid}/maps").read_text()
        except OSError:
            return False

    return check


def drawing(proc: subprocess.Popen, tmp_path: Path) -> bool:
    """A new figure is on disk (in the staging folder, or in ``--out`` before the fix)."""
    started = proc.started  # type: ignore[attr-defined]
    return any(p.stat().st_mtime > started for p in tmp_path.glob("out*/*.png"))


PHASES = {
    "pandas import (pyarrow)": mapped("/pandas/_libs/"),
    "torch import (pydantic serializer)": mapped("libtorch"),
    "figures": drawing,
}


def report_cli(runs: list[Path], out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "synthlm", "report", *map(str, runs), "--out", str(out)]
    proc = subprocess.Popen(
        [*command, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.started = time.time()  # type: ignore[attr-defined]
    return proc


def signal_when(proc: subprocess.Popen, reached: Callable, signum: int, tmp_path: Path) -> None:
    deadline = time.monotonic() + 120
    while not reached(proc, tmp_path):
        assert proc.poll() is None, f"finished before the phase: {proc.communicate()}"
        assert time.monotonic() < deadline, "the phase never came"
        time.sleep(0.005)
    proc.send_signal(signum)


@pytest.mark.parametrize(
    ("phase", "signum", "with_earlier"),
    [
        ("pandas import (pyarrow)", signal.SIGTERM, True),
        ("torch import (pydantic serializer)", signal.SIGTERM, False),
        ("torch import (pydantic serializer)", signal.SIGINT, True),
        ("figures", signal.SIGINT, True),
        ("figures", signal.SIGTERM, False),
    ],
)
def test_a_stopped_report_exits_130_and_leaves_out_as_it_was(
    runs, tmp_path, request, phase, signum, with_earlier
):
    before = request.getfixturevalue("earlier") if with_earlier else None
    out = tmp_path / "out"
    proc = report_cli(runs, out)
    signal_when(proc, PHASES[phase], signum, tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted", stderr
    if before is None:
        assert not out.exists(), "nothing new: no partial report"
    else:
        assert snapshot(out) == before, "the earlier report, whole and unchanged"
    assert not list(tmp_path.glob("out.tmp-*")), "the staging folder is removed"


def test_an_interrupt_a_serializer_swallows_is_raised_again():
    """pydantic re-raises anything a serializer raises as a ValueError (the report's config
    code catches those): the interrupt must still end the block."""

    class Section(BaseModel):
        value: int = 1

        @model_serializer(mode="wrap")
        def _dump(self, handler):
            os.kill(os.getpid(), signal.SIGINT)
            return handler(self)

    swallowed = []
    with pytest.raises(KeyboardInterrupt), interrupts_kept():
        try:
            Section().model_dump()
        except ValueError as exc:
            swallowed.append(exc)
    assert swallowed, "pydantic turned the interrupt into a ValueError"


def test_deferred_interrupts_wait_for_the_block():
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_rebuild_replaces_the_whole_report(runs, tmp_path, earlier):
    out = tmp_path / "out"
    (out / "loss.png.tmp-999999999-0123abcd").write_bytes(b"a killed writer's")
    built = build_report(runs, out)
    names = {p.name for p in out.iterdir()}
    assert names == {"index.html", "report.json", *(p.name for p in built.figures)}
    assert built.page == out / "index.html" and all(p.parent == out for p in built.figures)


def test_other_files_in_out_are_kept(runs, tmp_path, earlier):
    out = tmp_path / "out"
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    build_report(runs, out)
    assert (out / "notes.txt").read_text() == "mine" and (out / "plots").is_dir()
    assert b"runs/b" in (out / "report.json").read_bytes()
    assert not list(tmp_path.glob("out.tmp-*"))


def test_a_symlinked_out_stays_a_link(runs, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    build_report(runs[:1], tmp_path / "out")
    assert (tmp_path / "out").is_symlink() and (real / "index.html").is_file()


def test_out_that_is_the_working_directory_is_not_moved(runs, tmp_path, earlier, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.chdir(out)
    inode = out.stat().st_ino
    build_report(runs, ".")
    assert out.stat().st_ino == inode and Path("index.html").is_file()


def test_a_failed_build_leaves_out_and_no_staging(runs, tmp_path, earlier, monkeypatch):
    from synthlm.report import plots

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "render_all", broken)
    with pytest.raises(KeyboardInterrupt):
        build_report(runs, tmp_path / "out")
    assert snapshot(tmp_path / "out") == earlier
    assert not list(tmp_path.glob("out.tmp-*"))


def test_watch_publishes_each_round_whole(runs, tmp_path):
    out = tmp_path / "out"
    pages = []
    watch_report(runs, out, 0.01, rounds=2, on_build=lambda r: pages.append(snapshot(out)))
    assert all("index.html" in page and "report.json" in page for page in pages)
    assert not list(tmp_path.glob("out.tmp-*"))


def test_a_killed_reports_staging_folder_is_removed_by_the_next(runs, tmp_path):
    out = tmp_path / "out"
    left = out.with_name("out.tmp-999999999-0123abcd")  # no process has that id
    left.mkdir()
    (left / "loss.png").write_bytes(b"half")
    staging = staging_dir(out)
    assert not left.exists() and staging.is_dir()
    publish_report(staging, out)
    assert out.is_dir() and not staging.exists()


def test_an_earlier_comparison_goes_with_the_earlier_report(runs, tmp_path, earlier):
    """``equal_tokens.*`` belong to the report that wrote them: a rebuild without
    ``--equal-tokens`` does not leave a table of other runs beside its page."""
    (tmp_path / "out" / "equal_tokens.json").write_text("{}")
    build_report(runs, tmp_path / "out")
    assert not (tmp_path / "out" / "equal_tokens.json").exists()
