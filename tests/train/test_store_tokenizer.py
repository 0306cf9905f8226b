"""A token store read with another tokenizer than the one that wrote it is refused, in training
and in evaluation, before any work: its ids would silently mean other tokens.

The stores here are written by the real ``synthlm tokenize``, which records its tokenizer in
``PREFIX.json``; the runs are the real ``synthlm train --dry-run`` and ``synthlm eval``.
"""

from __future__ import annotations

import pytest
from train_helpers import tiny_config, write_config

from cli_runner import run_cli
from synthlm.tokenizers import load_tokenizer, train_tokenizer

TEXT = "To be, or not to be, that is the question.\nWhether 'tis nobler in the mind to suffer.\n"


@pytest.fixture(scope="module")
def stores(tmp_path_factory, shakespeare):
    root = tmp_path_factory.mktemp("store-tokenizer")
    corpus = root / "corpus.txt"
    corpus.write_text(TEXT * 50, encoding="utf-8")
    train_tokenizer([shakespeare], "bpe", 300, root / "bpe", quiet=True)
    train_tokenizer([], "byte", None, root / "bytes", quiet=True)
    # the same BPE tokenizer saved again with a pad token and two ids appended (as a
    # checkpoint's copy can be): a different digest, the same ids for every recorded token
    load_tokenizer(root / "bpe").extend(pad=True, extra_tokens=2).save(root / "bpe_copy")
    for name in ("bpe", "bytes"):
        done = run_cli(
            "tokenize", str(corpus), "--tokenizer", str(root / name), "--out", str(root / name)
        )
        assert done.returncode == 0, done.stderr
    return root


def dry_run(tmp_path, stores, store: str, tokenizer: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = {"tok": stores / tokenizer, "web": stores / store, "cyclic": stores / store}
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, paths))
    return run_cli("train", str(config), "--dry-run")


def test_training_refuses_a_store_written_by_another_tokenizer(tmp_path, stores):
    done = dry_run(tmp_path, stores, "bytes_text_document", "bpe")
    assert done.returncode == 2, done.stderr
    assert "data.sources.0.path:" in done.stderr
    assert "was tokenized by another tokenizer (byte, 260 ids" in done.stderr
    assert "(bpe, 300 ids" in done.stderr and "Traceback" not in done.stderr


def test_the_same_tokenizer_or_a_resaved_copy_of_it_is_accepted(tmp_path, stores):
    assert dry_run(tmp_path / "a", stores, "bpe_text_document", "bpe").returncode == 0
    resaved = dry_run(tmp_path / "b", stores, "bpe_text_document", "bpe_copy")
    assert resaved.returncode == 0, resaved.stderr


def test_evaluation_refuses_it_before_loading_the_model(tmp_path, stores):
    # a directory with the BPE tokenizer and a config.json that is no model: the check comes
    # first, so the error is about the store, not the weights
    checkpoint = tmp_path / "ckpt"
    load_tokenizer(stores / "bpe").save(checkpoint)
    (checkpoint / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    store = stores / "bytes_text_document"
    done = run_cli("eval", str(checkpoint), "--data", str(store))
    assert done.returncode == 2, done.stderr
    assert f"--data {store}: {store} was tokenized by another tokenizer" in done.stderr


def test_a_store_that_records_no_tokenizer_is_read_with_a_note(tmp_path, stores):
    """Megatron's and GPT-NeoX's stores record nothing: taken as they are, but never silently."""
    import shutil

    for suffix in (".bin", ".idx"):
        shutil.copy(stores / f"bytes_text_document{suffix}", tmp_path / f"foreign{suffix}")
    done = dry_run(tmp_path / "run", stores, "bpe_text_document", "bpe")
    assert done.returncode == 0 and "records no tokenizer" not in done.stderr, done.stderr
    paths = {
        "tok": stores / "bpe",
        "web": tmp_path / "foreign",
        "cyclic": stores / "bpe_text_document",
    }
    config = write_config(tmp_path / "foreign.yaml", tiny_config(tmp_path / "f", paths))
    done = run_cli("train", str(config), "--dry-run")
    assert done.returncode == 0, done.stderr
    note = f"note: data.sources.0.path: {tmp_path / 'foreign'} records no tokenizer"
    assert done.stderr.count(note) == 1, done.stderr
    assert "read as this bpe tokenizer's (300 ids), unchecked" in done.stderr


def test_a_tokenizer_retrained_in_place_is_refused(tmp_path, shakespeare):
    """The store records tokenizer A at path P; P now holds tokenizer B (retrained there with
    --overwrite, as redoing a quickstart stage by hand does). Loading P to show the ids agree
    compared B with itself and let a BPE store be read as unigram ids."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 50, encoding="utf-8")
    train_tokenizer([shakespeare], "bpe", 400, tmp_path / "tok", quiet=True)
    done = run_cli(
        "tokenize", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "s")
    )
    assert done.returncode == 0, done.stderr
    train_tokenizer([shakespeare], "unigram", 400, tmp_path / "tok", quiet=True, overwrite=True)
    store = tmp_path / "s_text_document"
    paths = {"tok": tmp_path / "tok", "web": store, "cyclic": store}
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, paths))
    refused = run_cli("train", str(config), "--dry-run")
    assert refused.returncode == 2, refused.stderr
    assert "was tokenized by another tokenizer (bpe, 400 ids" in refused.stderr
