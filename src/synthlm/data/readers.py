"""Input formats for ``synthlm tokenize`` and ``synthlm tokenizer train``: files in, documents out.

Reading is split in two so the expensive half runs in worker processes:

* :func:`read_chunks` (main process) only slices the input into :class:`Chunk` s of raw records
  (undecoded JSON lines, raw bytes, or arrow columns) plus where each record came from;
* :func:`extract` (any process) decodes a chunk into documents per key and reports every bad
  record as ``file:line: reason`` (invalid JSON, missing key, non-string, non-UTF-8).

Records are numbered per source (line for ``.jsonl``/``.txt``/``.csv``, row for ``.parquet`` and
datasets, item for ``.json`` lists); a run's record range (``--max-docs``, ``--shard``) is a slice
of the concatenation of its sources, so shards of one run merge back into the unsharded output.

Each input format is one :class:`Reader` subclass registered in :data:`READERS` (after
datatrove's readers): it says which file endings it claims, what its records are numbered in,
and how to count and slice them. Adding a format is one class and one registry entry; finding
inputs, checking keys, counting and chunking dispatch through the registry. Decompression
(``.gz``/``.zst``) stays a separate layer (:func:`open_binary`, :func:`decompressing`).
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from synthlm.errors import UserError
from synthlm.registry import Registry

try:  # orjson parses JSON lines several times faster; the standard library is the fallback
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads


class _Suffixes(Mapping[str, str]):
    """``{".jsonl": "jsonl", ...}``, read from :data:`READERS` on every use.

    Live rather than built once at import, so a format registered later (a plugin, a test) is
    found by :func:`format_of` and listed in "unknown input format" errors without other edits.
    """

    def _table(self) -> dict[str, str]:
        return {suffix: name for name in READERS for suffix in READERS.get(name).suffixes}

    def __getitem__(self, suffix: str) -> str:
        return self._table()[suffix]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


FORMATS: Mapping[str, str] = _Suffixes()  # file ending -> format name, in registration order
TXT_MODES = ("file", "line")
HUB_PREFIX = "hf:"
CHUNK_BYTES = 1 << 20
CHUNK_RECORDS = 4096


@dataclass(frozen=True)
class Source:
    """One input: a file, a saved ``datasets`` dir, or a hub dataset (``hf:NAME``)."""

    path: str
    format: str
    nbytes: int = 0
    split: str | None = None  # None: train, or a single saved dataset's only split
    config: str | None = None

    @property
    def unit(self) -> str:
        return READERS.get(self.format).unit


@dataclass
class Chunk:
    """Raw records of one source; ``numbers[i]`` locates record ``i`` (line, row or item)."""

    source: str
    unit: str
    kind: (
        str  # "jsonl": raw lines | "text": raw bytes documents | "objects": parsed JSON | "columns"
    )
    payload: Any
    numbers: list[int]
    nbytes: int = 0

    def __len__(self) -> int:
        return len(self.numbers)

    def head(self, n: int) -> Chunk:
        """The first ``n`` records."""
        payload = (
            {k: v[:n] for k, v in self.payload.items()}
            if self.kind == "columns"
            else self.payload[:n]
        )
        return Chunk(self.source, self.unit, self.kind, payload, self.numbers[:n], self.nbytes)

    def where(self, i: int, line: int = 0) -> str:
        """``file:line`` of record ``i``, ``line`` lines into it (or ``file: row N, line L``)."""
        number = self.numbers[i]
        if self.unit == "line":
            return f"{self.source}:{number + line}"
        return f"{self.source}: {self.unit} {number}" + (f", line {line + 1}" if line else "")


@dataclass
class Extracted:
    """Documents of one chunk: per key, the texts and the index of the record each came from."""

    texts: dict[str, list[str]]
    records: dict[str, list[int]]
    empty_records: dict[str, list[int]]  # per key, the records whose text is "" (in order)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (record index, "file:line: why")
    blank: int = 0  # blank lines between .jsonl records: read, but neither documents nor bad

    @property
    def empty(self) -> dict[str, int]:
        """Per key, how many records were empty."""
        return {key: len(found) for key, found in self.empty_records.items()}


# ---------------------------------------------------------------------------------------------
# Finding inputs


def format_of(path: str | Path) -> str | None:
    name = str(path).lower()
    return next(
        (
            fmt
            for suffix, fmt in sorted(FORMATS.items(), key=lambda s: -len(s[0]))
            if name.endswith(suffix)
        ),
        None,
    )


def _is_saved_dataset(path: Path) -> bool:
    return any(
        (path / marker).is_file()
        for marker in ("dataset_dict.json", "state.json", "dataset_info.json")
    )


def _source(path: Path, split: str, config: str | None) -> Source:
    if path.is_dir():
        return Source(str(path), "hf", _dir_bytes(path), split, config)
    fmt = format_of(path)
    if fmt is None:
        raise UserError(
            f"{path}: unknown input format; supported: {', '.join(FORMATS)}, a saved "
            f"datasets dir, or hf:NAME"
        )
    fmt = READERS.get(fmt).format_for(path, fmt)
    return Source(str(path), fmt, path.stat().st_size, split, config)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.arrow"))


def _expand_one(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir() and not _is_saved_dataset(path):
        found = sorted(p for p in path.rglob("*") if p.is_file() and format_of(p))
        if not found:
            raise UserError(
                f"{spec}: a directory with no input files ({', '.join(FORMATS)}) and not a "
                f"saved datasets dir"
            )
        return found
    if path.exists():
        return [path]
    matches = sorted(Path(m) for m in glob.glob(spec, recursive=True) if Path(m).is_file())
    if not matches:
        raise UserError(f"{spec}: no such file, directory or glob match")
    return matches


def expand_inputs(
    inputs: list[str | Path], *, split: str | None = None, config: str | None = None
) -> list[Source]:
    """Files, directories and globs (sorted), in the order given; ``hf:NAME`` for hub datasets."""
    if not inputs:
        raise UserError("no inputs given: pass files, globs, a directory or hf:NAME")
    sources: list[Source] = []
    seen: dict[str, str] = {}  # each input once: a file named twice would be tokenized twice
    for spec in map(str, inputs):
        if spec.startswith(HUB_PREFIX):
            _once(seen, spec, spec)
            sources.append(Source(spec[len(HUB_PREFIX) :], "hf", 0, split, config))
            continue
        for path in _expand_one(spec):
            _once(seen, str(Path(path).resolve()), spec)
            sources.append(_source(path, split, config))
    return sources


def _once(seen: dict[str, str], key: str, spec: str) -> None:
    if key in seen:
        again = "" if seen[key] == spec else f" (also matched by {seen[key]})"
        raise UserError(
            f"{spec}: {key} is given twice{again}; name each input once (its documents would "
            "be read twice)"
        )
    seen[key] = spec


# ---------------------------------------------------------------------------------------------
# Opening and checking


def open_binary(path: str | Path) -> BinaryIO:
    """A buffered binary reader that decompresses ``.gz`` and ``.zst`` transparently."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return decompressing(open(path, "rb"), str(path))


