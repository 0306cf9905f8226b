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


@pytest.fixture(scope="module")
def train_only(tmp_path_factory):
    """A dataset whose spec writes everything to train, as examples/synth/shuffle_dyck.yaml does:
    the manifest marks valid and test absent and no store is written for them."""
    out = tmp_path_factory.mktemp("ds") / "train_only"
    spec = load_spec(
        {
            "num_tokens": "2K",
            "seed": 1,
            "splits": {"train": 1.0, "valid": 0.0, "test": 0.0},
            "domains": [{"type": "dyck"}],
        }
    )
    build_dataset(spec, out, quiet=True)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    assert splits["valid"]["absent"] and splits["test"]["absent"]
    return out


def export_cli(dataset, out, *extra: str):
    return run_cli(
        "synth", "export", str(dataset), "--out", str(out), "--offset", "260", "--eod", "2", *extra
    )


def test_export_skips_absent_splits_and_says_so(tmp_path, train_only):
    done = export_cli(train_only, tmp_path / "x")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "absent" in line]
    assert len(notes) == 1 and "valid, test" in notes[0], done.stderr
    info = json.loads((tmp_path / "x" / "export.json").read_text())
    assert list(info["splits"]) == ["train"] and info["absent_splits"] == ["valid", "test"]
    store = load_synthetic(train_only).split("train")
    assert info["splits"]["train"]["documents"] == len(store)
    assert sorted(p.name for p in (tmp_path / "x").glob("valid*")) == []


def test_an_explicitly_requested_absent_split_fails_before_writing(tmp_path, train_only):
    done = export_cli(train_only, tmp_path / "x", "--split", "train", "--split", "valid")
    assert done.returncode == 2
    assert "--split 'valid'" in done.stderr and "absent" in done.stderr
    assert "choose from train" in done.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_export_checks_store_ids_before_writing_any_split(tmp_path, dataset):
    """A corrupt id in the last split must stop the export before train is written."""
    import shutil

    from synthlm.data.store import bin_path

    copy = tmp_path / "d"
    shutil.copytree(dataset, copy)
    store = load_synthetic(copy).split("test")
    raw = np.fromfile(bin_path(copy / "test"), dtype=store.dtype)
    raw[-1] = load_synthetic(copy).vocab_size  # one past the synthetic vocabulary
    raw.tofile(bin_path(copy / "test"))
    done = export_cli(copy, tmp_path / "x")
    assert done.returncode == 2 and "outside the vocabulary" in done.stderr, done.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_export_refuses_an_out_path_that_is_a_file_before_writing(tmp_path, dataset):
    (tmp_path / "x").write_text("not a directory")
    done = export_cli(dataset, tmp_path / "x" / "sub")
    assert done.returncode == 2 and "is a file, not a directory" in done.stderr, done.stderr


def test_export_refuses_a_vocabulary_past_int32(tmp_path, dataset):
    done = export_cli(dataset, tmp_path / "x", "--vocab-size", str(2**31 + 1))
    assert done.returncode == 2 and "int32" in done.stderr, done.stderr
    assert not (tmp_path / "x").exists()


def test_a_second_export_into_the_same_out_needs_overwrite(tmp_path, train_only):
    out = tmp_path / "x"
    assert export_cli(train_only, out).returncode == 0
    before = (out / "train_text_document.bin").read_bytes()
    again = export_cli(train_only, out, "--offset", "300")  # the later --offset wins
    assert again.returncode == 2, again.stderr
    assert "already holds an export" in again.stderr and "--overwrite" in again.stderr
    assert (out / "train_text_document.bin").read_bytes() == before  # untouched
    replaced = export_cli(train_only, out, "--offset", "300", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((out / "export.json").read_text())["offset"] == 300


def test_an_offset_among_the_tokenizers_ids_is_refused(tmp_path, dataset):
    """Synthetic ids below the tokenizer's vocabulary size would collide with natural ids: the
    very thing the export exists to prevent."""
    tok = train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)
    local = load_synthetic(dataset).vocab_size
    args = ["--tokenizer", str(tmp_path / "tok"), "--eod", "0"]
    low = export_cli_args(dataset, tmp_path / "x", *args, "--offset", "100")
    assert low.returncode == 2, low.stderr
    assert f"--offset 100 is below the --tokenizer's vocabulary size {tok.vocab_size}" in low.stderr
    assert f"synthetic ids 100..{100 + local - 1} would collide" in low.stderr
    assert not (tmp_path / "x").exists()
    done = export_cli_args(dataset, tmp_path / "x", *args, "--offset", str(tok.vocab_size))
    assert done.returncode == 0, done.stderr


def test_a_vocab_too_small_names_what_needs_the_ids(tmp_path, dataset):
    """The ids that do not fit come from --eod, or from the synthetic range: said as such."""
    local = load_synthetic(dataset).vocab_size
    vocab, eod = 512 + local, 512 + local + 100
    by_eod = export_cli_args(
        dataset, tmp_path / "x", "--offset", "512", "--eod", str(eod), "--vocab-size", str(vocab)
    )
    assert by_eod.returncode == 2, by_eod.stderr
    assert f"ids up to {eod} are needed (--eod {eod})" in by_eod.stderr
    assert "synthetic ids" not in by_eod.stderr
    by_range = export_cli_args(
        dataset, tmp_path / "x", "--offset", "512", "--eod", "0", "--vocab-size", "520"
    )
    assert by_range.returncode == 2, by_range.stderr
    assert f"--offset 512 + {local} synthetic ids" in by_range.stderr
    assert "--eod" not in by_range.stderr
    assert not (tmp_path / "x").exists()


def export_cli_args(dataset, out, *args: str):
    return run_cli("synth", "export", str(dataset), "--out", str(out), *args)


def test_an_eod_the_tokenizer_reads_as_text_is_refused(tmp_path, dataset):
    """With --tokenizer, --eod must be one of its special ids: byte 101 is ``e``, so every
    exported document would end with a letter (it used to be accepted)."""
    tok = train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)
    args = ["--tokenizer", str(tmp_path / "tok")]
    text_id = tok.encode("e")[0]
    refused = export_cli_args(dataset, tmp_path / "x", *args, "--eod", str(text_id))
    assert refused.returncode == 2, refused.stderr
    assert f"--eod {text_id}: an ordinary token of the tokenizer" in refused.stderr
    assert f"eos {tok.eos_id}" in refused.stderr and "'e'" in refused.stderr
    assert not (tmp_path / "x").exists()
    done = export_cli_args(dataset, tmp_path / "x", *args, "--eod", str(tok.eos_id))
    assert done.returncode == 0, done.stderr
