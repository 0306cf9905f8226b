"""A merged store is read as its inputs were: the framing its documents carry (EOS at the end,
BOS at the start) and its text bytes travel with it, and stores framed differently are refused.

Before, ``data merge`` dropped ``append_eod``: the mixture then added a second EOS after every
document of a merged ``--append-eod`` store.
"""

from __future__ import annotations

import itertools
import json

import pytest

from run_helpers import synthlm
from synthlm.data.mixture import DataConfig, Mixture, build_layout
from synthlm.data.store import TokenStore, merge_stores, write_store
from synthlm.errors import StoreError

BOS, EOS, VOCAB = 1, 2, 64


def framed(prefix, docs, **metadata):
    """Documents as ``tokenize --prepend-bos --append-eod`` writes them: BOS ... EOS."""
    return write_store(prefix, [[BOS, *d, EOS] for d in docs], vocab_size=VOCAB, **metadata)


def test_merged_store_keeps_framing_counts_and_sources(tmp_path):
    common = {"append_eod": True, "prepend_bos": True, "txt_mode": "file", "shard": 0}
    framed(tmp_path / "a", [[10, 11], [12]], num_bytes=30, source_files=["a.csv"], **common)
    common["shard"] = 1
    framed(tmp_path / "b", [[13, 14, 15]], num_bytes=12, source_files=["b.csv"], **common)
    merged = merge_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    meta = merged.metadata
    assert meta["append_eod"] is True and meta["prepend_bos"] is True
    assert meta["txt_mode"] == "file" and "shard" not in meta  # shared kept, differing dropped
    assert meta["num_bytes"] == 42 and meta["source_files"] == ["a.csv", "b.csv"]
    assert meta["num_documents"] == 3


def test_the_mixture_reads_a_merged_store_as_the_same_documents_written_at_once(tmp_path):
    docs = [[10, 11], [12], [13, 14, 15], [16, 17]]
    framed(tmp_path / "a", docs[:2], append_eod=True)
    framed(tmp_path / "b", docs[2:], append_eod=True)
    merge_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    framed(tmp_path / "whole", docs, append_eod=True)

    def samples(name):
        data = DataConfig(sources=[{"name": "s", "path": str(tmp_path / name)}], seq_len=4)
        mixture = Mixture(data, seed=0, layout=build_layout(data, VOCAB, 0), eos_id=EOS)
        return [mixture.sample(i).input_ids.tolist() for i in range(4)]

    merged = samples("m")
    assert merged == samples("whole")
    flat = [t for row in merged for t in row]
    assert all((a, b) != (EOS, EOS) for a, b in itertools.pairwise(flat)), "no second EOS"


def test_stores_framed_differently_are_refused_by_name(tmp_path):
    framed(tmp_path / "a", [[10]], append_eod=True)
    write_store(tmp_path / "b", [[11, 12]], vocab_size=VOCAB, append_eod=False)
    with pytest.raises(StoreError, match=r"differ in append_eod .*a: true, .*b: false"):
        merge_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    done = synthlm(
        "data", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "m")
    )
    assert done.returncode == 2
    assert "--append-eod for all or none" in done.stderr
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.idx").exists()


def test_a_store_without_a_record_is_not_taken_for_one_with_eos(tmp_path):
    framed(tmp_path / "a", [[10]], append_eod=True)
    write_store(tmp_path / "other", [[11, 12]], vocab_size=VOCAB)  # another tool: no record
    with pytest.raises(StoreError, match="not recorded"):
        merge_stores([tmp_path / "a", tmp_path / "other"], tmp_path / "m")
    assert json.loads((tmp_path / "a.json").read_text())["append_eod"] is True
    assert TokenStore(tmp_path / "a").num_tokens == 3