def decompressing(raw: BinaryIO, name: str) -> BinaryIO:
    """Wrap an open file so reads decompress; ``raw.tell()`` still measures progress on disk.

    The gzip wrapper leaves ``raw`` open (its owner closes it); the zstd one closes it.
    """
    name = name.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        return io.BufferedReader(ZstdFrames(raw), 1 << 20)
    return raw


class ZstdFrames(io.RawIOBase):
    """Decompresses every zstd frame of ``raw`` in turn, and fails on a cut-off one.

    zstandard's ``stream_reader`` ends quietly where the file does, so a truncated download
    read as a shorter corpus (its last line a bad record); gzip raises ``EOFError`` there, and
    so does this reader. Concatenated frames (``pzstd``, ``cat a.zst b.zst``) are one stream,
    as the ``zstd`` tool reads them.
    """

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._raw = raw
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._frame = self._new()
        self._fed = False  # the current frame has had input (an empty file has no frame)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            data = self._raw.read(1 << 20)
            if not data:
                if self._fed and not self._frame.eof:
                    raise EOFError("the last zstd frame is incomplete")
                return 0
            self._pending = self._feed(data)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._fed = True
            out.append(self._frame.decompress(data))
            if not self._frame.eof:
                break
            data, self._frame, self._fed = self._frame.unused_data, self._new(), False
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


