"""Token stores: the Megatron / GPT-NeoX memory-mapped indexed format, read and written exactly.

A store ``PREFIX`` is ``PREFIX.bin`` (all documents' tokens, concatenated) and ``PREFIX.idx``:

    b"MMIDIDX\\x00\\x00" | version u64 = 1 | dtype code u8 | sequence count u64 | document count u64
    sizes int32[n] | pointers int64[n] (byte offsets into .bin) | document index int64[n + 1]

One item per document, so the document index is ``0, 1, ..., n``. Optional sidecars:
``PREFIX.mask.bin/.idx`` (uint8 loss mask, same sizes) and ``PREFIX.json`` (provenance).

Why our own reader/writer instead of importing megatron-core: megatron-core pulls in a large
training stack (and warns about missing CUDA libraries on import) just to read two arrays; the
format is tiny and frozen, and our tests prove byte-level interop with megatron-core itself.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthlm import __version__
from synthlm.errors import StoreError
from synthlm.fileio import (
    atomic_write_json,
    naming,
    publish,
    remove_stale_temps_of,
    temp_name,
)

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
HEADER_BYTES = len(MAGIC) + 8 + 1 + 8 + 8
UINT16_VOCAB_LIMIT = 65500
DTYPE_CODES: dict[int, type[np.number]] = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float64,
    7: np.float32,
    8: np.uint16,
}
CODE_OF_DTYPE = {np.dtype(t): code for code, t in DTYPE_CODES.items()}
SCAN_CHUNK = 1 << 24  # tokens per chunk when checking ids: bounded memory on huge stores


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """uint16 when every id fits comfortably (GPT-NeoX's rule), int32 otherwise."""
    return np.dtype(np.uint16 if vocab_size < UINT16_VOCAB_LIMIT else np.int32)


def bin_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.bin")


def idx_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.idx")


def meta_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.json")


def mask_prefix(prefix: str | Path) -> Path:
    return Path(f"{prefix}.mask")


def store_exists(prefix: str | Path) -> bool:
    return idx_path(prefix).is_file() and bin_path(prefix).is_file()


def normalize_prefix(path: str | Path) -> Path:
    """Accept ``x``, ``x.bin`` or ``x.idx`` for the store ``x``."""
    text = str(path)
    for suffix in (".bin", ".idx"):
        if text.endswith(suffix):
            return Path(text[: -len(suffix)])
    return Path(text)


# ---------------------------------------------------------------------------------------------
# Index files


def encode_index(dtype: np.dtype, sizes: np.ndarray) -> bytes:
    sizes = np.asarray(sizes, dtype=np.int32)
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1].astype(np.int64) * itemsize, out=pointers[1:])
    doc_index = np.arange(len(sizes) + 1, dtype=np.int64)
    header = MAGIC + struct.pack("<Q", VERSION) + struct.pack("<B", CODE_OF_DTYPE[np.dtype(dtype)])
    header += struct.pack("<Q", len(sizes)) + struct.pack("<Q", len(doc_index))
    return header + sizes.tobytes() + pointers.tobytes() + doc_index.tobytes()


