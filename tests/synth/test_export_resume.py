"""``synthlm synth export`` killed at any moment: ``--out`` is a whole export or absent, and the
same command rerun finishes it, never refusing what a killed run left behind.

Kills are real SIGKILLs of the CLI at a chosen call (see ``kill_runner``): in the middle of a
split (its temporaries on disk), before the finished export is renamed into place, and after
that but before the work directory is removed. In-process stops check that the rerun redoes
only the split that was cut short.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
from pathlib import Path

import pytest

from cli_runner import run_cli
from kill_runner import dead_pid, run_killed_at
from synthlm.synth import build_dataset, load_spec
from synthlm.synth import export as export_mod
from synthlm.synth.export import export_synthetic

IDS = ("--offset", "260", "--eod", "2")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "d"
    spec = load_spec(
        {
            "num_tokens": "4K",
            "seed": 1,
            "domains": [{"type": "reverse", "vocab": {"num_vocab": 20}}, {"type": "dyck"}],
        }
    )
    build_dataset(spec, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("ref") / "x"
    export_synthetic(dataset, out, offset=260, eod=2)
    return digests(out)


def digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    """Temporaries and work directories of killed runs, beside ``--out`` and inside it."""
    found = [p for p in parent.rglob("*") if ".tmp-" in p.name or p.name.endswith("-partial")]
    return sorted(str(p.relative_to(parent)) for p in found)


def export_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["synth", "export", str(dataset), "--out", str(out), *IDS, *extra]


def test_killed_mid_split_leaves_no_export_and_the_rerun_completes(tmp_path, dataset, reference):
    out = tmp_path / "x"
    args = export_args(dataset, out)
    # _chunk call 1: train is done, valid's writers have their temporaries open
    assert run_killed_at("synthlm.synth.export:_chunk", 1, *args) == -signal.SIGKILL
    assert not out.exists(), "no half export at --out"
    assert any(".tmp-" in name for name in leftovers(tmp_path)), leftovers(tmp_path)
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert digests(out) == reference and leftovers(tmp_path) == []


def test_killed_before_the_rename_is_finished_by_the_rerun(tmp_path, dataset, reference):
    out = tmp_path / "x"
    args = export_args(dataset, out)
    assert run_killed_at("synthlm.synth.export:publish_dir", 0, *args) == -signal.SIGKILL
    assert not out.exists()
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert digests(out) == reference and leftovers(tmp_path) == []


def test_killed_after_the_rename_the_rerun_has_nothing_left_to_do(tmp_path, dataset, reference):
    out = tmp_path / "x"
    args = export_args(dataset, out)
    assert run_killed_at("synthlm.partial:WorkDir.remove", 0, *args) == -signal.SIGKILL
    assert digests(out) == reference and leftovers(tmp_path) == [".x.export-partial"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: synthetic ids 260.." in done.stdout
    assert digests(out) == reference and leftovers(tmp_path) == []
    again = run_cli(*args)  # once finished, it is an earlier export like any other
    assert again.returncode == 2 and "already holds an export" in again.stderr, again.stderr


def test_a_killed_overwrite_keeps_the_old_export_and_the_rerun_replaces_it(
    tmp_path, dataset, reference
):
    out = tmp_path / "x"
    assert run_cli(*export_args(dataset, out, "--vocab-size", "400")).returncode == 0
    old = digests(out)
    args = export_args(dataset, out, "--overwrite")
    assert run_killed_at("synthlm.synth.export:_chunk", 2, *args) == -signal.SIGKILL
    assert digests(out) == old, "the old export stays whole until the new one is complete"
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert digests(out) == reference and leftovers(tmp_path) == []


def test_an_old_export_a_killed_swap_moved_aside_is_removed(tmp_path, dataset, reference):
    """A kill between moving the old export aside and renaming the new one in leaves the old one
    at ``OUT.tmp-PID-...`` and nothing at ``OUT``; the rerun removes it."""
    aside = tmp_path / f"x.tmp-{dead_pid()}-0123abcd"
    aside.mkdir()
    (aside / "train_text_document.bin").write_bytes(b"\0" * 1024)
    done = run_cli(*export_args(dataset, tmp_path / "x", "--overwrite"))
    assert done.returncode == 0, done.stderr
    assert digests(tmp_path / "x") == reference and leftovers(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_temporaries_an_older_killed_export_left_in_out_are_removed(
    tmp_path, dataset, reference, overwrite
):
    """Before exports were staged, a killed one left ``*.bin.tmp-PID-...`` in ``--out`` and the
    rerun refused them as "an export"; they are a dead run's leftovers and are removed."""
    out = tmp_path / "x"
    out.mkdir()
    gone = dead_pid()
    for name in ("train_label_document.bin", "train_text_document.mask.idx"):
        (out / f"{name}.tmp-{gone}-0123abcd").write_bytes(b"\0" * 4096)
    done = run_cli(*export_args(dataset, out, *(["--overwrite"] if overwrite else [])))
    assert done.returncode == 0, done.stderr
    assert digests(out) == reference and leftovers(tmp_path) == []


def test_another_command_after_a_kill_starts_over(tmp_path, dataset):
    out = tmp_path / "x"
    killed = run_killed_at("synthlm.synth.export:_chunk", 1, *export_args(dataset, out))
    assert killed == -signal.SIGKILL
    done = run_cli(
        "synth", "export", str(dataset), "--out", str(out), "--offset", "300", "--eod", "2"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "export.json").read_text())["offset"] == 300
    assert leftovers(tmp_path) == []


def test_a_directory_with_other_files_is_refused_even_with_overwrite(tmp_path, dataset):
    """The export replaces its whole directory: other files there would be lost."""
    out = tmp_path / "x"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for extra in ((), ("--overwrite",)):
        done = run_cli(*export_args(dataset, out, *extra))
        assert done.returncode == 2, done.stderr
        assert "holds files that are not an export (notes.txt)" in done.stderr, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert leftovers(tmp_path) == []


class Stop(BaseException):
    """Stands for a kill at one chunk."""


def test_the_rerun_redoes_only_the_split_that_was_cut_short(
    tmp_path, dataset, reference, monkeypatch
):
    out = tmp_path / "x"
    real_chunk, real_split = export_mod._chunk, export_mod._export_split
    calls: list[int] = []

    def chunk(*args, **kwargs):
        if len(calls) == 2:  # train and valid are done; test is cut short
            raise Stop
        calls.append(1)
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(export_mod, "_chunk", chunk)
    with contextlib.suppress(Stop):
        export_synthetic(dataset, out, offset=260, eod=2)
    assert not out.exists()
    monkeypatch.setattr(export_mod, "_chunk", real_chunk)
    redone: list[str] = []
    monkeypatch.setattr(
        export_mod,
        "_export_split",
        lambda store, prefix, *a: (redone.append(prefix.name), real_split(store, prefix, *a))[1],
    )
    summary = export_synthetic(dataset, out, offset=260, eod=2)
    assert redone == ["test"]
    assert list(summary["splits"]) == ["train", "valid", "test"]
    assert digests(out) == reference and leftovers(tmp_path) == []