def load_dataset(source: Source):
    """A ``datasets.Dataset`` from a saved dir, or from the hub when the network allows it."""
    import datasets

    try:
        if Path(source.path).is_dir():
            data = datasets.load_from_disk(source.path)
        else:
            data = datasets.load_dataset(source.path, source.config, split=source.split or "train")
    except Exception as exc:  # datasets raises many types; all mean "cannot read this input"
        where = (
            source.path
            if Path(source.path).is_dir()
            else f"hf:{source.path} (needs the network or a local cache)"
        )
        raise UserError(f"{where}: could not load the dataset: {exc}") from None
    if isinstance(data, datasets.DatasetDict):
        split = source.split or "train"
        if split not in data:
            raise UserError(
                f"{source.path}: no split {split!r}; choose --split from {', '.join(data)}"
            )
        data = data[split]
    elif source.split is not None and str(data.split) != source.split:  # its one split: this one?
        held = f"the split {str(data.split)!r}" if data.split else "one split, of no recorded name"
        raise UserError(
            f"{source.path}: a single dataset holding {held}, not {source.split!r}; save the "
            "DatasetDict, or drop --split"
        )
    return data


def _csv_header(path: str) -> list[str]:
    with (
        open_binary(path) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text,
    ):
        return next(csv.reader(text), [])


def check_keys(sources: list[Source], keys: list[str]) -> None:
    """Fail before any work when an input cannot give the requested keys (:meth:`Reader.check`)."""
    for source in sources:
        reader_of(source).check(keys)


def check_txt_mode(sources: list[Source], mode: str) -> None:
    """``--txt-mode line`` only changes how .txt files are read: asked for with no .txt input it
    would change nothing while the run looked as if it had split documents by line."""
    if mode not in TXT_MODES:
        raise UserError(f"--txt-mode {mode!r}: choose one of {', '.join(TXT_MODES)}")
    if mode != "file" and not any(source.format == "txt" for source in sources):
        formats = sorted({f".{source.format}" for source in sources})
        raise UserError(
            f"--txt-mode {mode}: only .txt inputs are read by line or by file, and the inputs "
            f"are {', '.join(formats) or 'none'}; drop --txt-mode"
        )


# ---------------------------------------------------------------------------------------------
# Counting (only needed to cut shards)


def count_records(source: Source, txt_mode: str = "file") -> int:
    """How many records ``source`` holds, in the units :func:`read_chunks` numbers them."""
    return reader_of(source).count(txt_mode)


def _count_lines(path: str) -> int:
    lines, last = 0, b"\n"
    with open_binary(path) as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


# ---------------------------------------------------------------------------------------------
# Reading raw records


def read_chunks(
    source: Source,
    *,
    start: int = 0,
    stop: int | None = None,
    txt_mode: str = "file",
    keys: list[str] | None = None,
) -> Iterator[Chunk]:
    """Records ``[start, stop)`` of ``source`` in chunks of about :data:`CHUNK_BYTES`."""
    reader = reader_of(source)
    reader.check_mode(txt_mode)
    if stop is not None and stop <= start:
        return
    yield from reader.chunks(start, stop, keys or [], txt_mode)


