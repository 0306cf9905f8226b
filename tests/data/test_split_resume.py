"""``data split`` killed at any moment: both parts appear together, the rerun finishes the job.

The stores are staged complete in ``.OUT.split-partial`` and then published one after the
other. A kill while publishing (after ``OUT_train`` is visible, before ``OUT_valid`` is) must not
make the same command refuse its own half-published output, and whatever a killed run left
(temporaries, the work directory) is gone once the rerun succeeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from kill_runner import dead_pid, run_killed_at
from synthlm.data import store as store_mod
from synthlm.data.split import split_store
from synthlm.data.store import TokenStore, store_exists, write_store
from synthlm.errors import StoreError


class Killed(BaseException):
    """Stands for a kill at one publish step."""


def make_store(path: Path, n: int = 40) -> None:
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 300, size=int(rng.integers(1, 30))) for _ in range(n)]
    masks = [(rng.random(len(d)) < 0.5).astype(np.uint8) for d in docs]
    write_store(path, docs, 300, masks=masks, tokenizer={"path": "tok"}, append_eod=True)


def outputs(directory: Path, stem: str = "s") -> dict[str, str]:
    """Digests of the parts' files; ``split_from.store`` names the input path, the same here."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.glob(f"{stem}_*"))
        if p.is_file()
    }


def leftovers(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if ".tmp-" in p.name or p.name.endswith("-partial")
    )


@pytest.fixture
def reference(tmp_path) -> dict[str, str]:
    make_store(tmp_path / "web")
    ref = tmp_path / "ref"
    ref.mkdir()
    split_store(tmp_path / "web", 0.25, out=ref / "s", seed=7)
    return outputs(ref)


def _steps(monkeypatch, action) -> int:
    calls = []
    real = store_mod._publish_step
    monkeypatch.setattr(
        store_mod, "_publish_step", lambda step, meta: (calls.append(1), real(step, meta))
    )
    action()
    monkeypatch.setattr(store_mod, "_publish_step", real)
    return len(calls)


def test_split_stopped_at_every_step_reruns_to_identical_bytes(tmp_path, reference, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    total = _steps(monkeypatch, lambda: split_store(tmp_path / "web", 0.25, out=out / "x", seed=7))
    assert total >= 4 * 7  # two stores staged, two published, 7 steps each (masks)
    for k in range(total):
        for path in out.iterdir():
            if path.is_file():
                path.unlink()
        real, seen = store_mod._publish_step, []

        def step(step, meta, real=real, seen=seen, k=k):
            if len(seen) == k:
                raise Killed
            seen.append(1)
            real(step, meta)

        monkeypatch.setattr(store_mod, "_publish_step", step)
        with contextlib.suppress(Killed):
            split_store(tmp_path / "web", 0.25, out=out / "s", seed=7)
        monkeypatch.undo()
        visible = {part for part in ("train", "valid") if store_exists(out / f"s_{part}")}
        assert visible in (set(), {"train"}), f"step {k}: valid never appears before train"
        split_store(tmp_path / "web", 0.25, out=out / "s", seed=7)  # the same command again
        assert outputs(out) == reference, f"stopped at step {k}"
        assert leftovers(out) == [], f"stopped at step {k}"


def test_cli_split_killed_between_the_two_stores_is_finished_by_the_rerun(tmp_path, reference):
    out = tmp_path / "out"
    out.mkdir()
    args = ["data", "split", str(tmp_path / "web"), "--valid-fraction", "0.25", "--seed", "7"]
    args += ["--out", str(out / "s")]
    # 14 steps stage both stores in the work dir, 7 publish s_train: kill on s_valid's first
    assert run_killed_at("synthlm.data.store:_publish_step", 14 + 7, *args) == -signal.SIGKILL
    assert store_exists(out / "s_train") and not store_exists(out / "s_valid")
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == reference and leftovers(out) == []
    assert "s_valid (valid): 10 documents" in done.stdout


def test_cli_split_killed_mid_publish_of_a_store_leaves_no_temporaries(tmp_path, reference):
    """Killed in the middle of writing a part's PREFIX.json (its temporary is on disk)."""
    out = tmp_path / "out"
    out.mkdir()
    args = ["data", "split", str(tmp_path / "web"), "--valid-fraction", "0.25", "--seed", "7"]
    args += ["--out", str(out / "s")]
    # 5 renames per store with a mask (mask .bin, mask .idx, .bin, .json, .idx): 10 stage both
    # parts in the work dir, then s_train's .json is the 4th
    killed = run_killed_at("synthlm.fileio:publish", 10 + 3, *args)
    assert killed == -signal.SIGKILL
    assert [n for n in leftovers(out) if ".tmp-" in n] == [
        next(n for n in leftovers(out) if n.startswith("s_train.json.tmp-"))
    ], leftovers(out)
    assert not store_exists(out / "s_train") and not store_exists(out / "s_valid")
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == reference and leftovers(out) == []


def test_cli_split_killed_while_writing_starts_over(tmp_path, reference):
    out = tmp_path / "out"
    out.mkdir()
    args = ["data", "split", str(tmp_path / "web"), "--valid-fraction", "0.25", "--seed", "7"]
    args += ["--out", str(out / "s")]
    killed = run_killed_at("synthlm.data.store:TokenStoreWriter.add_batch", 0, *args)
    assert killed == -signal.SIGKILL
    assert not list(out.glob("s_*")), "nothing at the final names while writing"
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == reference and leftovers(out) == []


def test_another_command_after_a_half_published_split_is_refused(tmp_path, reference):
    """Only the same command may finish a half-published split: another seed finds an existing
    store; with --overwrite it replaces it, and the killed run's work directory goes too."""
    out = tmp_path / "out"
    out.mkdir()
    base = ["data", "split", str(tmp_path / "web"), "--valid-fraction", "0.25", "--out"]
    args, other = [*base, str(out / "s"), "--seed", "7"], [*base, str(out / "s"), "--seed", "8"]
    assert run_killed_at("synthlm.data.store:_publish_step", 21, *args) == -signal.SIGKILL
    refused = run_cli(*other)
    assert refused.returncode == 2 and "already exists" in refused.stderr, refused.stderr
    replaced = run_cli(*other, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert leftovers(out) == []
    assert TokenStore(out / "s_valid").metadata["split_from"]["seed"] == 8


@pytest.mark.parametrize("overwrite", [False, True])
def test_temporaries_an_older_killed_run_left_are_removed(tmp_path, reference, overwrite):
    out = tmp_path / "out"
    out.mkdir()
    gone = dead_pid()
    old = [f"s_train.bin.tmp-{gone}-0123abcd", f"s_valid.mask.bin.tmp-{gone}-89abcdef"]
    for name in old:
        (out / name).write_bytes(b"\0" * 64)
    split_store(tmp_path / "web", 0.25, out=out / "s", seed=7, overwrite=overwrite)
    assert outputs(out) == reference and leftovers(out) == []


def test_a_rerun_after_success_still_needs_overwrite(tmp_path, reference):
    """Finishing is only for a split the work directory says is staged: a completed split is
    an existing store like any other."""
    out = tmp_path / "out"
    out.mkdir()
    split_store(tmp_path / "web", 0.25, out=out / "s", seed=7)
    with pytest.raises(StoreError, match="already exists; pass --overwrite"):
        split_store(tmp_path / "web", 0.25, out=out / "s", seed=7)