class _Index:
    """The parsed and validated ``.idx`` of one ``.bin``."""

    def __init__(self, prefix: Path) -> None:
        path = idx_path(prefix)
        size = path.stat().st_size
        if size < HEADER_BYTES:
            raise StoreError(
                f"{path}: truncated index ({size} bytes, the header alone needs {HEADER_BYTES})"
            )
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES)
        if head[: len(MAGIC)] != MAGIC:
            raise StoreError(
                f"{path}: not a Megatron/GPT-NeoX MMIDIDX index (bad magic {head[:9]!r})"
            )
        version, code = struct.unpack("<QB", head[9:18])
        if version != VERSION:
            raise StoreError(
                f"{path}: index version {version} is not supported (only version {VERSION})"
            )
        if code not in DTYPE_CODES:
            raise StoreError(f"{path}: unknown dtype code {code} (known: {sorted(DTYPE_CODES)})")
        self.dtype = np.dtype(DTYPE_CODES[code])
        n, d = struct.unpack("<QQ", head[18:34])
        expected = HEADER_BYTES + n * 4 + n * 8 + d * 8
        if size < expected:
            raise StoreError(
                f"{path}: truncated index ({size} bytes, {n} documents need {expected})"
            )
        data = np.memmap(path, mode="r", dtype=np.uint8)
        self.sizes = np.frombuffer(data, dtype=np.int32, count=n, offset=HEADER_BYTES)
        self.pointers = np.frombuffer(data, dtype=np.int64, count=n, offset=HEADER_BYTES + 4 * n)
        self.doc_index = np.frombuffer(data, dtype=np.int64, count=d, offset=HEADER_BYTES + 12 * n)
        if n and (self.sizes.min() < 0 or self.pointers.min() < 0):
            raise StoreError(f"{path}: corrupt index (negative sizes or pointers)")
        self.num_tokens = int(self.sizes.sum(dtype=np.int64))

    def check_bin(self, prefix: Path) -> None:
        path = bin_path(prefix)
        actual = path.stat().st_size
        end = 0
        if len(self.sizes):
            end = int(self.pointers[-1]) + int(self.sizes[-1]) * self.dtype.itemsize
        if actual != end:
            raise StoreError(
                f"{path}: size {actual} bytes does not match its index ({end} bytes for "
                f"{self.num_tokens} tokens of {self.dtype.name}); the store is truncated "
                f"or mismatched"
            )


# ---------------------------------------------------------------------------------------------
# Reading