def _line_chunks(source: Source, start: int, stop: int | None, kind: str) -> Iterator[Chunk]:
    strip = kind == "text"
    with open(source.path, "rb") as raw, decompressing(raw, source.path) as handle:
        lines: list[bytes] = []
        size, first, position = 0, start + 1, 0
        stopped = False
        for number, line in enumerate(handle, 1):
            if number <= start:
                position = raw.tell()  # skipped lines are not this run's progress
                continue
            if stop is not None and number > stop:
                stopped = True
                break
            lines.append(line.rstrip(b"\r\n") if strip else line)
            size += len(line)
            if size >= CHUNK_BYTES or len(lines) >= CHUNK_RECORDS:
                consumed, position = raw.tell() - position, raw.tell()
                yield Chunk(
                    source.path,
                    "line",
                    kind,
                    lines,
                    list(range(first, first + len(lines))),
                    consumed,
                )
                first += len(lines)
                lines, size = [], 0
        if lines:
            end = raw.tell() if stopped else source.nbytes
            yield Chunk(
                source.path,
                "line",
                kind,
                lines,
                list(range(first, first + len(lines))),
                max(end - position, 0),
            )


JSON_EXPECTED = "a .json input must hold JSON lines (one object per line) or one list of objects"


def _json_layout(path: str) -> str:
    """``"list"`` for a file that opens with ``[``, else ``"lines"``.

    Decided before any work from the first non-blank line, so that a single pretty-printed JSON
    object (whose lines are not JSON values) fails here with one clear line instead of as a
    stream of bad records, or as nothing at all under ``--on-error skip``.
    """
    with open_binary(path) as handle:
        number, line = next(
            ((n, line) for n, line in enumerate(handle, 1) if line.strip()), (0, b"")
        )
    if line.lstrip().startswith(b"["):
        return "list"
    if line:
        try:
            _json_loads(line)
        except ValueError:
            if not _is_utf8(line):  # a bad record of JSON lines: reported as such when read
                return "lines"
            raise UserError(
                f"{path}:{number}: not a complete JSON value on its own line (a single "
                f"multi-line JSON object?); {JSON_EXPECTED}"
            ) from None
    return "lines"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_items(path: str) -> list[Any]:
    with open_binary(path) as handle:
        try:
            data = _json_loads(handle.read())
        except ValueError as exc:
            raise UserError(f"{path}: not valid JSON ({exc}); {JSON_EXPECTED}") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: found one JSON {type(data).__name__}; {JSON_EXPECTED}")
    return data


def _split_objects(source: Source, items: list[Any], start: int) -> Iterator[Chunk]:
    share = source.nbytes / max(len(items), 1)
    for i in range(0, len(items), CHUNK_RECORDS):
        part = items[i : i + CHUNK_RECORDS]
        numbers = list(range(start + i + 1, start + i + 1 + len(part)))
        yield Chunk(source.path, "item", "objects", part, numbers, int(share * len(part)))


def _csv_rows(path: str) -> Iterator[tuple[int, list[str], int]]:
    """(first line of the row, fields, bytes read so far); bad bytes become lone surrogates."""
    csv.field_size_limit(
        min(sys.maxsize, 2**31 - 1)
    )  # documents are longer than csv's 128 KiB default
    with open(path, "rb") as raw, decompressing(raw, path) as binary:
        text = io.TextIOWrapper(  # type: ignore[arg-type]
            binary, encoding="utf-8", errors="surrogateescape", newline=""
        )
        reader = csv.reader(text)
        line = 1
        for row in reader:
            yield line, row, raw.tell()
            line = reader.line_num + 1


def _csv_chunks(source: Source, start: int, stop: int | None, keys: list[str]) -> Iterator[Chunk]:
    rows = _csv_rows(source.path)
    header = next(rows, (1, [], 0))[1]
    index = {k: header.index(k) for k in keys}
    columns: dict[str, list[Any]] = {k: [] for k in keys}
    numbers: list[int] = []
    reported = 0
    for i, (line, row, position) in enumerate(rows):
        if i < start:
            continue
        if stop is not None and i >= stop:
            break
        for key, j in index.items():
            columns[key].append(row[j] if j < len(row) else None)
        numbers.append(line)
        if len(numbers) >= CHUNK_RECORDS:
            yield Chunk(source.path, "line", "columns", columns, numbers, position - reported)
            columns, numbers, reported = {k: [] for k in keys}, [], position
    if numbers:
        yield Chunk(
            source.path, "line", "columns", columns, numbers, max(source.nbytes - reported, 0)
        )


