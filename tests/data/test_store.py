"""Token stores: exact Megatron format, interop with megatron-core, validation, atomic writes."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from synthlm.data.store import (
    TokenStore,
    TokenStoreWriter,
    bin_path,
    describe,
    dtype_for_vocab,
    idx_path,
    mask_prefix,
    merge_stores,
    meta_path,
    store_exists,
    write_store,
)
from synthlm.errors import StoreError


def random_docs(n: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=int(rng.integers(1, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def megatron_indexed():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets import indexed_dataset
    return indexed_dataset


def test_dtype_rule_follows_gpt_neox():
    assert dtype_for_vocab(50_257) == np.uint16
    assert dtype_for_vocab(65_499) == np.uint16
    assert dtype_for_vocab(65_500) == np.int32
    assert dtype_for_vocab(128_256) == np.int32


def test_index_layout_is_byte_exact(tmp_path):
    write_store(tmp_path / "s", [[1, 2, 3], [4, 5]], vocab_size=10)
    raw = idx_path(tmp_path / "s").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack("<Q", raw[9:17])[0] == 1
    assert raw[17] == 8  # uint16
    assert struct.unpack("<QQ", raw[18:34]) == (2, 3)
    assert np.frombuffer(raw, np.int32, 2, 34).tolist() == [3, 2]
    assert np.frombuffer(raw, np.int64, 2, 42).tolist() == [0, 6]
    assert np.frombuffer(raw, np.int64, 3, 58).tolist() == [0, 1, 2]
    assert bin_path(tmp_path / "s").read_bytes() == np.array([1, 2, 3, 4, 5], np.uint16).tobytes()


@pytest.mark.parametrize("vocab", [300, 100_000])
def test_megatron_core_reads_our_stores(tmp_path, megatron_indexed, vocab):
    docs = random_docs(50, vocab)
    write_store(tmp_path / "ours", docs, vocab_size=vocab)
    theirs = megatron_indexed.IndexedDataset(str(tmp_path / "ours"))
    assert len(theirs) == len(docs)
    for i, doc in enumerate(docs):
        np.testing.assert_array_equal(theirs[i], doc)
    np.testing.assert_array_equal(theirs.get(3, offset=1, length=2), docs[3][1:3])


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_we_read_megatron_core_stores(tmp_path, megatron_indexed, dtype):
    docs = random_docs(40, 1000, seed=1)
    builder = megatron_indexed.IndexedDatasetBuilder(str(tmp_path / "theirs.bin"), dtype=dtype)
    for doc in docs:
        builder.add_document(np.asarray(doc, dtype=dtype), [len(doc)])
    builder.finalize(str(tmp_path / "theirs.idx"))
    ours = TokenStore(tmp_path / "theirs", vocab_size=1000)
    assert ours.dtype == dtype and len(ours) == len(docs)
    for i, doc in enumerate(docs):
        np.testing.assert_array_equal(ours[i], doc)
    flat = np.concatenate(docs)
    np.testing.assert_array_equal(ours.tokens(10, 50), flat[10:50])


def test_random_access_and_masks(tmp_path):
    docs = random_docs(20, 500, seed=2)
    masks = [np.arange(len(d)) % 2 for d in docs]
    store = write_store(
        tmp_path / "m", docs, vocab_size=500, masks=masks, tokenizer={"kind": "test"}
    )
    assert store.has_mask and store_exists(mask_prefix(tmp_path / "m"))
    np.testing.assert_array_equal(store.document(5, offset=1, length=3), docs[5][1:4])
    np.testing.assert_array_equal(store.mask(7), masks[7])
    assert store.metadata["tokenizer"] == {"kind": "test"}
    assert store.metadata["num_tokens"] == sum(len(d) for d in docs)
    assert describe(store)["documents"] == 20


def test_bad_magic_is_named(tmp_path):
    write_store(tmp_path / "s", [[1, 2]], vocab_size=10)
    raw = bytearray(idx_path(tmp_path / "s").read_bytes())
    raw[:3] = b"XXX"
    idx_path(tmp_path / "s").write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"s\.idx: not a Megatron"):
        TokenStore(tmp_path / "s")


def test_truncated_index_is_named(tmp_path):
    write_store(tmp_path / "s", [[1, 2], [3]], vocab_size=10)
    raw = idx_path(tmp_path / "s").read_bytes()
    idx_path(tmp_path / "s").write_bytes(raw[:-5])
    with pytest.raises(StoreError, match=r"s\.idx: truncated index"):
        TokenStore(tmp_path / "s")


def test_bin_size_mismatch_is_named(tmp_path):
    write_store(tmp_path / "s", [[1, 2], [3]], vocab_size=10)
    with open(bin_path(tmp_path / "s"), "ab") as handle:
        handle.write(b"\x00\x00")
    with pytest.raises(StoreError, match=r"s\.bin: size .* does not match its index"):
        TokenStore(tmp_path / "s")


def test_ids_beyond_vocab_are_named(tmp_path):
    write_store(tmp_path / "s", [[1, 2], [3, 9]], vocab_size=10)
    with pytest.raises(
        StoreError, match=r"token id 9 in document 1 is outside the vocabulary of 5"
    ):
        TokenStore(tmp_path / "s", vocab_size=5)


def test_writer_rejects_ids_that_would_wrap(tmp_path):
    with (
        pytest.raises(StoreError, match="outside the vocabulary"),
        TokenStoreWriter(tmp_path / "w", vocab_size=100) as writer,
    ):
        writer.add([1, 2, 100])
    assert not store_exists(tmp_path / "w")


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no token store here"):
        TokenStore(tmp_path / "absent")


def test_exception_leaves_nothing_at_final_name(tmp_path):
    with pytest.raises(RuntimeError), TokenStoreWriter(tmp_path / "x", vocab_size=10) as writer:
        writer.add([1, 2])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


KILL_SCRIPT = """
import sys, time, numpy as np
from synthlm.data.store import TokenStoreWriter
with TokenStoreWriter(sys.argv[1], vocab_size=1000) as writer:
    for i in range(10**9):
        writer.add(np.arange(100) % 1000)
        if i == 100:
            print("writing", flush=True)
        if i > 100:
            time.sleep(0.001)
    writer.finalize()
