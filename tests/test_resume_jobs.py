"""Fault injection: tokenize and synth generate, stopped at every resume point, rerun, and the
outputs are byte-identical (sha256) to an uninterrupted run, with nothing left behind.

In-process stops: an exception raised from the k-th state save (``WorkDir.save``) or the k-th
store publish step. That leaves the disk as a SIGKILL at that moment would, or worse: open files
are flushed on the way out, so data files may run past the recorded state (the resuming writer
cuts them back). Real SIGKILLs of the CLI (with worker pools) are in ``test_orphan_workers.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from synthlm.data import readers
from synthlm.data import store as store_mod
from synthlm.data.tokenization import tokenize
from synthlm.partial import WorkDir
from synthlm.synth.build import build_dataset
from synthlm.synth.spec import load_spec

SPEC = {
    "name": "tiny",
    "num_tokens": "6K",
    "seed": 3,
    "domains": [
        {"type": "copy", "weight": 2, "vocab": {"num_vocab": 30}, "length": {"min": 4, "max": 12}},
        {"type": "dyck", "k": 2, "max_depth": 4},
    ],
}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of ~64 tokens and a save after each: many resume points in a tiny dataset."""
    from synthlm.synth.domain import Domain

    monkeypatch.setattr(Domain, "block_tokens", 64)
    monkeypatch.setattr(WorkDir, "every", 0.0)


class Stop(BaseException):
    """Stands for a kill at one resume point."""


def digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def _stop_at(monkeypatch, k: int) -> None:
    """Raise Stop on the k-th call of a state save or a publish step, counting both."""
    seen = []
    real_save, real_step = WorkDir.save, store_mod._publish_step

    def tick():
        if len(seen) == k:
            raise Stop
        seen.append(1)

    monkeypatch.setattr(WorkDir, "save", lambda self, state: (tick(), real_save(self, state)))
    monkeypatch.setattr(
        store_mod, "_publish_step", lambda step, meta: (tick(), real_step(step, meta))
    )


def _points(monkeypatch, job) -> int:
    calls = []
    real_save, real_step = WorkDir.save, store_mod._publish_step
    monkeypatch.setattr(
        WorkDir, "save", lambda self, state: (calls.append(1), real_save(self, state))
    )
    monkeypatch.setattr(
        store_mod, "_publish_step", lambda step, meta: (calls.append(1), real_step(step, meta))
    )
    job()
    monkeypatch.setattr(WorkDir, "save", real_save)
    monkeypatch.setattr(store_mod, "_publish_step", real_step)
    return len(calls)


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "in.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(120):
            handle.write(
                json.dumps({"text": f"document {i} " + "abc " * (i % 7), "title": f"t{i}"}) + "\n"
            )
    return path


# every: seconds between throttled state saves. 0 = a save after every chunk/block; 1e9 = only
# the first and the forced ones, so resumes start from stale states (more work redone)
THROTTLES = pytest.mark.parametrize("every", [0.0, 1e9], ids=["save-each", "save-rarely"])


@THROTTLES
def test_tokenize_stopped_anywhere_resumes_to_identical_bytes(tmp_path, corpus, monkeypatch, every):
    monkeypatch.setattr(WorkDir, "every", every)
    monkeypatch.setattr(readers, "CHUNK_RECORDS", 16)  # 8 chunks: many resume points
    reference = tmp_path / "ref"
    reference.mkdir()
    total = _points(
        monkeypatch,
        lambda: tokenize(
            [corpus],
            "byte",
            reference / "x",
            keys=["text", "title"],
            append_eod=True,
            workers=1,
            quiet=True,
        ),
    )
    want = digests(reference)
    assert len(want) == 6 and total > 10
    for k in range(
        0, total, 2 if every == 0 else 1
    ):  # every other point keeps the test fast; both publish orders hit
        out = tmp_path / f"k{k}"
        out.mkdir()
        _stop_at(monkeypatch, k)
        with pytest.raises(Stop):
            tokenize(
                [corpus],
                "byte",
                out / "x",
                keys=["text", "title"],
                append_eod=True,
                workers=1,
                quiet=True,
            )
        monkeypatch.setattr(WorkDir, "save", _real_save)
        monkeypatch.setattr(store_mod, "_publish_step", _real_step)
        # the same command again (no --overwrite): it continues and finishes the job
        tokenize(
            [corpus],
            "byte",
            out / "x",
            keys=["text", "title"],
            append_eod=True,
            workers=1,
            quiet=True,
        )
        assert digests(out) == want, f"stopped at point {k}"
        assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