def _parquet_chunks(
    source: Source, start: int, stop: int | None, keys: list[str]
) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(source.path)
    rows = table.metadata.num_rows
    stop = rows if stop is None else min(stop, rows)
    share = source.nbytes / max(rows, 1)
    offset = 0
    for batch in table.iter_batches(batch_size=CHUNK_RECORDS, columns=keys):
        lo, hi = max(start - offset, 0), min(stop - offset, batch.num_rows)
        if lo < hi:
            part = batch.slice(lo, hi - lo)
            columns = {k: part.column(k).to_pylist() for k in keys}
            yield Chunk(
                source.path,
                "row",
                "columns",
                columns,
                list(range(offset + lo + 1, offset + hi + 1)),
                int(share * (hi - lo)),
            )
        offset += batch.num_rows
        if offset >= stop:
            break


def _dataset_chunks(
    source: Source, start: int, stop: int | None, keys: list[str]
) -> Iterator[Chunk]:
    data = load_dataset(source).select_columns(keys)
    stop = len(data) if stop is None else min(stop, len(data))
    share = source.nbytes / max(len(data), 1)
    for lo in range(start, stop, CHUNK_RECORDS):
        hi = min(lo + CHUNK_RECORDS, stop)
        columns = data[lo:hi]
        yield Chunk(
            source.path,
            "row",
            "columns",
            {k: columns[k] for k in keys},
            list(range(lo + 1, hi + 1)),
            int(share * (hi - lo)),
        )


# ---------------------------------------------------------------------------------------------
# One reader per input format


class Reader(ABC):
    """Everything one input format needs: the files it claims, and how to count and slice them.

    A subclass registered in :data:`READERS` under a name is that format: :func:`format_of` finds
    it by :attr:`suffixes`, and :func:`check_keys`, :func:`count_records` and :func:`read_chunks`
    call it for every :class:`Source` whose ``format`` is that name. Readers only cut raw records
    into :class:`Chunk` s; decoding them into documents stays in :func:`extract` (in the workers).
    """

    suffixes: ClassVar[tuple[str, ...]] = ()  # file endings it claims (none: found another way)
    unit: ClassVar[str] = "line"  # what record numbers count in errors: "line", "item" or "row"

    def __init__(self, source: Source) -> None:
        self.source = source

    def columns(self) -> list[str] | None:
        """Column names known before reading, None where keys are only known per record."""
        return None

    def check(self, keys: list[str]) -> None:
        """Fail before any work when this input lacks a requested column."""
        columns = self.columns()
        missing = [k for k in keys if columns is not None and k not in columns]
        if missing:
            raise UserError(
                f"{self.source.path}: no column {missing[0]!r} (columns: "
                f"{', '.join(columns or [])}); choose --keys from these"
            )

    @classmethod
    def format_for(cls, path: Path, name: str) -> str:
        """The format that reads ``path``, which this reader (registered as ``name``) claims by
        its ending; only a reader whose files' layout shows in their content (.json) differs."""
        return name

    def check_mode(self, mode: str) -> None:
        """Reject a reading mode (``--txt-mode``) this format does not know; only .txt has modes."""
        return None  # one way to read this format: --txt-mode does not concern it

    @abstractmethod
    def count(self, mode: str) -> int:
        """How many records the input holds, in the numbering :meth:`chunks` uses."""

    @abstractmethod
    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        """Records ``[start, stop)`` (``stop`` is None or above ``start``) as chunks.

        ``keys`` lets columnar formats read only the columns asked for; ``mode`` is the
        ``--txt-mode`` (already accepted by :meth:`check_mode`), which only .txt uses.
        """


READERS: Registry[type[Reader]] = Registry("input format")


