"""``synthlm synth export``: stores in a model's global id space with EOD, read by megatron-core.

The expected stores are built here from the definition (each local id + offset, then EOD; NeoX
labels: the token where the loss mask is 1, else -100), not by calling the exporter.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.synth import build_dataset, load_spec, load_synthetic
from synthlm.tokenizers import train_tokenizer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
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


def test_export_writes_global_ids_with_eod_and_neox_labels(tmp_path, dataset):
    from megatron.core.datasets.indexed_dataset import IndexedDataset  # the real reader

    tok = train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)  # 260 ids, eos 2
    done = run_cli(
        "synth",
        "export",
        str(dataset),
        "--out",
        str(tmp_path / "x"),
        "--tokenizer",
        str(tmp_path / "tok"),
    )
    assert done.returncode == 0, done.stderr
    ds = load_synthetic(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = IndexedDataset(str(tmp_path / "x" / "train_text_document"))
        labels = IndexedDataset(str(tmp_path / "x" / "train_label_document"))
    store = ds.split("train")
    assert len(text) == len(labels) == len(store)
    for i in range(len(store)):
        local, mask = np.asarray(store.document(i), np.int64), np.asarray(store.mask(i))
        expected = [*(local + tok.vocab_size).tolist(), tok.eos_id]
        assert text[i].tolist() == expected
        assert labels[i].tolist() == [
            t if m else -100 for t, m in zip(expected, [*mask.tolist(), 1])
        ]
        assert min(expected[:-1]) >= 260, "synthetic ids collide with natural ids"
    info = json.loads((tmp_path / "x" / "export.json").read_text())
    assert info["offset"] == 260 and info["eod"] == 2 and info["vocab_size"] == 260 + ds.vocab_size
    assert (
        json.loads((tmp_path / "x" / "train_text_document.json").read_text())["append_eod"] is True
    )


def test_export_refuses_an_eod_inside_the_synthetic_range_and_a_small_vocab(tmp_path, dataset):
    inside = run_cli(
        "synth",
        "export",
        str(dataset),
        "--out",
        str(tmp_path / "x"),
        "--offset",
        "100",
        "--eod",
        "101",
    )
    assert inside.returncode == 2 and "--eod 101 falls inside" in inside.stderr
    small = run_cli(
        "synth",
        "export",
        str(dataset),
        "--out",
        str(tmp_path / "x"),
        "--offset",
        "100",
        "--eod",
        "2",
        "--vocab-size",
        "101",
    )
    assert small.returncode == 2 and "--vocab-size 101 is too small" in small.stderr
    assert not (tmp_path / "x" / "train_text_document.bin").exists()