class TokenStore:
    """Random access to documents and token ranges of a store, without loading it into memory."""

    def __init__(
        self, prefix: str | Path, *, vocab_size: int | None = None, check_ids: bool = True
    ) -> None:
        self.prefix = normalize_prefix(prefix)
        for path in (idx_path(self.prefix), bin_path(self.prefix)):
            if not path.is_file():
                raise StoreError(f"{self.prefix}: no token store here ({path} is missing)")
        self._index = _Index(self.prefix)
        self._index.check_bin(self.prefix)
        self.metadata: dict[str, Any] = self._read_metadata()
        self.vocab_size = vocab_size if vocab_size is not None else self.metadata.get("vocab_size")
        self._tokens = self._map(bin_path(self.prefix), self._index.dtype, self._index.num_tokens)
        self._offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(self.sizes, out=self._offsets[1:])
        self._mask_store: TokenStore | None = None
        if store_exists(mask_prefix(self.prefix)):
            self._mask_store = TokenStore(mask_prefix(self.prefix), check_ids=False)
            if not np.array_equal(self._mask_store.sizes, self.sizes):
                raise StoreError(
                    f"{mask_prefix(self.prefix)}: loss-mask sizes differ from "
                    f"{self.prefix}'s documents"
                )
        if check_ids and self.vocab_size is not None:
            self.check_ids(int(self.vocab_size))

    @staticmethod
    def _map(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(path, mode="r", dtype=dtype, shape=(count,))

    def _read_metadata(self) -> dict[str, Any]:
        path = meta_path(self.prefix)
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(
                f"{path}: provenance file is not valid UTF-8 JSON ({exc}); restore it "
                "or rewrite the store"
            ) from None

    # -- shape ----------------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return self._index.dtype

    @property
    def sizes(self) -> np.ndarray:
        """Tokens per document (int32)."""
        return self._index.sizes

    @property
    def offsets(self) -> np.ndarray:
        """Token offset of each document's start, plus the total at the end (int64, n + 1)."""
        return self._offsets

    @property
    def num_tokens(self) -> int:
        return self._index.num_tokens

    def needs_eos_joins(self, eos_id: int) -> bool:
        """Whether readers add EOS after each document: unless PREFIX.json records
        ``append_eod``, or, for a store that records nothing (another tool wrote it), every
        document already ends with ``eos_id``, as GPT-NeoX's and Megatron's
        ``preprocess_data.py --append-eod`` writes them (a second EOS would be scored and
        trained at every boundary). The last tokens are read at up to ``EOS_PROBES`` evenly
        spaced documents: one read per document of a Pile-sized store would touch hundreds of
        millions of pages before the first step."""
        if "append_eod" in self.metadata:
            return not bool(self.metadata["append_eod"])
        sizes = np.asarray(self.sizes)
        if len(sizes) == 0 or not (sizes > 0).all():
            return True
        probes = np.unique(
            np.linspace(0, len(sizes) - 1, min(len(sizes), EOS_PROBES), dtype=np.int64)
        )
        last = np.asarray(self._tokens[self._offsets[probes + 1] - 1])
        return not bool((last == eos_id).all())

    @property
    def has_mask(self) -> bool:
        return self._mask_store is not None

    def __len__(self) -> int:
        return len(self._index.sizes)

    def __repr__(self) -> str:
        return (
            f"TokenStore({str(self.prefix)!r}, documents={len(self)}, "
            f"tokens={self.num_tokens}, dtype={self.dtype.name})"
        )

    # -- access ---------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> np.ndarray:
        return self.document(i)

    def document(self, i: int, offset: int = 0, length: int | None = None) -> np.ndarray:
        """Tokens of document ``i`` (a read-only view), optionally a sub-range of it."""
        if not -len(self) <= i < len(self):
            raise IndexError(
                f"document {i} out of range for {len(self)} documents in {self.prefix}"
            )
        i %= len(self)
        start = int(self._offsets[i]) + offset
        stop = (
            int(self._offsets[i + 1])
            if length is None
            else min(start + length, int(self._offsets[i + 1]))
        )
        return self._tokens[start:stop]

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of the whole store, across document boundaries."""
        return self._tokens[start:stop]

    def mask(self, i: int) -> np.ndarray | None:
        """The loss mask of document ``i`` (1 = train on this token), or None without a sidecar."""
        return None if self._mask_store is None else self._mask_store.document(i)

    def mask_tokens(self, start: int, stop: int) -> np.ndarray | None:
        return None if self._mask_store is None else self._mask_store.tokens(start, stop)

    def iter_documents(self) -> Iterable[np.ndarray]:
        for i in range(len(self)):
            yield self.document(i)

    # -- validation -----------------------------------------------------------------------------
    def check_ids(self, vocab_size: int) -> None:
        """Raise if any token id is negative or >= ``vocab_size`` (scans in bounded chunks)."""
        for start in range(0, self.num_tokens, SCAN_CHUNK):
            chunk = self._tokens[start : start + SCAN_CHUNK]
            high, low = int(chunk.max()), int(chunk.min())
            if high >= vocab_size or low < 0:
                bad = high if high >= vocab_size else low
                position = start + int(np.argmax(chunk == bad))
                doc = int(np.searchsorted(self._offsets, position, side="right") - 1)
                raise StoreError(
                    f"{bin_path(self.prefix)}: token id {bad} in document {doc} is outside the "
                    f"vocabulary of {vocab_size} ids (0..{vocab_size - 1})"
                )


# ---------------------------------------------------------------------------------------------
# Writing


class _BinWriter:
    """Streams one ``.bin`` to a temporary name and writes its ``.idx`` at the end.

    With a ``work`` directory the temporaries have fixed names there and the document sizes are
    appended to a ``.sizes`` file as they come, so a killed run can :meth:`resume`: the files
    are cut back to the last recorded state and writing continues after it.
    """

    def __init__(
        self,
        prefix: Path,
        dtype: np.dtype,
        work: Path | None = None,
        resume: tuple[int, int, Path] | None = None,
    ) -> None:
        self.prefix = prefix
        self.dtype = np.dtype(dtype)
        self.work = work
        if work is None:
            self.temp_bin, self.temp_idx = temp_name(bin_path(prefix)), temp_name(idx_path(prefix))
        else:
            self.temp_bin, self.temp_idx = work / f"{prefix.name}.bin", work / f"{prefix.name}.idx"
        self.sizes_file = None if work is None else work / f"{prefix.name}.sizes"
        self.sizes: list[np.ndarray] = []
        if resume is not None:
            self._cut_back(*resume)
        mode = "wb" if resume is None else "ab"
        self.handle = open(self.temp_bin, mode)  # noqa: SIM115 - closed in finish/abort
        sizes = self.sizes_file
        self.sizes_handle = None if sizes is None else open(sizes, mode)  # noqa: SIM115

    def write(self, flat: np.ndarray, sizes: np.ndarray) -> None:
        sizes = np.asarray(sizes, dtype=np.int32)
        with naming(self.temp_bin):
            self.handle.write(np.ascontiguousarray(flat, dtype=self.dtype).tobytes())
            if self.sizes_handle is not None:
                self.sizes_handle.write(sizes.tobytes())
        self.sizes.append(sizes)

    def flush(self) -> None:
        """Hand the written bytes to the OS (enough for a process kill; see :meth:`resume`)."""
        self.handle.flush()
        if self.sizes_handle is not None:
            self.sizes_handle.flush()

    def _cut_back(self, documents: int, tokens: int, store_idx: Path) -> None:
        """Continue after ``documents`` / ``tokens`` recorded by a killed run (work mode only).

        A run killed while publishing has moved some temporaries to their final names already;
        as long as the store's ``.idx`` (the commit point, ``store_idx``) is absent they are
        this run's, and are taken back.
        """
        assert self.sizes_file is not None, "resume needs a work directory"
        final_bin = bin_path(self.prefix)
        if not self.temp_bin.is_file() and final_bin.is_file() and not store_idx.is_file():
            os.replace(final_bin, self.temp_bin)  # killed mid-publish: take the .bin back
        nbytes = tokens * self.dtype.itemsize
        for path, size in ((self.temp_bin, nbytes), (self.sizes_file, documents * 4)):
            if not path.is_file() or path.stat().st_size < size:
                raise StoreError(
                    f"{path}: shorter than its resume state records; remove {self.work} and rerun"
                )
            os.truncate(path, size)
        self.sizes = [np.fromfile(self.sizes_file, dtype=np.int32)]

    def all_sizes(self) -> np.ndarray:
        return np.concatenate(self.sizes) if self.sizes else np.zeros(0, dtype=np.int32)

    def finish(self) -> tuple[Path, Path]:
        self.handle.close()
        if self.sizes_handle is not None:
            self.sizes_handle.close()
        self.temp_idx.write_bytes(encode_index(self.dtype, self.all_sizes()))
        return self.temp_bin, self.temp_idx

    def abort(self) -> None:
        self.handle.close()
        if self.sizes_handle is not None:  # work mode: the files stay for a resume
            self.sizes_handle.close()
            return
        for path in (self.temp_bin, self.temp_idx):
            path.unlink(missing_ok=True)

    def cleanup(self) -> None:
        if self.sizes_file is not None:
            self.sizes_file.unlink(missing_ok=True)


class TokenStoreWriter:
    """Write a store atomically: nothing appears at ``PREFIX.*`` until :meth:`finalize`.

    Use as a context manager; an exception (or a kill) leaves only temporary files, which carry a
    ``.tmp-`` mark and never the final names. With ``work`` (a job's work directory) the
    temporaries live there under fixed names and stay after a failure; ``resume`` (a
    :meth:`state` saved by a killed run) continues them from that point.
    """

    def __init__(
        self,
        prefix: str | Path,
        vocab_size: int,
        *,
        with_mask: bool = False,
        metadata: dict[str, Any] | None = None,
        dtype: np.dtype | type | None = None,
        work: Path | None = None,
        resume: dict[str, int] | None = None,
    ) -> None:
        if vocab_size <= 0:
            raise StoreError(f"{prefix}: vocabulary size must be positive, got {vocab_size}")
        self.prefix = normalize_prefix(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.vocab_size = int(vocab_size)
        self.dtype = np.dtype(dtype) if dtype is not None else dtype_for_vocab(vocab_size)
        self.metadata = dict(metadata or {})
        self.num_documents = int(resume["documents"]) if resume else 0
        self.num_tokens = int(resume["tokens"]) if resume else 0
        cut = (self.num_documents, self.num_tokens, idx_path(self.prefix)) if resume else None
        self._tokens = _BinWriter(self.prefix, self.dtype, work, cut)
        self._mask = None
        if with_mask:
            self._mask = _BinWriter(mask_prefix(self.prefix), np.dtype(np.uint8), work, cut)
        self._done = False

    def __enter__(self) -> TokenStoreWriter:
        return self

    def state(self) -> dict[str, int]:
        """What has been written (flushed to the OS), for a resumable writer's state file."""
        self._tokens.flush()
        if self._mask is not None:
            self._mask.flush()
        return {"documents": self.num_documents, "tokens": self.num_tokens}

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._done:
            self.abort()

    def add(
        self, tokens: Sequence[int] | np.ndarray, mask: Sequence[int] | np.ndarray | None = None
    ) -> None:
        """Append one document."""
        array = np.asarray(tokens)
        self.add_flat(
            array,
            np.array([len(array)], dtype=np.int64),
            None if mask is None else np.asarray(mask),
        )

    def add_batch(
        self,
        documents: Sequence[Sequence[int] | np.ndarray],
        masks: Sequence[Sequence[int] | np.ndarray] | None = None,
    ) -> None:
        """Append many documents with one write (the fast path for tokenization)."""
        if not documents:
            return
        sizes = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
        flat = (
            np.concatenate([np.asarray(d, dtype=np.int64) for d in documents])
            if sizes.sum()
            else np.zeros(0, np.int64)
        )
        flat_mask = None
        if masks is not None:
            flat_mask = (
                np.concatenate([np.asarray(m, dtype=np.uint8) for m in masks])
                if sizes.sum()
                else np.zeros(0, np.uint8)
            )
        self.add_flat(flat, sizes, flat_mask)

    def add_flat(self, flat: np.ndarray, sizes: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Append documents given as one flat token array and their sizes."""
        if self._done:
            raise RuntimeError(f"{self.prefix}: writer already finalized")
        if len(flat) != int(np.sum(sizes)):
            raise ValueError(
                f"{self.prefix}: {len(flat)} tokens but sizes sum to {int(np.sum(sizes))}"
            )
        if len(flat) and (int(flat.max()) >= self.vocab_size or int(flat.min()) < 0):
            bad = int(flat.max()) if int(flat.max()) >= self.vocab_size else int(flat.min())
            raise StoreError(
                f"{self.prefix}: token id {bad} is outside the vocabulary of {self.vocab_size} ids"
            )
        if (mask is None) != (self._mask is None):
            raise ValueError(
                f"{self.prefix}: masks must be given for every document or none "
                f"(with_mask={self._mask is not None})"
            )
        self._tokens.write(flat, sizes)
        if self._mask is not None and mask is not None:
            if len(mask) != len(flat):
                raise ValueError(
                    f"{self.prefix}: mask has {len(mask)} entries for {len(flat)} tokens"
                )
            self._mask.write(mask.astype(np.uint8), sizes)
        self.num_documents += len(sizes)
        self.num_tokens += len(flat)

    def finalize(self, **extra_metadata: Any) -> TokenStore:
        """Publish all files (mask and provenance first, the token ``.idx`` last)."""
        if self._done:
            raise RuntimeError(f"{self.prefix}: writer already finalized")
        staged = []
        if self._mask is not None:
            staged.append((self._mask, mask_prefix(self.prefix)))
        staged.append((self._tokens, self.prefix))
        try:
            finished = [(writer.finish(), prefix) for writer, prefix in staged]
            metadata = {
                "format": "synthlm-token-store",
                "synthlm_version": __version__,
                **self.metadata,
                **extra_metadata,
                "vocab_size": self.vocab_size,
                "dtype": self.dtype.name,
                "num_documents": self.num_documents,
                "num_tokens": self.num_tokens,
                "has_mask": self._mask is not None,
            }
            files = {}
            for (temp_bin, temp_idx), prefix in finished:
                files[bin_path(prefix)], files[idx_path(prefix)] = temp_bin, temp_idx
            publish_store(self.prefix, files, metadata)
        except BaseException:
            self.abort()
            raise
        for writer, _ in staged:
            writer.cleanup()
        self._done = True
        return TokenStore(self.prefix, check_ids=False)

    def abort(self) -> None:
        self._tokens.abort()
        if self._mask is not None:
            self._mask.abort()


EOS_PROBES = 4096  # documents whose last token tells whether a foreign store ends them with EOS


def write_store(
    prefix: str | Path,
    documents: Iterable[Sequence[int]],
    vocab_size: int,
    masks: Iterable[Sequence[int]] | None = None,
    **metadata: Any,
) -> TokenStore:
    """Convenience: write a whole store from in-memory documents."""
    docs = list(documents)
    mask_list = None if masks is None else list(masks)
    with TokenStoreWriter(
        prefix, vocab_size, with_mask=mask_list is not None, metadata=metadata
    ) as writer:
        writer.add_batch(docs, mask_list)
        return writer.finalize()


def publish_store(prefix: Path, files: dict[Path, Path], metadata: dict[str, Any]) -> None:
    """Move a store's finished temporaries (``{final: temp}``) to their names, so that no reader
    can ever open a mix of two versions, whatever moment a kill strikes.

    A store is visible only when ``PREFIX.idx`` and ``PREFIX.bin`` both exist (see
    :class:`TokenStore`), so the old ``.idx`` (and the old mask's) is removed first; then the
    mask, the ``.bin`` and the provenance ``.json`` are renamed; the new ``.idx``, renamed last, is
    the commit point. In between there is no store at ``PREFIX`` (a reader gets "no token store
    here"), never an old ``.idx`` beside a new ``.bin``.
    """
    prefix = normalize_prefix(prefix)
    mask = mask_prefix(prefix)
    steps: list[tuple[str, Path, Path | None]] = [
        ("remove", idx_path(prefix), None),
        ("remove", idx_path(mask), None),
    ]
    if bin_path(mask) not in files:  # an overwritten store must not keep an older loss mask
        steps.append(("remove", bin_path(mask), None))
    order = [bin_path(mask), idx_path(mask), bin_path(prefix)]
    steps += [("publish", final, files[final]) for final in order if final in files]
    steps.append(("json", meta_path(prefix), None))
    steps.append(("publish", idx_path(prefix), files[idx_path(prefix)]))
    for step in steps:
        _publish_step(step, metadata)


def _publish_step(step: tuple[str, Path, Path | None], metadata: dict[str, Any]) -> None:
    """One step of :func:`publish_store` (a function of its own so tests can kill between steps)."""
    action, final, temp = step
    if action == "remove":
        final.unlink(missing_ok=True)
    elif action == "json":
        atomic_write_json(final, metadata)
    else:
        publish(temp, final)


def store_files(prefix: str | Path) -> list[Path]:
    """Every final name a store at ``prefix`` can have: tokens, mask sidecar, provenance."""
    prefix = normalize_prefix(prefix)
    mask = mask_prefix(prefix)
    return [bin_path(prefix), idx_path(prefix), bin_path(mask), idx_path(mask), meta_path(prefix)]


def store_stamp(prefix: str | Path) -> dict[str, list[int]]:
    """Size and modification time of each file of the store at ``prefix``: what a resumable
    job keys its work on, so a store rewritten between a kill and the rerun starts it over."""
    return {
        str(path): [path.stat().st_size, path.stat().st_mtime_ns]
        for path in store_files(prefix)
        if path.is_file()
    }


def remove_stale_store_temps(prefix: str | Path) -> int:
    """Delete the temporaries that killed writers left for the store at ``prefix`` (a writer
    that still runs keeps its own; see :func:`synthlm.fileio.is_stale_temp`)."""
    return remove_stale_temps_of(store_files(prefix))


def remove_store(prefix: str | Path) -> None:
    """Delete a store and its sidecars (used when a user asks to overwrite)."""
    prefix = normalize_prefix(prefix)
    for base in (prefix, mask_prefix(prefix)):
        for path in (bin_path(base), idx_path(base)):
            path.unlink(missing_ok=True)
    meta_path(prefix).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Merging


def merge_stores(
    prefixes: Sequence[str | Path],
    out: str | Path,
    *,
    vocab_size: int | None = None,
    overwrite: bool = False,
) -> TokenStore:
    """Concatenate stores in the given order into ``out`` (documents kept intact).

    An existing store at ``out`` is replaced only with ``overwrite`` (as ``tokenize`` does).
    Temporaries a killed merge left for ``out`` are removed first; a rerun redoes the merge (a
    plain copy) and writes the same bytes.
    """
    if not prefixes:
        raise StoreError("merge: give at least one input store")
    if store_exists(normalize_prefix(out)) and not overwrite:
        raise StoreError(
            f"{normalize_prefix(out)}: a token store already exists; pass --overwrite to replace it"
        )
    if normalize_prefix(out) in {normalize_prefix(p) for p in prefixes}:
        raise StoreError(f"--out {out}: is also an input; write the merged store to a new prefix")
    stores = [TokenStore(p, check_ids=False) for p in prefixes]
    dtypes = {s.dtype for s in stores}
    if len(dtypes) != 1:
        raise StoreError(
            f"merge: stores have different dtypes "
            f"({', '.join(sorted(d.name for d in dtypes))}); retokenize with one tokenizer"
        )
    masks = {s.has_mask for s in stores}
    if len(masks) != 1:
        raise StoreError("merge: some stores have loss masks and some do not")
    vocab = vocab_size or max(int(s.vocab_size or 0) for s in stores) or None
    if vocab is None:
        raise StoreError("merge: no input store records its vocabulary size; pass vocab_size")
    check_same_framing(stores)
    check_same_ids(stores)
    for store in stores:  # an input's bad id is named now, not found in the published output
        store.check_ids(int(vocab))
    out = normalize_prefix(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_store_temps(out)  # a killed merge's temporaries (its output is rewritten whole)
    staged: list[tuple[Path, Path]] = []
    try:
        parts = [(out, [s.prefix for s in stores], stores[0].dtype)]
        if stores[0].has_mask:
            parts.insert(
                0, (mask_prefix(out), [mask_prefix(s.prefix) for s in stores], np.dtype(np.uint8))
            )
        for target, sources, dtype in parts:
            temp_bin, temp_idx = temp_name(bin_path(target)), temp_name(idx_path(target))
            staged += [(temp_bin, bin_path(target)), (temp_idx, idx_path(target))]
            with open(temp_bin, "wb") as sink, naming(bin_path(target)):
                for source in sources:
                    with open(bin_path(source), "rb") as part:
                        shutil.copyfileobj(part, sink, 1 << 22)
            temp_idx.write_bytes(encode_index(dtype, np.concatenate([s.sizes for s in stores])))
        metadata = {
            **merged_provenance(stores),
            "format": "synthlm-token-store",
            "synthlm_version": __version__,
            "merged_from": [str(s.prefix) for s in stores],
            "vocab_size": int(vocab),
            "dtype": stores[0].dtype.name,
            "num_documents": int(sum(len(s) for s in stores)),
            "num_tokens": int(sum(s.num_tokens for s in stores)),
            "has_mask": stores[0].has_mask,
        }
        publish_store(out, {final: temp for temp, final in staged}, metadata)
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    return TokenStore(out, check_ids=False)  # every input was checked against ``vocab``


def id_meaning(store: TokenStore) -> tuple[str, str] | None:
    """(key, label) of what gives the store's ids their meaning, as recorded: the tokenizer's
    files (by their sha256, wherever they were read from) or a synthetic dataset's id layout;
    None if neither is recorded (a store another tool wrote). Equal keys, equal meanings."""
    tokenizer = store.metadata.get("tokenizer")
    if isinstance(tokenizer, dict) and tokenizer.get("sha256"):
        sha = str(tokenizer["sha256"])
        return f"tokenizer {sha}", f"tokenizer sha256 {sha[:12]}"
    if isinstance(tokenizer, dict):
        described = json.dumps({k: v for k, v in tokenizer.items() if k != "path"}, sort_keys=True)
        return f"tokenizer {described}", "a tokenizer recorded without its sha256"
    layout = store.metadata.get("layout")
    if layout is None:
        return None
    size = layout.get("vocab_size") if isinstance(layout, dict) else None
    label = f"a synthetic id layout of {size} ids" if size else "a synthetic id layout"
    if isinstance(layout, dict):  # layouts of one size differ in where promoters and markers sit
        from synthlm.data.synthetic_layouts import layout_key

        promoters = layout.get("promoters") or {}
        placed = ", ".join(f"{name} {ids}" for name, ids in promoters.items() if ids)
        label += f" {layout_key(layout)}" + (f" (promoters {placed})" if placed else "")
    return f"layout {json.dumps(layout, sort_keys=True)}", label


def check_same_ids(stores: Sequence[TokenStore]) -> None:
    """Merged stores must agree on what each id means: one tokenizer (the same files at any
    path) or one synthetic id layout, else an id would stand for two tokens in one store."""
    groups: dict[tuple[str, str], list[str]] = {}
    for store in stores:
        meaning = id_meaning(store)
        if meaning is not None:
            groups.setdefault(meaning, []).append(str(store.prefix))
    if len(groups) > 1:
        listed = "; ".join(
            f"{label}: {', '.join(prefixes)}" for (_, label), prefixes in groups.items()
        )
        raise StoreError(
            f"merge: the stores' ids mean different tokens ({listed}); merge only stores made "
            "with one tokenizer, or generated with one synthetic id layout"
        )


# PREFIX.json keys that readers act on per store: the mixture adds an EOS after each document
# of a store without append_eod, and a checkpoint prompts with BOS as its stores' prepend_bos
FRAMING_KEYS = ("append_eod", "prepend_bos")
# counts over a store's documents or text: a merged store's are the sums
SUMMED_KEYS = ("num_bytes", "records", "empty_documents", "bad_records")
# what describes one store alone (recomputed for the merged one, or meaningless for it)
OWN_KEYS = frozenset(
    {
        "format",
        "synthlm_version",
        "num_documents",
        "num_tokens",
        "has_mask",
        "dtype",
        "vocab_size",
        "merged_from",
        "split_from",
        "bad_examples",
        "source_files",
        *SUMMED_KEYS,
    }
)


def check_same_framing(stores: Sequence[TokenStore]) -> None:
    """Refuse to merge stores whose documents are framed differently (one ends its documents in
    EOS, another not): the merged store records one setting, so part of it would be read wrong."""
    for key in FRAMING_KEYS:
        values = [s.metadata.get(key) for s in stores]
        if len({json.dumps(v) for v in values}) > 1:
            listed = ", ".join(
                f"{s.prefix}: {'not recorded' if v is None else str(v).lower()}"
                for s, v in zip(stores, values, strict=True)
            )
            raise StoreError(
                f"merge: the stores differ in {key} ({listed}); readers act on it per store, so "
                f"a merged store would read some documents wrong; tokenize them alike "
                f"(--{key.replace('_', '-')} for all or none)"
            )


def merged_provenance(stores: Sequence[TokenStore]) -> dict[str, Any]:
    """What a merged store's PREFIX.json inherits: the settings every input shares (framing,
    tokenizer, options), the summed counts when every input has them (``num_bytes`` keeps bits
    per byte right), and the inputs' source files."""
    metas = [s.metadata for s in stores]
    shared = {
        key: value
        for key, value in metas[0].items()
        if key not in OWN_KEYS and all(key in m and m[key] == value for m in metas[1:])
    }
    sums = {
        key: sum(m[key] for m in metas)
        for key in SUMMED_KEYS
        if all(isinstance(m.get(key), int) and not isinstance(m.get(key), bool) for m in metas)
    }
    files = [f for m in metas for f in m.get("source_files") or []]
    return {**shared, **sums, **({"source_files": list(dict.fromkeys(files))} if files else {})}


def describe(store: TokenStore) -> dict[str, Any]:
    """Counts and length percentiles, for ``synthlm data inspect``."""
    sizes = store.sizes
    pct = {
        f"p{q}": float(np.percentile(sizes, q)) if len(sizes) else 0.0
        for q in (0, 10, 50, 90, 99, 100)
    }
    return {
        "prefix": str(store.prefix),
        "documents": len(store),
        "tokens": store.num_tokens,
        "dtype": store.dtype.name,
        "vocab_size": store.vocab_size,
        "has_mask": store.has_mask,
        "mean_length": float(sizes.mean()) if len(sizes) else 0.0,
        "length_percentiles": pct,
        "bytes_on_disk": os.path.getsize(bin_path(store.prefix))
        + os.path.getsize(idx_path(store.prefix)),
    }