@THROTTLES
def test_synth_generate_stopped_anywhere_resumes_to_identical_bytes(tmp_path, monkeypatch, every):
    monkeypatch.setattr(WorkDir, "every", every)
    reference = tmp_path / "ref"
    total = _points(monkeypatch, lambda: build_dataset(load_spec(SPEC), reference, quiet=True))
    want = digests(reference)
    assert total > 10
    for k in range(0, total, max(total // 12, 1) if every == 0 else 1):
        out = tmp_path / f"k{k}"
        _stop_at(monkeypatch, k)
        with pytest.raises(Stop):
            build_dataset(load_spec(SPEC), out, quiet=True)
        monkeypatch.setattr(WorkDir, "save", _real_save)
        monkeypatch.setattr(store_mod, "_publish_step", _real_step)
        assert not out.exists()  # nothing at the final name while unfinished
        build_dataset(load_spec(SPEC), out, quiet=True)
        assert digests(out) == want, f"stopped at point {k}"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_unseeded_synth_resumes_with_the_seed_it_drew(tmp_path, monkeypatch):
    spec = {k: v for k, v in SPEC.items() if k != "seed"}
    _stop_at(monkeypatch, 5)
    with pytest.raises(Stop):
        build_dataset(load_spec(spec), tmp_path / "d", quiet=True)
    monkeypatch.setattr(WorkDir, "save", _real_save)
    monkeypatch.setattr(store_mod, "_publish_step", _real_step)
    drawn = json.loads((tmp_path / ".d.synth-partial" / "state.json").read_text())["seed"]
    manifest = build_dataset(load_spec(spec), tmp_path / "d", quiet=True)
    assert manifest["seed"] == drawn
    build_dataset(load_spec({**spec, "seed": drawn}), tmp_path / "ref", quiet=True)
    assert digests(tmp_path / "d") == digests(tmp_path / "ref")


def test_a_different_command_discards_the_stale_work_dir(tmp_path, monkeypatch):
    _stop_at(monkeypatch, 3)
    with pytest.raises(Stop):
        build_dataset(load_spec(SPEC), tmp_path / "d", quiet=True)
    monkeypatch.setattr(WorkDir, "save", _real_save)
    monkeypatch.setattr(store_mod, "_publish_step", _real_step)
    build_dataset(load_spec({**SPEC, "seed": 4}), tmp_path / "d", quiet=True)
    build_dataset(load_spec({**SPEC, "seed": 4}), tmp_path / "ref", quiet=True)
    assert digests(tmp_path / "d") == digests(tmp_path / "ref")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "ref"]


_real_save = WorkDir.save
_real_step = store_mod._publish_step


def test_a_stopped_split_is_not_resumed_as_another_split(tmp_path, monkeypatch):
    """A saved DatasetDict is one path for every split: the train split stopped half way and
    then the validation split asked for at the same output used to resume the train work."""
    import datasets

    rows = {s: [f"{s} document {i} " + "abc " * (i % 5) for i in range(60)] for s in ("a", "b")}
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": rows["a"]}),
         "validation": datasets.Dataset.from_dict({"text": rows["b"]})}
    ).save_to_disk(str(saved))  # fmt: skip
    monkeypatch.setattr(readers, "CHUNK_RECORDS", 8)
    run = {"append_eod": True, "workers": 1, "quiet": True}
    _stop_at(monkeypatch, 3)
    with pytest.raises(Stop):
        tokenize([saved], "byte", tmp_path / "out" / "x", split="train", **run)
    monkeypatch.setattr(WorkDir, "save", _real_save)
    monkeypatch.setattr(store_mod, "_publish_step", _real_step)
    tokenize([saved], "byte", tmp_path / "out" / "x", split="validation", **run)
    tokenize([saved], "byte", tmp_path / "ref" / "x", split="validation", **run)
    assert digests(tmp_path / "out") == digests(tmp_path / "ref")
