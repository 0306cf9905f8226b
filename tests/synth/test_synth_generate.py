"""Generation invariants: byte-identical for any worker count, exact budgets, masks aligned with
outputs, split overlap reported and removable, atomic output, bounded memory."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from synthlm.data.store import TokenStore
from synthlm.errors import UserError
from synthlm.synth import build_dataset, load_spec, load_synthetic
from synthlm.synth.spec import SPLITS

MIXED = {
    "name": "mixed",
    "num_tokens": "20K",
    "seed": 0,
    "domains": [
        {
            "type": "copy",
            "weight": 2,
            "vocab": {"num_vocab": 50, "prob": "zipf"},
            "length": {"min": 4, "max": 24},
        },
        {"type": "count", "vocab": {"num_vocab": 20}},
        {"type": "dyck", "k": 3, "max_depth": 5},
        {"type": "deduct"},
        {"type": "ngram", "vocab": {"num_vocab": 30}},
    ],
}


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_bytes_for_any_worker_count(tmp_path):
    spec = load_spec(MIXED)
    build_dataset(spec, tmp_path / "one", workers=1, quiet=True)
    build_dataset(spec, tmp_path / "two", workers=2, quiet=True)
    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert set(one) == set(two) and {
        "train.bin",
        "train.mask.bin",
        "manifest.json",
        "README.md",
        "card.svg",
    } <= set(one)
    assert all(one[name] == two[name] for name in one), [n for n in one if one[n] != two[n]]


def test_seed_changes_data_and_zero_is_an_ordinary_seed(tmp_path):
    for seed in (0, 1, -1):
        build_dataset(load_spec(MIXED, [f"seed={seed}"]), tmp_path / str(seed), quiet=True)
    data = {s: (tmp_path / str(s) / "train.bin").read_bytes() for s in (0, 1, -1)}
    assert len(set(data.values())) == 3
    assert json.loads((tmp_path / "0" / "manifest.json").read_text())["seed"] == 0


def test_missing_seed_is_recorded_and_the_manifest_reproduces(tmp_path):
    spec = load_spec({k: v for k, v in MIXED.items() if k != "seed"})
    manifest = build_dataset(spec, tmp_path / "a", quiet=True)
    assert isinstance(manifest["seed"], int) and manifest["spec"]["seed"] == manifest["seed"]
    build_dataset(load_spec(tmp_path / "a" / "manifest.json"), tmp_path / "b", quiet=True)
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_budget_is_exact_within_one_sequence(tmp_path):
    # copy with fixed length 10 and a 1-token promoter: every sequence is exactly 22 tokens,
    # reverse with length 5: 12 tokens. Every token written counts, markers included.
    spec = load_spec(
        {
            "num_tokens": 10_007,
            "seed": 3,
            "domains": [
                {"type": "copy", "length": 10, "weight": 3},
                {"type": "reverse", "length": 5},
            ],
        }
    )
    manifest = build_dataset(spec, tmp_path / "d", quiet=True)
    written = sum(TokenStore(tmp_path / "d" / s).num_tokens for s in SPLITS)
    assert written == manifest["num_tokens"]
    assert 0 <= 10_007 - written < 12, "total falls short by less than the last piece's sequence"
    for split in SPLITS:
        for piece in manifest["splits"][split]["domains"].values():
            assert abs(piece["tokens"] - piece["budget"]) < 22
    copy_tokens = sum(manifest["splits"][s]["domains"]["copy"]["tokens"] for s in SPLITS)
    assert abs(copy_tokens - 0.75 * 10_007) < 3 * 22, "each domain gets its weight's share"
    sizes = TokenStore(tmp_path / "d" / "train").sizes
    assert set(sizes.tolist()) == {22, 12}


@pytest.mark.parametrize("policy", ["output", "all", "none"])
def test_mask_covers_exactly_the_output(tmp_path, policy):
    spec = load_spec(
        {
            "num_tokens": 3000,
            "seed": 5,
            "domains": [{"type": "copy", "length": 6, "loss_mask": policy}],
        }
    )
    build_dataset(spec, tmp_path / "d", quiet=True)
    store = TokenStore(tmp_path / "d" / "train")
    expected = {"output": [0] * 8 + [1] * 6, "all": [1] * 14, "none": [0] * 14}[policy]
    assert len(store) > 0
    for i in range(len(store)):
        assert len(store.mask(i)) == len(store.document(i))
        assert store.mask(i).tolist() == expected
        doc = store.document(i)
        assert doc[1:7].tolist() == doc[8:].tolist(), "copy: the output equals the input"


def test_split_overlap_is_reported_and_dedup_removes_it(tmp_path):
    tiny = {
        "num_tokens": 3000,
        "seed": 1,
        "splits": {"train": 0.5, "valid": 0.25, "test": 0.25},
        "domains": [
            {"type": "first_token", "vocab": {"num_vocab": 3}, "length": {"min": 1, "max": 2}}
        ],
    }
    plain = build_dataset(load_spec(tiny), tmp_path / "plain", quiet=True)
    assert plain["splits"]["valid"]["domains"]["first_token"]["overlap_with_train"] > 0
    deduped = build_dataset(load_spec(tiny), tmp_path / "dedup", dedup_splits=True, quiet=True)
    train = {tuple(d.tolist()) for d in TokenStore(tmp_path / "dedup" / "train").iter_documents()}
    for split in ("valid", "test"):
        if deduped["splits"][split][
            "absent"
        ]:  # every sequence was in train: no empty store is written
            assert not (tmp_path / "dedup" / f"{split}.bin").exists()
            continue
        docs = [tuple(d.tolist()) for d in TokenStore(tmp_path / "dedup" / split).iter_documents()]
        assert not train & set(docs)
        piece = deduped["splits"][split]["domains"]["first_token"]
        assert piece["removed"] == piece["overlap_with_train"] > 0 or piece["exhausted"]


def test_existing_output_is_refused_before_any_work(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="--overwrite"):
        build_dataset(load_spec(MIXED), out, quiet=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(UserError, match="holds files that are not a synthetic dataset"):
        build_dataset(load_spec(MIXED), out, overwrite=True, quiet=True)  # not a dataset: kept
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    build_dataset(load_spec(MIXED), out, quiet=True)
    build_dataset(load_spec({**MIXED, "seed": 9}), out, overwrite=True, quiet=True)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 9


def test_a_failure_leaves_no_dataset_and_no_temp_files(tmp_path, monkeypatch):
    """A bug (or bad input) would fail a rerun the same way: nothing is kept. Kills, Ctrl-C and
    OS errors keep the work dir for a resume (tests/test_resume_jobs.py)."""
    import synthlm.synth.blocks as blocks

    calls = {"n": 0}
    real = blocks.make_block

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("disk on fire")
        return real(*args)

    monkeypatch.setattr(blocks, "make_block", flaky)
    with pytest.raises(RuntimeError):
        build_dataset(load_spec(MIXED), tmp_path / "d", quiet=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_memory_stays_bounded_by_blocks_not_by_the_budget(tmp_path):
    spec = load_spec(
        {
            "num_tokens": "10M",
            "seed": 0,
            "domains": [
                {"type": "copy", "vocab": {"num_vocab": 1000}, "length": {"min": 200, "max": 400}}
            ],
        }
    )
    tracemalloc.start()
    try:
        build_dataset(spec, tmp_path / "d", quiet=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Holding the data would need >= 10M tokens x 2 bytes (and x 8 as int64 while building).
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert load_synthetic(tmp_path / "d").split("train").num_tokens > 8_500_000


def test_stores_record_the_layout_vocabulary(tmp_path):
    manifest = build_dataset(load_spec(MIXED), tmp_path / "d", quiet=True)
    for split in SPLITS:
        store = TokenStore(tmp_path / "d" / split)
        assert store.vocab_size == manifest["layout"]["vocab_size"]
        assert store.metadata["layout"] == manifest["layout"]
        assert store.has_mask
        assert len(np.load(tmp_path / "d" / f"{split}.domains.npy")) == len(store)


def test_dataset_card_lists_domains_and_plots_them(tmp_path):
    import xml.etree.ElementTree as ET

    manifest = build_dataset(load_spec(MIXED), tmp_path / "d", quiet=True)
    readme = (tmp_path / "d" / "README.md").read_text()
    assert f"seed {manifest['seed']}" in readme and "![distributions](card.svg)" in readme
    for d in manifest["domains"]:
        assert f"| {d['name']} |" in readme
    svg = ET.parse(tmp_path / "d" / "card.svg").getroot()
    titles = [
        t.text
        for t in svg.iter("{http://www.w3.org/2000/svg}text")
        if t.get("font-weight") == "bold"
    ]
    assert titles == [f"{d['name']} ({d['type']})" for d in manifest["domains"]]
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}polyline"))) == len(manifest["domains"])


def test_card_states_the_budget_rule_the_counts_follow(tmp_path):
    """The card's budget sentence, checked against a real dataset: pieces are filled in order
    (splits, then domains), each up to its budget plus what earlier pieces left unused, so one
    piece may pass its own budget but the running total never passes the running budget, and
    the total falls short by less than one sequence of the last piece."""
    example = Path(__file__).resolve().parents[2] / "examples" / "synth" / "seqthetic.yaml"
    manifest = build_dataset(load_spec(example, num_tokens="200K"), tmp_path / "d", quiet=True)
    card = (tmp_path / "d" / "README.md").read_text()
    written = budgeted = 0
    over = []
    for split in SPLITS:
        for name, piece in manifest["splits"][split]["domains"].items():
            carried = budgeted - written
            assert piece["tokens"] <= piece["budget"] + carried, (split, name)
            written, budgeted = written + piece["tokens"], budgeted + piece["budget"]
            assert written <= budgeted, (split, name)
            if piece["tokens"] > piece["budget"]:
                over.append(f"{split}/{name} {piece['tokens']:,} of {piece['budget']:,}")
    assert budgeted == 200_000 and written == manifest["num_tokens"]
    assert over, "some piece uses budget left over by an earlier one"
    assert f"So a piece can exceed its own budget ({over[0]}" in card
    assert "never exceed the sum of their budgets" in card
    domains = np.load(tmp_path / "d" / "test.domains.npy")
    last_piece = TokenStore(tmp_path / "d" / "test").sizes[domains == domains[-1]]
    assert 0 < 200_000 - written < last_piece.max()  # less than a sequence of the last piece
    assert f"{200_000 - written:,} tokens short of the request" in card
    assert "stops before the sequence that would overflow its budget" not in card


def test_an_old_dataset_a_killed_overwrite_moved_aside_is_removed(tmp_path):
    """``--overwrite`` moves the old dataset to ``OUT.tmp-PID-...`` before renaming the new one
    in; a kill between the two renames leaves it there, and the next run removes it (a writer
    that still runs keeps its own)."""
    from kill_runner import dead_pid

    aside = tmp_path / f"d.tmp-{dead_pid()}-0123abcd"
    (aside / "train").mkdir(parents=True)
    live = tmp_path / f"d.tmp-{os.getpid()}-0123abcd"
    live.mkdir()
    build_dataset(load_spec(MIXED), tmp_path / "d", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", live.name]
