"""The tokenize pipeline: one store per key, identical bytes for any worker count or sharding,
bad records handled both ways, and nothing at the final name after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.data import readers
from synthlm.data.store import TokenStore, merge_stores, store_exists
from synthlm.data.tokenization import tokenize
from synthlm.errors import UserError
from synthlm.tokenizers import load_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def documents(shakespeare: Path) -> list[str]:
    text = shakespeare.read_text(encoding="utf-8")
    return [d for d in text.split("\n\n") if d]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, shakespeare: Path) -> Path:
    out = tmp_path_factory.mktemp("tok") / "bpe"
    train_tokenizer([shakespeare], "bpe", 800, out, txt_mode="line", extra_tokens=4, quiet=True)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, documents: list[str]) -> Path:
    """All of tinyshakespeare as jsonl, with a title per document."""
    path = tmp_path_factory.mktemp("data") / "plays.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i, doc in enumerate(documents):
            handle.write(json.dumps({"text": doc, "title": f"Scene {i}"}) + "\n")
    return path


def store_bytes(prefix: Path) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.bin").read_bytes(), Path(f"{prefix}.idx").read_bytes()


def decoded(prefix: Path, tok) -> list[str]:
    store = TokenStore(prefix)
    return [tok.decode(store.document(i).tolist()) for i in range(len(store))]


@pytest.fixture
def small_chunks(monkeypatch):
    """Many chunks from little data, so ordering across workers is really exercised."""
    monkeypatch.setattr(readers, "CHUNK_RECORDS", 97)


def test_each_key_gets_its_own_store_from_its_own_field(tmp_path, corpus, tok_dir, documents):
    stats = tokenize(
        [corpus], tok_dir, tmp_path / "plays", keys=["text", "title"], workers=1, quiet=True
    )
    tok = load_tokenizer(tok_dir)
    text_prefix, title_prefix = tmp_path / "plays_text_document", tmp_path / "plays_title_document"
    assert stats["outputs"] == {"text": str(text_prefix), "title": str(title_prefix)}
    assert decoded(text_prefix, tok) == documents
    assert decoded(title_prefix, tok) == [f"Scene {i}" for i in range(len(documents))]
    assert stats["documents"] == {"text": len(documents), "title": len(documents)}
    assert stats["tokens"]["text"] == TokenStore(text_prefix).num_tokens
    stored = np.asarray(TokenStore(text_prefix).tokens(0, stats["tokens"]["text"]))
    assert stored.tolist() == [
        i for ids in tok.encode_batch(documents) for i in ids
    ]  # exactly the tokenizer's ids


def test_output_is_byte_identical_for_any_worker_count(tmp_path, corpus, tok_dir, small_chunks):
    for workers in (1, 2, 3):
        tokenize(
            [corpus],
            tok_dir,
            tmp_path / f"w{workers}",
            keys=["text", "title"],
            append_eod=True,
            workers=workers,
            quiet=True,
        )
    for key in ("text", "title"):
        reference = store_bytes(tmp_path / f"w1_{key}_document")
        assert store_bytes(tmp_path / f"w2_{key}_document") == reference
        assert store_bytes(tmp_path / f"w3_{key}_document") == reference


def test_shards_merged_in_order_equal_the_unsharded_store(tmp_path, corpus, tok_dir, small_chunks):
    again = tmp_path / "again.jsonl"  # a second file (one file named twice is refused)
    again.write_bytes(Path(corpus).read_bytes())
    tokenize([corpus, again], tok_dir, tmp_path / "all", max_docs=5000, workers=2, quiet=True)
    parts = []
    for shard in range(3):
        tokenize(
            [corpus, again],
            tok_dir,
            tmp_path / f"part{shard}",
            shard=shard,
            num_shards=3,
            max_docs=5000,
            workers=1,
            quiet=True,
        )
        parts.append(tmp_path / f"part{shard}_text_document")
    sizes = [len(TokenStore(p)) for p in parts]
    assert sum(sizes) == 5000 and max(sizes) - min(sizes) <= 1
    merge_stores(parts, tmp_path / "merged")
    assert store_bytes(tmp_path / "merged") == store_bytes(tmp_path / "all_text_document")


def test_append_eod_and_prepend_bos_wrap_every_document(tmp_path, corpus, tok_dir, documents):
    tokenize(
        [corpus],
        tok_dir,
        tmp_path / "x",
        append_eod=True,
        prepend_bos=True,
        max_docs=50,
        workers=1,
        quiet=True,
    )
    tok = load_tokenizer(tok_dir)
    store = TokenStore(tmp_path / "x_text_document")
    for i in range(len(store)):
        ids = store.document(i).tolist()
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids[1:-1]) == documents[i]
    meta = store.metadata
    assert meta["append_eod"] is True and meta["prepend_bos"] is True
    assert meta["tokenizer"] == tok.describe()
    assert meta["special_ids"] == {"unk": 0, "bos": 1, "eos": 2, "pad": 3}
    assert meta["source_files"] == [str(corpus.resolve())]
    assert meta["records"] == 50 and meta["vocab_size"] == 800 and meta["key"] == "text"


@pytest.fixture
def messy(tmp_path) -> Path:
    path = tmp_path / "messy.jsonl"
    path.write_bytes(
        b'{"text": "good one"}\n'
        b"{broken\n"
        b'{"text": ""}\n'
        b'{"other": 1}\n'
        b'{"text": "bad \xff byte"}\n'
        b'{"text": "good two"}\n'
    )
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_skip_counts_bad_records_with_file_and_line(tmp_path, messy, tok_dir, workers):
    stats = tokenize([messy], tok_dir, tmp_path / "m", workers=workers, quiet=True)
    tok = load_tokenizer(tok_dir)
    assert decoded(tmp_path / "m_text_document", tok) == ["good one", "good two"]
    assert stats["records"] == 6 and stats["empty"] == {"text": 1} and stats["bad_records"] == 3
    assert [e.split(": ", 1)[0] for e in stats["bad_examples"]] == [
        f"{messy}:2",
        f"{messy}:4",
        f"{messy}:5",
    ]
    assert TokenStore(tmp_path / "m_text_document").metadata["bad_records"] == 3


def test_fail_stops_at_the_first_bad_record_and_writes_nothing(tmp_path, messy, tok_dir):
    with pytest.raises(UserError, match=rf"^{messy}:2: invalid JSON"):
        tokenize([messy], tok_dir, tmp_path / "m", on_error="fail", workers=2, quiet=True)
    assert list(tmp_path.glob("m_*")) == []


def test_csv_bytes_that_are_not_utf8_are_bad_records(tmp_path, tok_dir):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text\nfine\nnot \xfe fine\n")
    stats = tokenize([path], tok_dir, tmp_path / "c", workers=1, quiet=True)
    assert stats["documents"] == {"text": 1}
    assert stats["bad_examples"] == [
        f"{path}:3: not valid UTF-8 (undecodable character at offset 4)"
    ]


def test_txt_line_mode_and_max_docs(tmp_path, tok_dir):
    path = tmp_path / "lines.txt"
    path.write_text("alpha\n\nbeta\ngamma\n", encoding="utf-8")
    stats = tokenize(
        [path], tok_dir, tmp_path / "l", txt_mode="line", max_docs=3, workers=1, quiet=True
    )
    assert decoded(tmp_path / "l_text_document", load_tokenizer(tok_dir)) == ["alpha", "beta"]
    assert stats["records"] == 3 and stats["empty"] == {"text": 1}


def test_ftfy_repairs_mojibake_before_encoding(tmp_path, tok_dir):
    path = tmp_path / "m.jsonl"
    path.write_text(
        json.dumps({"text": "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows."}) + "\n", encoding="utf-8"
    )
    tokenize([path], tok_dir, tmp_path / "f", ftfy=True, workers=1, quiet=True)
    assert decoded(tmp_path / "f_text_document", load_tokenizer(tok_dir)) == [
        "The Mona Lisa doesn't have eyebrows."
    ]


def test_existing_outputs_need_overwrite_or_skip(tmp_path, messy, tok_dir):
    tokenize([messy], tok_dir, tmp_path / "e", workers=1, quiet=True)
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        tokenize([messy], tok_dir, tmp_path / "e", workers=1, quiet=True)
    assert (
        tokenize([messy], tok_dir, tmp_path / "e", skip_existing=True, quiet=True)["skipped"]
        is True
    )
    assert (
        tokenize([messy], tok_dir, tmp_path / "e", overwrite=True, workers=1, quiet=True)["records"]
        == 6
    )


def test_bad_options_fail_before_any_work(tmp_path, messy, tok_dir):
    cases = [
        ({"on_error": "ignore"}, "--on-error 'ignore': choose one of skip, fail"),
        ({"shard": 3, "num_shards": 3}, "need 0 <= shard < num-shards"),
        ({"keys": ["a/b"]}, "cannot be empty, contain '/'"),
        ({"txt_mode": "para"}, "--txt-mode 'para'"),
        ({"workers": 0}, "--workers must be >= 1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            tokenize([messy], tok_dir, tmp_path / "o", quiet=True, **kwargs)
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}))
    (gpt2 / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(UserError, match="has no eos token"):
        tokenize([messy], gpt2, tmp_path / "o", append_eod=True, quiet=True)
    assert list(tmp_path.glob("o_*")) == []


def test_byte_tokenizer_writes_utf8_bytes_plus_four_as_uint16(tmp_path, messy):
    tokenize([messy], "byte", tmp_path / "b", workers=1, quiet=True)
    store = TokenStore(tmp_path / "b_text_document")
    assert store.dtype == np.uint16
    assert bytes((np.asarray(store.document(0)) - 4).astype(np.uint8)) == b"good one"
    assert store.metadata["tokenizer"]["path"] == "byte"


def test_cli_keys_take_several_values_and_print_progress(tmp_path, corpus, tok_dir):
    result = run_cli(
        "tokenize",
        str(corpus),
        "--tokenizer",
        str(tok_dir),
        "--out",
        str(tmp_path / "c"),
        "--keys",
        "text",
        "title",
        "--max-docs",
        "300",
        "--workers",
        "2",
        "--append-eod",
    )
    assert result.returncode == 0, result.stderr
    assert store_exists(tmp_path / "c_text_document") and store_exists(
        tmp_path / "c_title_document"
    )
    assert "docs/s" in result.stderr and "tok/s" in result.stderr  # the progress bar
    assert "wrote" in result.stdout and "300 documents" in result.stdout


def test_cli_fail_exits_2_with_file_and_line(tmp_path, messy, tok_dir):
    result = run_cli(
        "tokenize",
        str(messy),
        "-t",
        str(tok_dir),
        "-o",
        str(tmp_path / "m"),
        "--on-error",
        "fail",
        "--quiet",
    )
    assert result.returncode == 2
    assert f"error: {messy}:2: invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigkill_leaves_no_store_and_a_rerun_writes_it_whole(tmp_path, documents, tok_dir):
    """A killed run must not leave a truncated store that training would silently read."""
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for doc in documents * 4:
            handle.write(json.dumps({"text": doc}) + "\n")
    out, prefix = tmp_path / "out" / "big", tmp_path / "out" / "big_text_document"
    args = [
        sys.executable,
        "-m",
        "synthlm",
        "tokenize",
        str(path),
        "-t",
        str(tok_dir),
        "-o",
        str(out),
        "--workers",
        "1",
        "--quiet",
    ]
    process = subprocess.Popen(
        args, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    work = tmp_path / "out" / ".big.tokenize-partial"
    while not (work / "state.json").is_file():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the temporary store never appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not store_exists(prefix) and not Path(f"{prefix}.json").exists()
    assert (work / "big_text_document.bin").is_file()  # the kill really was mid-run

    result = run_cli(
        "tokenize", str(path), "-t", str(tok_dir), "-o", str(out), "--workers", "2", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert len(TokenStore(prefix)) == 4 * len(documents)
    assert not list((tmp_path / "out").glob("*.tmp-*")) and not work.exists()
    tokenize([path], tok_dir, tmp_path / "ref", workers=1, quiet=True)
    assert store_bytes(prefix) == store_bytes(tmp_path / "ref_text_document")


def test_a_killed_overwrite_is_finished_only_when_overwrite_is_asked_again(tmp_path):
    """A run killed while replacing a store (--overwrite) must not complete the replacement on a
    rerun that did not ask for it: the old store stays until --overwrite is given again."""
    from kill_runner import run_killed_at

    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text("".join(json.dumps({"text": f"old {i}"}) + "\n" for i in range(20)))
    new.write_text("".join(json.dumps({"text": f"new text {i}"}) + "\n" for i in range(30)))
    out, prefix = tmp_path / "o", tmp_path / "o_text_document"
    tokenize([old], "byte", out, workers=1, quiet=True)
    before = store_bytes(prefix)
    args = ["tokenize", str(new), "-t", "byte", "-o", str(out), "-w", "1", "-q", "--overwrite"]
    killed = run_killed_at("synthlm.data.store:TokenStoreWriter.finalize", 0, *args)
    assert killed == -signal.SIGKILL
    refused = run_cli(*args[:-1])
    assert refused.returncode == 2, refused.stderr
    assert "was replacing it (--overwrite); pass --overwrite to finish" in refused.stderr
    assert store_bytes(prefix) == before
    assert run_cli(*args).returncode == 0
    tokenize([new], "byte", tmp_path / "ref", workers=1, quiet=True)
    assert store_bytes(prefix) == store_bytes(tmp_path / "ref_text_document")


def test_store_records_utf8_bytes_of_its_text_for_bits_per_byte(tmp_path):
    from synthlm.data.tokenization import tokenize

    (tmp_path / "a.jsonl").write_text(
        '{"text": "héllo world"}\n{"text": "abc"}\n{"text": ""}\n', encoding="utf-8"
    )
    tokenize([tmp_path / "a.jsonl"], "byte", tmp_path / "out", quiet=True)
    meta = json.loads((tmp_path / "out_text_document.json").read_text())
    assert meta["num_bytes"] == len("héllo world".encode()) + 3


def test_a_wrong_key_or_an_empty_input_writes_no_store_and_says_why(tmp_path, corpus, tok_dir):
    """Every record skipped (a mistyped --keys) used to publish a 0-document store with exit 0;
    training would then fail far from the cause, or a rerun say the store already exists."""
    wrong = run_cli(
        "tokenize", str(corpus), "-t", str(tok_dir), "-o", str(tmp_path / "w"), "--keys", "txt"
    )
    assert wrong.returncode == 2, wrong.stderr
    assert "no documents for key txt:" in wrong.stderr
    assert "missing key 'txt' (keys present:" in wrong.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    none = run_cli("tokenize", str(empty), "-t", str(tok_dir), "-o", str(tmp_path / "e"))
    assert none.returncode == 2 and "the input held 0 records" in none.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl"]  # nothing published


def test_more_shards_than_records_leaves_empty_parts_that_merge_to_the_whole(tmp_path, capsys):
    """A SLURM array of 4 tasks over 3 records: the task dealt nothing used to fail (exit 2),
    so the array failed and the merge had a part missing."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("a b", "c d", "e")))
    parts = []
    for shard in range(4):
        tokenize([source], "byte", tmp_path / f"p{shard}", shard=shard, num_shards=4, quiet=True)
        parts.append(tmp_path / f"p{shard}_text_document")
    assert sorted(len(TokenStore(p)) for p in parts) == [0, 1, 1, 1]
    assert "was dealt no records" in capsys.readouterr().err
    tokenize([source], "byte", tmp_path / "whole", quiet=True)
    merge_stores(parts, tmp_path / "merged")
    assert store_bytes(tmp_path / "merged") == store_bytes(tmp_path / "whole_text_document")


@pytest.mark.parametrize("chat", [False, True], ids=["text", "chat"])
def test_blank_jsonl_lines_are_accounted_for(tmp_path, chat):
    """Every line read is a document, an empty or bad record, or a blank line: the counts add up
    to the records read (blank lines used to be counted in ``records`` and nowhere else)."""
    if chat:
        turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
        lines = [json.dumps({"messages": turn}), "", json.dumps({"messages": turn}), "  ", ""]
    else:
        lines = [json.dumps({"text": "a b"}), "", json.dumps({"text": ""}), "  ", "{bad", ""]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    stats = tokenize([path], "byte", tmp_path / "o", quiet=True, workers=1, chat=chat)
    key = "messages" if chat else "text"
    assert stats["blank_lines"] == 3
    parts = stats["documents"][key] + stats["empty"][key] + stats["bad_records"]
    assert parts + stats["blank_lines"] == stats["records"] == len(lines)
    meta = json.loads((tmp_path / f"o_{key}_document.json").read_text())
    assert meta["blank_lines"] == 3
