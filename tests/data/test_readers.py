"""Input formats: every supported file type yields the same documents, numbered for error messages."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from cli_runner import run_cli
from synthlm.data import readers
from synthlm.data.readers import (
    check_keys,
    count_records,
    expand_inputs,
    extract,
    iter_documents,
    read_chunks,
)
from synthlm.data.store import TokenStore
from synthlm.errors import UserError

RECORDS = [
    {"text": "First document.\nWith two lines.", "title": "one"},
    {"text": "Second — with ünïcode ☃", "title": "two"},
    {"text": 'Third, "quoted", with commas', "title": "three"},
]


def write_jsonl(path: Path, records=RECORDS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_format(directory: Path, fmt: str) -> Path:
    """The same three records in format ``fmt``."""
    lines = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    if fmt == "jsonl":
        return write_jsonl(directory / "d.jsonl")
    if fmt == "jsonl.gz":
        (directory / "d.jsonl.gz").write_bytes(gzip.compress(lines))
        return directory / "d.jsonl.gz"
    if fmt == "jsonl.zst":
        import zstandard

        (directory / "d.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
        return directory / "d.jsonl.zst"
    if fmt == "json":
        (directory / "d.json").write_text(json.dumps(RECORDS), encoding="utf-8")
        return directory / "d.json"
    if fmt == "json-lines":  # a .json file holding JSON lines, as C4 names them
        (directory / "d.json").write_bytes(lines)
        return directory / "d.json"
    if fmt == "json.gz":
        (directory / "c4-train.00000-of-01024.json.gz").write_bytes(gzip.compress(lines))
        return directory / "c4-train.00000-of-01024.json.gz"
    if fmt == "json.zst":
        import zstandard

        (directory / "d.json.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
        return directory / "d.json.zst"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(RECORDS), directory / "d.parquet")
        return directory / "d.parquet"
    if fmt == "csv":
        with open(directory / "d.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ["title", "text"])
            writer.writeheader()
            writer.writerows(RECORDS)
        return directory / "d.csv"
    if fmt == "hf":
        import datasets

        datasets.Dataset.from_list(RECORDS).save_to_disk(str(directory / "ds"))
        return directory / "ds"
    raise AssertionError(fmt)


FORMATS = [
    "jsonl",
    "jsonl.gz",
    "jsonl.zst",
    "json",
    "json-lines",
    "json.gz",
    "json.zst",
    "parquet",
    "csv",
    "hf",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_yields_the_same_documents_per_key(tmp_path, fmt):
    sources = expand_inputs([write_format(tmp_path, fmt)])
    assert list(iter_documents(sources, ["text"])) == [r["text"] for r in RECORDS]
    assert list(iter_documents(sources, ["title"])) == [r["title"] for r in RECORDS]
    assert count_records(sources[0]) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_record_slices_concatenate_to_the_whole(tmp_path, fmt, monkeypatch):
    """Shards read [start, stop) slices; together they must be exactly the input, in order."""
    monkeypatch.setattr(readers, "CHUNK_RECORDS", 2)
    source = expand_inputs([write_format(tmp_path, fmt)])[0]
    parts = []
    for start, stop in [(0, 1), (1, 3)]:
        for chunk in read_chunks(source, start=start, stop=stop, keys=["text"]):
            parts += extract(chunk, ["text"]).texts["text"]
    assert parts == [r["text"] for r in RECORDS]


def test_txt_is_one_document_per_file_or_per_line(tmp_path):
    (tmp_path / "a.txt").write_text("line one\n\nline three\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("other file", encoding="utf-8")
    sources = expand_inputs([tmp_path])  # a directory expands to its files, sorted
    assert [Path(s.path).name for s in sources] == ["a.txt", "b.txt"]
    assert list(iter_documents(sources, ["text"], txt_mode="file")) == [
        "line one\n\nline three\n",
        "other file",
    ]
    assert list(iter_documents(sources, ["text"], txt_mode="line")) == [
        "line one",
        "line three",
        "other file",
    ]
    assert count_records(sources[0], "line") == 3 and count_records(sources[0], "file") == 1


def test_line_mode_counts_blank_lines_as_empty_documents(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x\n\ny", encoding="utf-8")
    chunk = next(read_chunks(expand_inputs([path])[0], txt_mode="line"))
    result = extract(chunk, ["text"])
    assert result.texts["text"] == ["x", "y"] and result.empty["text"] == 1


def test_bad_jsonl_records_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"text": "ok"}\n'
        b"{not json\n"
        b'{"title": "no text"}\n'
        b'{"text": 5}\n'
        b'{"text": "caf\xe9"}\n'
        b"\n"
        b'["a list"]\n'
        b'{"text": null}\n'
        b'{"text": ""}\n'
    )
    chunk = next(read_chunks(expand_inputs([path])[0]))
    result = extract(chunk, ["text"])
    assert result.texts["text"] == ["ok"]
    assert result.empty["text"] == 1
    messages = [message for _, message in result.bad]
    assert messages[0].startswith(f"{path}:2: invalid JSON")
    assert messages[1] == f"{path}:3: missing key 'text' (keys present: title)"
    assert messages[2] == f"{path}:4: key 'text' is int, expected a string"
    assert messages[3] == f"{path}:5: not valid UTF-8 (byte 0xe9 at offset 13)"
    assert messages[4] == f"{path}:7: expected a JSON object, found list"
    assert messages[5] == f"{path}:8: key 'text' is null, expected a string"
    assert len(messages) == 6  # the blank line is not a record


def test_csv_rows_are_numbered_by_their_first_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,id\n"spans\ntwo lines",1\n,2\nlast,3\n', encoding="utf-8")
    chunk = next(read_chunks(expand_inputs([path])[0], keys=["text"]))
    assert chunk.numbers == [2, 4, 5]
    result = extract(chunk, ["text"])
    assert result.texts["text"] == ["spans\ntwo lines", "last"] and result.empty["text"] == 1


def test_txt_file_with_bad_bytes_reports_the_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"fine\nstill fine\nbroken \xff here\n")
    chunk = next(read_chunks(expand_inputs([path])[0]))
    bad = extract(chunk, ["text"]).bad
    assert bad == [(0, f"{path}:3: not valid UTF-8 (byte 0xff at offset 23)")]


def test_json_list_items_are_numbered(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "a"}, "not an object", {"text": "c"}]), encoding="utf-8")
    result = extract(next(read_chunks(expand_inputs([path])[0])), ["text"])
    assert result.texts["text"] == ["a", "c"]
    assert result.bad == [(1, f"{path}: item 2: expected a JSON object, found str")]


@pytest.mark.parametrize("name", ["d.json", "d.json.gz"])
def test_json_lines_in_a_json_file_are_numbered_by_line(tmp_path, name):
    """C4 ships JSON lines as .json.gz; they read as .jsonl does, records numbered by line."""
    data = b'{"text": "a"}\n\n{"text": 5}\n{"text": "c"}\n'
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    source = expand_inputs([path])[0]
    assert (source.format, source.unit) == ("jsonl", "line")
    result = extract(next(read_chunks(source)), ["text"])
    assert result.texts["text"] == ["a", "c"]
    assert result.bad == [(2, f"{path}:3: key 'text' is int, expected a string")]


def test_a_json_object_on_one_line_is_one_json_lines_record(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{"text": "a"}', encoding="utf-8")
    assert list(iter_documents(expand_inputs([path]), ["text"])) == ["a"]


@pytest.mark.parametrize("name", ["d.json", "d.json.gz"])
def test_a_multi_line_json_object_is_refused_before_any_work(tmp_path, name):
    data = json.dumps({"text": "a", "title": "b"}, indent=2).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(UserError) as caught:
        expand_inputs([path])
    message = str(caught.value)
    assert message.startswith(f"{path}:1: not a complete JSON value")
    assert "must hold JSON lines (one object per line)" in message and "\n" not in message


def test_a_bad_first_line_of_json_lines_is_a_bad_record_not_a_refusal(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'{"text": "caf\xe9"}\n{"text": "ok"}\n')
    result = extract(next(read_chunks(expand_inputs([path])[0])), ["text"])
    assert result.texts["text"] == ["ok"]
    assert result.bad == [(0, f"{path}:1: not valid UTF-8 (byte 0xe9 at offset 13)")]


def test_an_unparseable_json_list_names_the_file_and_the_expected_layouts(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"text": "a"},', encoding="utf-8")
    with pytest.raises(UserError, match=r"d\.json: not valid JSON .*must hold JSON lines"):
        list(read_chunks(expand_inputs([path])[0]))


def test_missing_columns_fail_before_any_work(tmp_path):
    sources = expand_inputs([write_format(tmp_path, "parquet"), write_format(tmp_path, "csv")])
    with pytest.raises(UserError, match=r"d.parquet: no column 'body' \(columns: text, title\)"):
        check_keys(sources, ["body"])
    with pytest.raises(UserError, match="a .txt input has one field"):
        (tmp_path / "a.txt").write_text("x")
        check_keys(expand_inputs([tmp_path / "a.txt"]), ["text", "title"])


def test_expand_inputs_globs_sorted_and_rejects_unknowns(tmp_path):
    for name in ("b.jsonl", "a.jsonl", "c.md"):
        (tmp_path / name).write_text("{}\n")
    assert [Path(s.path).name for s in expand_inputs([str(tmp_path / "*.jsonl")])] == [
        "a.jsonl",
        "b.jsonl",
    ]
    with pytest.raises(UserError, match="unknown input format"):
        expand_inputs([tmp_path / "c.md"])
    with pytest.raises(UserError, match="no such file"):
        expand_inputs([str(tmp_path / "nothing*.jsonl")])
    with pytest.raises(UserError, match="no inputs"):
        expand_inputs([])
    hub = expand_inputs(["hf:someone/corpus"], split="validation")[0]
    assert (hub.path, hub.format, hub.split) == ("someone/corpus", "hf", "validation")


def test_saved_dataset_dict_needs_an_existing_split(tmp_path):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(RECORDS)}).save_to_disk(
        str(tmp_path / "dd")
    )
    assert list(iter_documents(expand_inputs([tmp_path / "dd"]), ["title"])) == [
        "one",
        "two",
        "three",
    ]
    with pytest.raises(UserError, match="no split 'test'; choose --split from train"):
        check_keys(expand_inputs([tmp_path / "dd"], split="test"), ["text"])


def test_max_docs_stops_reading(tmp_path):
    sources = expand_inputs([write_jsonl(tmp_path / "d.jsonl")])
    assert list(iter_documents(sources, ["title"], max_docs=2)) == ["one", "two"]


def test_builtin_readers_claim_the_same_file_endings_as_before():
    """The registry replaced a fixed suffix table; detection and its error listing must not move."""
    assert list(readers.FORMATS.items()) == [
        (".jsonl", "jsonl"),
        (".jsonl.gz", "jsonl"),
        (".jsonl.zst", "jsonl"),
        (".json", "json"),
        (".json.gz", "json"),
        (".json.zst", "json"),
        (".parquet", "parquet"),
        (".csv", "csv"),
        (".txt", "txt"),
    ]
    assert readers.READERS.names() == ["csv", "hf", "json", "jsonl", "parquet", "txt"]
    assert readers.format_of("x.JSONL.GZ") == "jsonl" and readers.format_of("x.md") is None


class TsvReader(readers.Reader):
    """Tab-separated values with a header row: a format synthlm lacks, written here in full."""

    suffixes = (".tsv",)
    unit = "line"

    def _rows(self) -> list[list[str]]:
        with readers.open_binary(self.source.path) as handle:
            return [line.decode("utf-8").rstrip("\n").split("\t") for line in handle]

    def columns(self) -> list[str]:
        return self._rows()[0]

    def count(self, mode: str) -> int:
        return len(self._rows()) - 1

    def chunks(self, start, stop, keys, mode):
        header, *rows = self._rows()
        rows = rows[start:stop]
        columns = {k: [row[header.index(k)] for row in rows] for k in keys}
        numbers = list(range(start + 2, start + 2 + len(rows)))  # line 1 is the header
        yield readers.Chunk(self.source.path, "line", "columns", columns, numbers)


@pytest.fixture
def tsv_format():
    """Register the reader for one test only, as a plugin would, and unregister it after."""
    readers.READERS.register("tsv")(TsvReader)
    try:
        yield
    finally:
        del readers.READERS["tsv"]


def write_tsv(path: Path) -> Path:
    path.write_text("title\ttext\n" + "".join(f"{r['title']}\t{r['text'][:6]}\n" for r in RECORDS))
    return path


def test_a_registered_reader_is_a_new_input_format_with_no_other_edit(tmp_path, tsv_format):
    tsv = write_tsv(tmp_path / "a.tsv")
    write_jsonl(tmp_path / "b.jsonl")
    sources = expand_inputs([tmp_path])  # directory expansion and format detection
    assert [(Path(s.path).name, s.format, s.unit) for s in sources] == [
        ("a.tsv", "tsv", "line"),
        ("b.jsonl", "jsonl", "line"),
    ]
    assert count_records(sources[0]) == 3
    chunk = next(read_chunks(sources[0], start=1, stop=3, keys=["text"]))
    assert extract(chunk, ["text"]).texts == {"text": ["Second", "Third,"]}
    assert chunk.where(0) == f"{tsv}:3"
    titles = [r["title"] for r in RECORDS]
    assert list(iter_documents(sources, ["title"])) == titles + titles
    with pytest.raises(UserError, match=r"a\.tsv: no column 'body' \(columns: title, text\)"):
        check_keys(sources, ["body"])


def test_tokenize_reads_a_registered_format(tmp_path, tsv_format):
    from synthlm.data.store import TokenStore
    from synthlm.data.tokenization import tokenize
    from synthlm.tokenizers import ByteTokenizer

    tsv = write_tsv(tmp_path / "a.tsv")
    tokenize([tsv], ByteTokenizer(), tmp_path / "out", keys=["title"], workers=1, quiet=True)
    store = TokenStore(tmp_path / "out_title_document")
    ids = [store.document(i).tolist() for i in range(len(store))]
    assert ids == [[b + 4 for b in r["title"].encode()] for r in RECORDS]  # byte id = byte + 4


def test_an_unregistered_ending_is_still_unknown(tmp_path):
    with pytest.raises(UserError, match=r"a\.tsv: unknown input format; supported: \.jsonl, "):
        expand_inputs([write_tsv(tmp_path / "a.tsv")])


def tokenize_cli(path: Path, out: Path, *extra: str):
    return run_cli(
        "tokenize", str(path), "--tokenizer", "byte", "--out", str(out), "--quiet", *extra
    )


def test_tokenize_reads_c4_json_gz_as_it_reads_jsonl_gz(tmp_path):
    """``synthlm tokenize c4/*.json.gz`` (docs/papers/hu2025_pre_pretraining.md) on C4's names."""
    (tmp_path / "c4").mkdir()
    c4 = write_format(tmp_path / "c4", "json.gz")
    reference = write_format(tmp_path, "jsonl.gz")
    done = tokenize_cli(tmp_path / "c4" / "*.json.gz", tmp_path / "c4_out", "--append-eod")
    assert done.returncode == 0, done.stderr
    assert tokenize_cli(reference, tmp_path / "ref", "--append-eod").returncode == 0
    assert len(TokenStore(f"{tmp_path / 'c4_out'}_text_document")) == len(RECORDS)
    for suffix in (".bin", ".idx"):
        got = Path(f"{tmp_path / 'c4_out'}_text_document{suffix}").read_bytes()
        assert got == Path(f"{tmp_path / 'ref'}_text_document{suffix}").read_bytes(), c4


def test_tokenize_refuses_a_pretty_printed_json_object_with_one_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"text": "a"}, indent=2), encoding="utf-8")
    done = tokenize_cli(path, tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {path}:1: not a complete JSON value on its own line (a single multi-line JSON "
        "object?); a .json input must hold JSON lines (one object per line) or one list of "
        "objects"
    ]
    assert not list(tmp_path.glob("*out*"))  # no store, no partial-work directory


def test_jsonl_reads_what_gpt_neoxs_reader_reads(tmp_path):
    """lm_dataformat, which GPT-NeoX's preprocess_data.py reads .jsonl with, takes a line that
    is a bare JSON string as that text and joins a list of strings with a blank line; synthlm
    counted both as bad records. Anything else that is not text stays a bad record."""
    path = tmp_path / "neox.jsonl"
    lines = [
        json.dumps("a bare string"),
        json.dumps({"text": ["first paragraph", "second"]}),
        json.dumps({"text": ["a", 3]}),
        json.dumps({"text": "plain"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = extract(next(read_chunks(expand_inputs([path])[0])), ["text"])
    assert result.texts["text"] == ["a bare string", "first paragraph\n\nsecond", "plain"]
    assert [i for i, _ in result.bad] == [2]
