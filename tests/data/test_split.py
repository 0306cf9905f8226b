"""`synthlm data split`: whole documents held out, none lost or duplicated, masks and provenance
kept, the same split for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.data.split import split_store
from synthlm.data.store import TokenStore, write_store
from synthlm.errors import StoreError


def make_store(tmp_path, n=40):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 300, size=int(rng.integers(1, 30))) for _ in range(n)]
    masks = [(rng.random(len(d)) < 0.5).astype(np.uint8) for d in docs]
    write_store(
        tmp_path / "web",
        docs,
        vocab_size=300,
        masks=masks,
        tokenizer={"path": "tok"},
        append_eod=True,
    )
    return docs, masks


def as_tuples(store):
    return [(tuple(store.document(i)), tuple(store.mask(i))) for i in range(len(store))]


def test_split_partitions_documents_in_order_with_masks(tmp_path):
    docs, masks = make_store(tmp_path)
    parts = split_store(tmp_path / "web", 0.1, seed=3)
    train, valid = as_tuples(parts["train"]), as_tuples(parts["valid"])
    assert len(valid) == 4 and len(train) == 36
    original = [(tuple(d), tuple(m)) for d, m in zip(docs, masks)]
    assert sorted(train + valid) == sorted(original), "every document exactly once"
    assert train == [doc for doc in original if doc not in valid], "input order kept"
    meta = parts["valid"].metadata
    assert meta["tokenizer"] == {"path": "tok"} and meta["append_eod"] is True
    assert meta["split_from"]["part"] == "valid" and meta["split_from"]["seed"] == 3


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    make_store(tmp_path)
    a = as_tuples(split_store(tmp_path / "web", 0.2, out=tmp_path / "a", seed=1)["valid"])
    b = as_tuples(split_store(tmp_path / "web", 0.2, out=tmp_path / "b", seed=1)["valid"])
    c = as_tuples(split_store(tmp_path / "web", 0.2, out=tmp_path / "c", seed=2)["valid"])
    assert a == b and a != c


def test_cli_split_and_bad_fraction(tmp_path):
    make_store(tmp_path)
    done = run_cli(
        "data",
        "split",
        str(tmp_path / "web"),
        "--valid-fraction",
        "0.25",
        "--out",
        str(tmp_path / "s"),
    )
    assert done.returncode == 0, done.stderr
    assert (
        len(TokenStore(tmp_path / "s_valid")) == 10 and len(TokenStore(tmp_path / "s_train")) == 30
    )
    bad = run_cli("data", "split", str(tmp_path / "web"), "--valid-fraction", "1.5")
    assert bad.returncode == 2 and "--valid-fraction" in bad.stderr


def test_each_part_keeps_the_stores_bytes_per_token(tmp_path):
    """Bits per byte of a held-out part must use its own share of the text bytes: copying the
    whole store's count would understate bpb by the split fraction (20x for 5%)."""
    docs = [np.arange(n) % 50 for n in (10, 30, 20, 40)]
    write_store(tmp_path / "s", docs, vocab_size=50, num_bytes=4000)  # 100 tokens, 40 bytes each
    parts = split_store(tmp_path / "s", 0.25, seed=0)
    for part in parts.values():
        assert part.metadata["num_bytes"] == 40 * part.num_tokens


def test_cli_split_again_needs_overwrite(tmp_path):
    """A second split must not silently replace the stores earlier runs trained and scored on
    (as data merge and tokenize, it needs --overwrite)."""
    make_store(tmp_path)
    web = str(tmp_path / "web")
    assert run_cli("data", "split", web, "--valid-fraction", "0.25").returncode == 0
    before = {p: (tmp_path / f"web_{p}.bin").read_bytes() for p in ("train", "valid")}
    again = run_cli("data", "split", web, "--valid-fraction", "0.1")
    assert again.returncode == 2, again.stderr
    assert f"{tmp_path / 'web_train'}: a token store already exists" in again.stderr
    assert "pass --overwrite to replace it" in again.stderr
    assert {p: (tmp_path / f"web_{p}.bin").read_bytes() for p in before} == before
    replaced = run_cli("data", "split", web, "--valid-fraction", "0.1", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert len(TokenStore(tmp_path / "web_valid")) == 4


def test_split_refuses_an_existing_valid_store_alone_and_the_input_as_output(tmp_path):
    make_store(tmp_path)
    write_store(tmp_path / "s_valid", [np.arange(3)], vocab_size=300)
    with pytest.raises(StoreError, match="s_valid: a token store already exists"):
        split_store(tmp_path / "web", 0.25, out=tmp_path / "s")
    assert not (tmp_path / "s_train.bin").exists()
    write_store(tmp_path / "x_train", [np.arange(5), np.arange(4)], vocab_size=300)
    with pytest.raises(StoreError, match="is the input store"):
        split_store(tmp_path / "x_train", 0.5, out=tmp_path / "x", overwrite=True)
    assert len(TokenStore(tmp_path / "x_train")) == 2


def test_parts_of_a_synthetic_split_count_their_own_domains(tmp_path):
    """Each part used to copy the input's domain_counts and record counts; a part's are its
    own documents', read here from the dataset's domain index."""
    import json

    from synthlm.synth import build_dataset, load_spec

    spec = {
        "num_tokens": 6000,
        "seed": 1,
        "domains": [
            {"type": "copy", "vocab": {"num_vocab": 12}, "length": {"min": 2, "max": 6}},
            {"type": "reverse", "vocab": {"num_vocab": 12}, "length": {"min": 2, "max": 6}},
        ],
    }
    build_dataset(load_spec(spec), tmp_path / "d", quiet=True)
    parts = split_store(tmp_path / "d" / "train", 0.25, seed=0)
    owners = np.load(tmp_path / "d" / "train.domains.npy")
    train = TokenStore(tmp_path / "d" / "train")
    rows = {tuple(np.asarray(train.document(i)).tolist()): owners[i] for i in range(len(train))}
    for store in parts.values():
        meta = json.loads(store.prefix.with_suffix(".json").read_text())
        mine = [rows[tuple(np.asarray(store.document(i)).tolist())] for i in range(len(store))]
        assert meta["domain_counts"] == {"copy": mine.count(0), "reverse": mine.count(1)}
        assert "records" not in meta
