"""Fault injection: a store being replaced is never readable as a mix of two versions.

The publish is stopped after every one of its steps in turn (an exception raised from the step
function, which leaves the final names exactly as a SIGKILL at that moment would: the steps are
single renames/unlinks). After each stop a reader must see the old store, the new one, or no
store, and never an old ``.idx`` with a new ``.bin`` (same document count, other boundaries).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from synthlm.data import store as store_mod
from synthlm.data.store import TokenStore, merge_stores, write_store
from synthlm.errors import StoreError

OLD = [[1, 2, 3], [4, 5], [6]]
NEW = [[7], [8, 9], [10, 11, 12]]  # same count and total: only the boundaries differ
OLD_MASK = [[1, 0, 1], [0, 1], [1]]


class Killed(BaseException):
    """Stands for a SIGKILL between two publish steps."""


def _count_steps(monkeypatch, action) -> int:
    calls = []
    real = store_mod._publish_step
    monkeypatch.setattr(
        store_mod, "_publish_step", lambda step, meta: (calls.append(step), real(step, meta))
    )
    action()
    monkeypatch.setattr(store_mod, "_publish_step", real)
    return len(calls)


def _kill_after(monkeypatch, k: int) -> None:
    real = store_mod._publish_step
    done = []

    def step(step, meta):
        if len(done) == k:
            raise Killed
        done.append(step)
        real(step, meta)

    monkeypatch.setattr(store_mod, "_publish_step", step)


def _state(prefix) -> tuple | None:
    try:
        store = TokenStore(prefix)
    except StoreError as exc:
        assert "no token store here" in str(exc), exc  # absent, never torn or mismatched
        return None
    docs = [d.tolist() for d in store.iter_documents()]
    masks = [store.mask(i).tolist() for i in range(len(store))] if store.has_mask else None
    return docs, masks


@pytest.mark.parametrize("old_mask,new_mask", [(True, False), (False, True), (True, True)])
def test_overwrite_killed_at_every_step(tmp_path, monkeypatch, old_mask, new_mask):
    prefix = tmp_path / "s"
    new_masks = [[1] * len(d) for d in NEW] if new_mask else None
    old = (OLD, OLD_MASK if old_mask else None)
    new = (NEW, new_masks)

    def write_old():
        write_store(prefix, OLD, 64, masks=OLD_MASK if old_mask else None)

    def write_new():
        write_store(prefix, NEW, 64, masks=new_masks)

    write_old()
    steps = _count_steps(monkeypatch, write_new)
    assert steps >= 4
    for k in range(steps + 1):
        write_old()
        assert _state(prefix) == old
        _kill_after(monkeypatch, k)
        with contextlib.suppress(Killed):
            write_new()
        monkeypatch.undo()
        seen = _state(prefix)
        assert seen in (old, new, None), f"mixed store after {k} steps: {seen}"
        if k == steps:
            assert seen == new
        if seen is not None and seen[0] == NEW:
            assert TokenStore(prefix).metadata["num_documents"] == 3


def test_merge_killed_at_every_step_and_refuses_to_replace(tmp_path, monkeypatch):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "m"
    write_store(a, NEW[:1], 64)
    write_store(b, NEW[1:], 64)
    write_store(out, OLD, 64)
    with pytest.raises(StoreError, match="already exists; pass --overwrite"):
        merge_stores([a, b], out)
    with pytest.raises(StoreError, match="is also an input"):
        merge_stores([a, out], out, overwrite=True)
    steps = _count_steps(monkeypatch, lambda: merge_stores([a, b], out, overwrite=True))
    for k in range(steps + 1):
        write_store(out, OLD, 64)
        _kill_after(monkeypatch, k)
        with contextlib.suppress(Killed):
            merge_stores([a, b], out, overwrite=True)
        monkeypatch.undo()
        assert _state(out) in ((OLD, None), (NEW, None), None)
    assert np.array_equal(TokenStore(out).sizes, [1, 2, 3])
