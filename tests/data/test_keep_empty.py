"""``tokenize --keep-empty``: empty documents kept in place as [bos], [eos] or [bos, eos].

Rocket trains on every CSV row, wikitext's empty lines included (as ``<s></s>``); synthlm skips
empty documents unless asked to keep them. A zero-length document is refused: it would not be
a document to every reader (see ``KEEP_EMPTY_NEEDS_SPECIALS``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.data import readers
from synthlm.data.encoding import Options
from synthlm.data.split import split_store
from synthlm.data.store import TokenStore, merge_stores
from synthlm.data.summary import inspect_report
from synthlm.data.tokenization import _fingerprint, tokenize
from synthlm.errors import UserError
from synthlm.tokenizers import load_tokenizer

BOS, EOS = 1, 2  # the byte tokenizer's (its text ids are UTF-8 bytes + 4)


def byte_ids(text: str) -> list[int]:
    return [b + 4 for b in text.encode("utf-8")]


def documents(prefix: Path) -> list[list[int]]:
    store = TokenStore(prefix)
    return [store.document(i).tolist() for i in range(len(store))]


@pytest.fixture
def mixed(tmp_path) -> Path:
    """Two keys: a record empty for one key may be bad for the other; a blank line and broken
    JSON are no records at all."""
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"text": "a", "title": ""}\n'
        '{"text": "", "title": 5}\n'
        '{"title": "t"}\n'
        "\n"
        "{broken\n"
        '{"text": "b", "title": "u"}\n'
        '{"text": " ", "title": ""}\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_empty_records_are_kept_in_place_for_each_key(tmp_path, mixed, monkeypatch, workers):
    monkeypatch.setattr(readers, "CHUNK_RECORDS", 3)  # the records span several chunks
    stats = tokenize(
        [mixed],
        "byte",
        tmp_path / "k",
        keys=["text", "title"],
        keep_empty=True,
        prepend_bos=True,
        append_eod=True,
        workers=workers,
        quiet=True,
    )
    wrap = [[BOS, *byte_ids(t), EOS] for t in ("a", "", "b", " ")]
    assert documents(tmp_path / "k_text_document") == wrap
    wrap = [[BOS, *byte_ids(t), EOS] for t in ("", "t", "u", "")]
    assert documents(tmp_path / "k_title_document") == wrap
    assert stats["empty"] == {"text": 1, "title": 2} and stats["keep_empty"] is True
    assert stats["bad_records"] == 3 and stats["documents"] == {"text": 4, "title": 4}
    meta = TokenStore(tmp_path / "k_title_document").metadata
    assert meta["keep_empty"] is True and meta["empty_documents"] == 2

    skipped = tokenize([mixed], "byte", tmp_path / "s", keys=["text", "title"], quiet=True)
    assert documents(tmp_path / "s_text_document") == [byte_ids(t) for t in ("a", "b", " ")]
    assert skipped["empty"] == stats["empty"] and skipped["keep_empty"] is False
    assert TokenStore(tmp_path / "s_text_document").metadata["keep_empty"] is False


@pytest.mark.parametrize(
    ("prepend_bos", "append_eod", "empty"),
    [(True, False, [BOS]), (False, True, [EOS]), (True, True, [BOS, EOS])],
)
def test_an_empty_document_is_its_specials(tmp_path, prepend_bos, append_eod, empty):
    path = tmp_path / "lines.txt"
    path.write_text("x\n\ny\n", encoding="utf-8")
    tokenize(
        [path],
        "byte",
        tmp_path / "l",
        txt_mode="line",
        keep_empty=True,
        prepend_bos=prepend_bos,
        append_eod=append_eod,
        workers=1,
        quiet=True,
    )
    head, tail = [BOS] * prepend_bos, [EOS] * append_eod
    x, y = ([*head, *byte_ids(t), *tail] for t in "xy")
    assert documents(tmp_path / "l_text_document") == [x, empty, y]


def test_empty_means_no_text_or_no_ids_and_whitespace_is_not_stripped(tmp_path):
    """Today's rule, kept: "" is empty; other text is empty only when the tokenizer encodes it to
    no ids (SentencePiece does so for whitespace, see tests/test_rocket_recipe.py); the byte
    tokenizer gives whitespace ids, so it is a document."""
    path = tmp_path / "ws.csv"
    path.write_text('text\n""\n" "\n"\t"\nz\n', encoding="utf-8")
    stats = tokenize([path], "byte", tmp_path / "w", workers=1, quiet=True)
    assert documents(tmp_path / "w_text_document") == [byte_ids(t) for t in (" ", "\t", "z")]
    assert stats["empty"] == {"text": 1}


def test_a_zero_length_document_is_refused_with_the_reason(tmp_path, mixed):
    with pytest.raises(UserError, match="--keep-empty needs --prepend-bos and/or --append-eod"):
        tokenize([mixed], "byte", tmp_path / "z", keep_empty=True, quiet=True)
    with pytest.raises(UserError, match="--keep-empty: --chat skips no empty documents"):
        tokenize([mixed], "byte", tmp_path / "z", chat=True, keep_empty=True, append_eod=True)
    result = run_cli(
        "tokenize", str(mixed), "-t", "byte", "-o", str(tmp_path / "z"), "--keep-empty"
    )
    assert result.returncode == 2, result.stderr
    assert "error: --keep-empty needs --prepend-bos and/or --append-eod" in result.stderr
    assert "megatron-core cannot open" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.jsonl"]  # nothing written


def test_cli_reports_kept_empties(tmp_path, mixed):
    kept = run_cli(
        "tokenize",
        str(mixed),
        "-t",
        "byte",
        "-o",
        str(tmp_path / "k"),
        "--keep-empty",
        "--append-eod",
        "--workers",
        "1",
    )
    assert kept.returncode == 0, kept.stderr
    assert "4 documents" in kept.stdout and "1 empty kept" in kept.stdout
    skipped = run_cli("tokenize", str(mixed), "-t", "byte", "-o", str(tmp_path / "s"), "-w", "1")
    assert skipped.returncode == 0, skipped.stderr
    assert "3 documents" in skipped.stdout and "1 empty skipped" in skipped.stdout
    stats = run_cli(
        "tokenize",
        str(mixed),
        "-t",
        "byte",
        "-o",
        str(tmp_path / "j"),
        "--keep-empty",
        "--prepend-bos",
        "--json",
        "-q",
        "-w",
        "1",
    )
    assert json.loads(stats.stdout)["keep_empty"] is True


def test_keep_empty_is_part_of_the_runs_fingerprint(tmp_path, mixed):
    """A killed run resumes only into the same output: keep_empty changes the bytes."""
    tok = load_tokenizer("byte")
    sources = readers.expand_inputs([mixed])
    prefixes = {"text": tmp_path / "o_text_document"}
    plain = Options.build(append_eod=True)
    kept = Options.build(append_eod=True, keep_empty=True)
    assert kept.metadata()["keep_empty"] is True and plain.metadata()["keep_empty"] is False
    assert _fingerprint(tok, plain, sources, prefixes, None) != _fingerprint(
        tok, kept, sources, prefixes, None
    )


def test_data_inspect_split_and_merge_read_kept_empties(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("one\n\n\ntwo\n\nthree\n", encoding="utf-8")
    tokenize(
        [path],
        "byte",
        tmp_path / "e",
        txt_mode="line",
        keep_empty=True,
        append_eod=True,
        quiet=True,
    )
    prefix = tmp_path / "e_text_document"
    assert inspect_report(prefix)["stats"]["documents"] == 6
    parts = split_store(prefix, 0.5, seed=0)
    kept = sorted(map(tuple, documents(parts["train"].prefix) + documents(parts["valid"].prefix)))
    assert kept == sorted(map(tuple, documents(prefix)))
    merged = merge_stores([parts["train"].prefix, parts["valid"].prefix], tmp_path / "m")
    assert np.asarray(merged.sizes).tolist().count(1) == 3  # the three [eos] documents