def reader_of(source: Source) -> Reader:
    """The reader registered for ``source.format``."""
    return READERS.get(source.format)(source)


@READERS.register("jsonl")
class JsonlReader(Reader):
    """JSON lines, plain or compressed: lines are cut here and parsed in the workers."""

    suffixes = (".jsonl", ".jsonl.gz", ".jsonl.zst")
    unit = "line"

    def count(self, mode: str) -> int:
        return _count_lines(self.source.path)

    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        yield from _line_chunks(self.source, start, stop, "jsonl")


@READERS.register("json")
class JsonReader(Reader):
    """``.json`` files, plain or compressed: one JSON list of objects (parsed whole, so records
    are its items), or JSON lines, as C4 ships them (``c4-train.00000-of-01024.json.gz``) and
    Hugging Face's ``json`` loader reads them; :meth:`format_for` hands those to ``jsonl``."""

    suffixes = (".json", ".json.gz", ".json.zst")
    unit = "item"

    @classmethod
    def format_for(cls, path: Path, name: str) -> str:
        """``json`` when the file is one JSON list, else ``jsonl`` (checked on its first line)."""
        return name if _json_layout(str(path)) == "list" else "jsonl"

    def count(self, mode: str) -> int:
        return len(_json_items(self.source.path))

    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        items = _json_items(self.source.path)[start:stop]
        yield from _split_objects(self.source, items, start)


@READERS.register("parquet")
class ParquetReader(Reader):
    """Parquet: the schema and row count come from the footer, rows from the requested columns."""

    suffixes = (".parquet",)
    unit = "row"

    def columns(self) -> list[str] | None:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.source.path).schema_arrow.names

    def count(self, mode: str) -> int:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.source.path).metadata.num_rows

    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        yield from _parquet_chunks(self.source, start, stop, keys)


@READERS.register("csv")
class CsvReader(Reader):
    """CSV with a header row; a record may span lines and is numbered by its first line."""

    suffixes = (".csv",)
    unit = "line"

    def columns(self) -> list[str] | None:
        return _csv_header(self.source.path)

    def count(self, mode: str) -> int:
        return max(sum(1 for _ in _csv_rows(self.source.path)) - 1, 0)

    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        yield from _csv_chunks(self.source, start, stop, keys)


@READERS.register("txt")
class TxtReader(Reader):
    """Plain text: one document per file (``--txt-mode file``) or per line (``line``)."""

    suffixes = (".txt",)
    unit = "line"

    def check(self, keys: list[str]) -> None:
        """A text file has one field, so exactly one key, which only names the store."""
        if len(keys) != 1:
            raise UserError(
                f"{self.source.path}: a .txt input has one field; give one --keys name "
                f"(it names the store), not {keys}"
            )

    def check_mode(self, mode: str) -> None:
        if mode not in TXT_MODES:
            raise UserError(f"--txt-mode {mode!r}: choose one of {', '.join(TXT_MODES)}")

    def count(self, mode: str) -> int:
        return 1 if mode == "file" else _count_lines(self.source.path)

    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        if mode == "line":
            yield from _line_chunks(self.source, start, stop, "text")
            return
        with open_binary(self.source.path) as handle:
            data = handle.read()
        yield Chunk(self.source.path, "line", "text", [data], [1], self.source.nbytes)


@READERS.register("hf")
class DatasetReader(Reader):
    """A saved ``datasets`` dir or ``hf:NAME``: claimed by :func:`expand_inputs`, not by suffix."""

    unit = "row"

    def columns(self) -> list[str] | None:
        return list(load_dataset(self.source).column_names)

    def count(self, mode: str) -> int:
        return len(load_dataset(self.source))

    def chunks(self, start: int, stop: int | None, keys: list[str], mode: str) -> Iterator[Chunk]:
        yield from _dataset_chunks(self.source, start, stop, keys)


# ---------------------------------------------------------------------------------------------
# Records -> documents


