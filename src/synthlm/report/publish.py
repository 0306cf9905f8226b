"""Put a finished report at ``--out`` whole: the old report or the new one, never a mix.

A report is several files (``index.html``, ``report.json``, the PNGs, the ``--equal-tokens``
table); written one by one into ``--out``, a kill left new PNGs beside an old ``report.json``,
or PNGs and no page. So the report is built in a staging directory beside ``--out``
(:func:`staging_dir`, named like every synthlm temporary so a killed run's is cleaned up by the
next) and :func:`publish_report` moves it into place:

- ``--out`` missing, empty, or holding only an earlier report: the directories are swapped in
  one step (:func:`~synthlm.fileio.swap_dir`), so even SIGKILL leaves one whole report and a
  browser reloading the page (``--watch``) never finds it missing.
- ``--out`` also holds other files (they are kept), is a symlink, or is the working directory
  (a shell there would be left in a deleted folder): the files are renamed in one by one, the
  page last, with Ctrl-C and SIGTERM held until all are in. The page shows its figures inline,
  so it is whole at every moment.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from synthlm.fileio import TMP_MARK, remove_stale_temps, remove_stale_temps_of, swap_dir, temp_name
from synthlm.report.interrupts import interrupts_deferred

PAGE = "index.html"
MANIFEST = "report.json"
EQUAL_TOKENS = ("equal_tokens.json", "equal_tokens.png")  # see synthlm.report.compare


def staging_dir(out: Path) -> Path:
    """A new empty folder beside ``out`` (same file system, so moving it in is a rename).

    Staging folders that killed reports left for ``out`` are removed first; a running report's
    (another ``--watch`` on the same folder) is kept.
    """
    out = _absolute(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps_of([out])
    staging = temp_name(out)
    staging.mkdir()
    return staging


def publish_report(staging: Path, out: Path) -> None:
    """Move the finished report in ``staging`` to ``out`` (see the module's docstring)."""
    out = _absolute(out)
    if _may_swap(out):
        swap_dir(staging, out)
        return
    _move_files_in(staging, out)
    shutil.rmtree(staging, ignore_errors=True)


def earlier_report_files(out: Path) -> set[str]:
    """Names of the files an earlier report wrote in ``out``: its page, manifest, comparison
    and the figures its manifest lists (plain ``.png`` names only: never a path elsewhere)."""
    names = {PAGE, MANIFEST, *EQUAL_TOKENS}
    try:
        figures = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("figures", [])
    except (OSError, ValueError, AttributeError):
        return names
    if isinstance(figures, list):
        names.update(n for n in figures if isinstance(n, str) and _plain_png(n))
    return names


def _plain_png(name: str) -> bool:
    return Path(name).name == name and name.endswith(".png")


def _may_swap(out: Path) -> bool:
    """Whether ``out`` can be replaced as a whole: nothing in it but an earlier report."""
    if not out.exists():
        return True
    if out.is_symlink() or not out.is_dir() or _holds_working_dir(out):
        return False
    ours = earlier_report_files(out)
    return all(_base_name(entry) in ours for entry in out.iterdir())


def _base_name(entry: Path) -> str:
    """``loss.png`` for ``loss.png`` and for a writer's temporary ``loss.png.tmp-PID-...``."""
    return entry.name.split(TMP_MARK)[0] if entry.is_file() else ""


def _holds_working_dir(out: Path) -> bool:
    try:
        return Path.cwd().resolve().is_relative_to(out.resolve())
    except OSError:  # the working directory was deleted: it is not in out
        return False


def _move_files_in(staging: Path, out: Path) -> None:
    """Rename the report's files into ``out`` beside files that are not the report's, the
    manifest and then the page last, and delete the earlier report's files it no longer has;
    a stop signal waits until all of that is done (a few renames)."""
    out.mkdir(exist_ok=True)
    earlier = earlier_report_files(out)
    names = sorted(entry.name for entry in staging.iterdir())
    with interrupts_deferred():
        for name in _page_last(names):
            os.replace(staging / name, out / name)
        for name in sorted(earlier - set(names)):
            (out / name).unlink(missing_ok=True)
    remove_stale_temps(out)


def _page_last(names: Iterable[str]) -> list[str]:
    """The figures first, then the manifest, then the page: a reader who finds the new page
    finds everything it names."""
    last = (MANIFEST, PAGE)
    names = list(names)
    return [n for n in names if n not in last] + [n for n in last if n in names]


def _absolute(path: Path) -> Path:
    """``out`` as an absolute path without resolving links: ``.`` and ``report/`` have a name
    to put a sibling beside, and a symlinked ``--out`` stays the link."""
    return Path(os.path.abspath(path))