"""


def test_sigkill_mid_write_leaves_no_store(tmp_path):
    prefix = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(prefix)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (
        not bin_path(prefix).exists()
        and not idx_path(prefix).exists()
        and not meta_path(prefix).exists()
    )
    assert any(".tmp-" in p.name for p in tmp_path.iterdir()), (
        "the writer was killed while writing its temp file"
    )


def test_merge_keeps_order_and_masks(tmp_path):
    a, b = random_docs(5, 50, 3), random_docs(7, 50, 4)
    write_store(tmp_path / "a", a, 50, masks=[np.ones(len(d)) for d in a])
    write_store(tmp_path / "b", b, 50, masks=[np.zeros(len(d)) for d in b])
    merged = merge_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    assert len(merged) == 12 and merged.has_mask
    for i, doc in enumerate(a + b):
        np.testing.assert_array_equal(merged[i], doc)
    assert merged.mask(0).all() and not merged.mask(11).any()
    assert merged.metadata["merged_from"] == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_merge_refuses_mixed_dtypes(tmp_path):
    write_store(tmp_path / "a", [[1]], 50)
    write_store(tmp_path / "b", [[1]], 100_000)
    with pytest.raises(StoreError, match="different dtypes"):
        merge_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")


def test_overwriting_without_a_mask_drops_the_old_mask(tmp_path):
    write_store(tmp_path / "s", [[1, 2, 3]], 10, masks=[[0, 0, 1]])
    store = write_store(tmp_path / "s", [[4, 5, 6]], 10)
    assert not store.has_mask and not TokenStore(tmp_path / "s").has_mask