class BadRecord(ValueError):
    """One record that cannot become a document; ``line`` counts lines into the record."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)
        raise BadRecord(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", line
        ) from None


def _parse_line(line: bytes) -> Any:
    try:
        return _json_loads(line)
    except ValueError as exc:
        _utf8(line)  # a non-UTF-8 line is reported as such, not as bad JSON
        raise BadRecord(f"invalid JSON ({exc})") from None


PARAGRAPH_JOIN = "\n\n"  # lm_dataformat's join of a list of paragraphs (GPT-NeoX's reader)


def _text_value(record: Any, key: str) -> str:
    """A record's text under ``key``; a list of strings is its paragraphs, joined by a blank
    line, as lm_dataformat (GPT-NeoX's preprocess_data.py) reads them."""
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, found {type(record).__name__}")
    if key not in record:
        present = ", ".join(map(str, list(record)[:10])) or "none"
        raise BadRecord(f"missing key {key!r} (keys present: {present})")
    return _as_text(record[key], key)


def _as_text(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return _utf8(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return PARAGRAPH_JOIN.join(value)
    kind = "null" if value is None else type(value).__name__
    raise BadRecord(f"key {key!r} is {kind}, expected a string")


def _records(chunk: Chunk) -> list[Any]:
    """The chunk's records as objects (or BadRecord for each that failed to parse)."""
    if chunk.kind == "jsonl":
        out: list[Any] = []
        for line in chunk.payload:
            try:
                out.append(_parse_line(line) if line.strip() else None)
            except BadRecord as exc:
                out.append(exc)
        return out
    return chunk.payload


def extract(chunk: Chunk, keys: list[str]) -> Extracted:
    """Decode a chunk into per-key documents; empty ones are listed apart, bad ones reported."""
    texts: dict[str, list[str]] = {k: [] for k in keys}
    where: dict[str, list[int]] = {k: [] for k in keys}
    empty: dict[str, list[int]] = {k: [] for k in keys}
    bad: list[tuple[int, str]] = []
    blank = 0
    records = _records(chunk)
    for i in range(len(chunk)):
        record = None if chunk.kind == "columns" else records[i]
        if isinstance(record, BadRecord):
            bad.append((i, f"{chunk.where(i)}: {record}"))
            continue
        if chunk.kind == "jsonl" and record is None:
            blank += 1  # a blank line between JSON records is not a record
            continue
        for key in keys:
            try:
                text = _value(chunk, record, key, i)
            except BadRecord as exc:
                bad.append((i, f"{chunk.where(i, exc.line)}: {exc}"))
                continue
            if not text:
                empty[key].append(i)
                continue
            texts[key].append(text)
            where[key].append(i)
    return Extracted(texts, where, empty, bad, blank)


def _value(chunk: Chunk, record: Any, key: str, i: int) -> str:
    if chunk.kind == "columns":
        return _as_text(chunk.payload[key][i], key)
    if chunk.kind == "text":
        return _utf8(record)
    if chunk.kind == "jsonl" and isinstance(record, str):
        return record  # a line that is a bare JSON string: its text, as lm_dataformat reads it
    return _text_value(record, key)


def iter_documents(
    sources: list[Source], keys: list[str], *, txt_mode: str = "file", max_docs: int | None = None
) -> Iterator[str]:
    """Every document of every key in input order, bad records skipped (for tokenizer training)."""
    check_keys(sources, keys)
    seen = 0
    for source in sources:
        for chunk in read_chunks(source, txt_mode=txt_mode, keys=keys):
            if max_docs is not None and seen + len(chunk) > max_docs:
                chunk = chunk.head(max_docs - seen)
            seen += len(chunk)
            extracted = extract(chunk, keys)
            for key in keys:
                yield from extracted.texts[key]
            if max_docs is not None and seen >= max_docs:
                return


def source_summary(sources: list[Source]) -> list[str]:
    """How sources are named in provenance: absolute paths, or ``hf:NAME``."""
    return [
        os.path.abspath(s.path) if Path(s.path).exists() else f"{HUB_PREFIX}{s.path}"
        for s in sources
    ]
