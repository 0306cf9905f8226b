"""``synthlm tokenize``: input files -> one Megatron token store per key, in parallel, in order.

Design (measured on 2 cores, see benchmarks/RESULTS.md): the main process only slices inputs into
~1 MiB chunks of raw records and writes results; ``--workers`` processes each parse, clean and
encode whole chunks with single-threaded batch encoding (Rust for HF tokenizers). Processes beat
Rust threads in one process here because JSON parsing, ftfy and turning encodings into arrays are
Python work that threads would serialise on the GIL. Results are written strictly in chunk order,
so the bytes never depend on ``--workers`` or on scheduling, and a fixed window of chunks in
flight overlaps reading, encoding and writing with bounded memory.

Each output store is written under a temporary name and renamed only when complete, so a killed
run leaves nothing at the final names; the next run removes the stale temporaries and starts over.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.errors import UserError
from synthlm.fileio import TMP_MARK
from synthlm.readers import (
    TXT_MODES,
    Chunk,
    Source,
    check_keys,
    count_records,
    expand_inputs,
    extract,
    read_chunks,
    source_summary,
)
from synthlm.store import TokenStoreWriter, dtype_for_vocab, normalize_prefix, store_exists
from synthlm.tokenizers import BaseTokenizer, load_tokenizer

ON_ERROR = ("skip", "fail")
MAX_BAD_EXAMPLES = 1000
STORE_FILES = (".bin", ".idx", ".json", ".mask.bin", ".mask.idx")


@dataclass(frozen=True)
class Options:
    """Everything that decides the output bytes (and nothing that only decides speed)."""

    keys: tuple[str, ...] = ("text",)
    append_eod: bool = False
    prepend_bos: bool = False
    ftfy: bool = False
    txt_mode: str = "file"
    on_error: str = "skip"
    max_docs: int | None = None
    shard: int = 0
    num_shards: int = 1

    def check(self, tokenizer: BaseTokenizer) -> None:
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise UserError(f"--keys must name distinct fields, got {list(self.keys)}")
        bad_key = next((k for k in self.keys if not k or "/" in k or k.startswith(".")), None)
        if bad_key is not None:
            raise UserError(f"--keys {bad_key!r}: a key names an output file, so it cannot be empty, contain '/' or start with '.'")
        if self.on_error not in ON_ERROR:
            raise UserError(f"--on-error {self.on_error!r}: choose one of {', '.join(ON_ERROR)}")
        if self.txt_mode not in TXT_MODES:
            raise UserError(f"--txt-mode {self.txt_mode!r}: choose one of {', '.join(TXT_MODES)}")
        if self.num_shards < 1 or not 0 <= self.shard < self.num_shards:
            raise UserError(f"--shard {self.shard} --num-shards {self.num_shards}: need 0 <= shard < num-shards")
        if self.max_docs is not None and self.max_docs < 0:
            raise UserError(f"--max-docs must be >= 0, got {self.max_docs}")
        if self.append_eod and tokenizer.eos_id is None:
            raise UserError(f"--append-eod: the tokenizer {tokenizer.path} has no eos token; add one or drop --append-eod")
        if self.prepend_bos and tokenizer.bos_id is None:
            raise UserError(f"--prepend-bos: the tokenizer {tokenizer.path} has no bos token; drop --prepend-bos")


@dataclass
class ChunkResult:
    """One chunk, encoded: per key a flat id array and document sizes."""

    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    records: int
    empty: dict[str, int]
    bad: list[str]
    nbytes: int
    text_bytes: dict[str, int] = field(default_factory=dict)  # UTF-8 bytes of each key's kept text
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # per key, flat uint8 loss masks (chat mode)


# -------------------------------------------------------------------------------------------------
# The per-chunk work (runs in worker processes)


class ChunkEncoder:
    """Chunk -> ids; holds the tokenizer so each worker builds it once."""

    def __init__(self, tokenizer: BaseTokenizer, options: Options) -> None:
        self.tokenizer = tokenizer
        self.options = options
        self.dtype = dtype_for_vocab(tokenizer.vocab_size)
        self._fix = None
        if options.ftfy:
            import ftfy

            self._fix = ftfy.fix_text

    def __call__(self, chunk: Chunk) -> ChunkResult:
        extracted = extract(chunk, list(self.options.keys))
        bad = list(extracted.bad)
        arrays, text_bytes = {}, {}
        empty = dict(extracted.empty)
        for key in self.options.keys:
            texts = extracted.texts[key]
            if self._fix is not None:
                texts = [self._fix(t) for t in texts]
            flat, sizes, failed = self._encode(texts, extracted.records[key], chunk)
            bad += failed
            keep = sizes > 0  # text that encodes to nothing is an empty document too
            empty[key] += int((~keep).sum())
            arrays[key] = self._add_specials(flat, sizes[keep])
            # for bits per byte at eval time; undecodable texts were dropped, so "ignore" is exact
            text_bytes[key] = sum(len(t.encode("utf-8", "ignore")) for t in texts)
        bad.sort()
        return ChunkResult(arrays, len(chunk), empty, [message for _, message in bad], chunk.nbytes, text_bytes)

    def _encode(self, texts: list[str], records: list[int], chunk: Chunk) -> tuple[np.ndarray, np.ndarray, list]:
        try:
            flat, sizes = self.tokenizer.encode_flat(texts, self.dtype)
            return flat, sizes, []
        except (UnicodeError, TypeError, ValueError):
            pass  # some text holds an unpaired surrogate (undecodable input bytes); find which
        good, failed = [], []
        for text, record in zip(texts, records, strict=True):
            try:
                text.encode("utf-8")
                good.append(text)
            except UnicodeEncodeError as exc:
                failed.append((record, f"{chunk.where(record)}: not valid UTF-8 (undecodable character at offset {exc.start})"))
        flat, sizes = self.tokenizer.encode_flat(good, self.dtype)
        return flat, sizes, failed

    def _add_specials(self, flat: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bos = self.tokenizer.bos_id if self.options.prepend_bos else None
        eos = self.tokenizer.eos_id if self.options.append_eod else None
        extra = (bos is not None) + (eos is not None)
        if not extra or not len(sizes):
            return flat, sizes
        new_sizes = sizes + extra
        starts = np.concatenate(([0], np.cumsum(new_sizes)[:-1]))
        out = np.empty(len(flat) + extra * len(sizes), dtype=flat.dtype)
        is_text = np.ones(len(out), dtype=bool)
        if bos is not None:
            out[starts], is_text[starts] = bos, False
        if eos is not None:
            ends = starts + new_sizes - 1
            out[ends], is_text[ends] = eos, False
        out[is_text] = flat
        return out, new_sizes


Encoder = Callable[[Chunk], ChunkResult]
_WORKER: Encoder | None = None


def _init_worker(tokenizer: Any, options: Options, encoder: Callable[[Any, Options], Encoder] = ChunkEncoder) -> None:
    """Each worker encodes single-threaded: parallelism comes from the pool, not from Rust threads."""
    global _WORKER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if hasattr(tokenizer, "num_threads"):
        tokenizer.num_threads = 1
    _WORKER = encoder(tokenizer, options)


def _encode_in_worker(chunk: Chunk) -> ChunkResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER(chunk)


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe and fast (Linux: no re-import, tokenizer inherited); spawn elsewhere.

    The pool starts before this process creates any thread of its own; HF tokenizers disables its
    Rust thread pool in forked children by itself.
    """
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class ChunkPool:
    """Encode chunks on ``workers`` processes (in this process for 1); results in input order.

    ``encoder(tokenizer, options)`` builds the per-chunk work: :class:`ChunkEncoder` for text,
    the chat encoder (:mod:`synthlm.tokenize_chat`) for conversations.
    """

    def __init__(self, tokenizer: Any, options: Options, workers: int, encoder: Callable[[Any, Options], Encoder] = ChunkEncoder) -> None:
        self.tokenizer, self.options, self.workers, self.encoder = tokenizer, options, workers, encoder
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ChunkPool:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=_pool_context(), initializer=_init_worker, initargs=(self.tokenizer, self.options, self.encoder)
            )
            self._pool.submit(os.getpid).result()  # start the workers now, before any thread of ours exists
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def map(self, chunks: Iterator[Chunk]) -> Iterator[ChunkResult]:
        if self._pool is None:
            yield from map(self.encoder(self.tokenizer, self.options), chunks)
            return
        window = 4 * self.workers  # chunks in flight: every worker stays busy, memory stays bounded
        pending: deque[Future] = deque()
        for chunk in chunks:
            pending.append(self._pool.submit(_encode_in_worker, chunk))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -------------------------------------------------------------------------------------------------
# Planning the record range (--max-docs, --shard)


@dataclass(frozen=True)
class Planned:
    """Records ``[start, stop)`` of one source (``stop=None``: to the end)."""

    source: Source
    start: int = 0
    stop: int | None = None
    nbytes: int = 0


def plan_ranges(sources: list[Source], options: Options) -> list[Planned]:
    """The record ranges this run reads; shards cut the concatenated input into even slices."""
    if options.num_shards == 1:
        return [Planned(source, 0, None, source.nbytes) for source in sources]
    counts = [count_records(source, options.txt_mode) for source in sources]
    total = sum(counts) if options.max_docs is None else min(sum(counts), options.max_docs)
    lo = total * options.shard // options.num_shards
    hi = total * (options.shard + 1) // options.num_shards
    ranges, offset = [], 0
    for source, count in zip(sources, counts, strict=True):
        start, stop = max(lo - offset, 0), min(hi - offset, count)
        if start < stop:
            ranges.append(Planned(source, start, stop, source.nbytes * (stop - start) // max(count, 1)))
        offset += count
    return ranges


def planned_chunks(ranges: list[Planned], options: Options) -> Iterator[Chunk]:
    """Chunks over the planned ranges; without shards, ``--max-docs`` stops reading early."""
    limit = options.max_docs if options.num_shards == 1 else None
    seen = 0
    for part in ranges:
        if limit is not None and seen >= limit:
            return
        for chunk in read_chunks(part.source, start=part.start, stop=part.stop, txt_mode=options.txt_mode, keys=list(options.keys)):
            if limit is not None and seen + len(chunk) >= limit:
                yield chunk.head(limit - seen)
                return
            seen += len(chunk)
            yield chunk


# -------------------------------------------------------------------------------------------------
# Outputs


def output_prefixes(out: str | Path, keys: Sequence[str]) -> dict[str, Path]:
    """``OUT_{key}_document`` per key (GPT-NeoX naming)."""
    out = normalize_prefix(out)
    return {key: out.with_name(f"{out.name}_{key}_document") for key in keys}


def remove_stale_temps(prefixes: dict[str, Path]) -> int:
    """Delete temporaries a killed run left for these outputs (only ours, never other files)."""
    removed = 0
    for prefix in prefixes.values():
        if not prefix.parent.is_dir():
            continue
        for suffix in STORE_FILES:
            for stale in prefix.parent.glob(f"{prefix.name}{suffix}{TMP_MARK}*"):
                stale.unlink(missing_ok=True)
                removed += 1
    return removed


@dataclass
class Tally:
    """Running counts for the progress bar and the final stats."""

    keys: tuple[str, ...]
    records: int = 0
    nbytes: int = 0
    documents: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    empty: dict[str, int] = field(default_factory=dict)
    bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    text_bytes: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        for table in (self.documents, self.tokens, self.empty, self.text_bytes):
            table.update(dict.fromkeys(self.keys, 0))

    def add(self, result: ChunkResult) -> None:
        self.records += result.records
        self.nbytes += result.nbytes
        self.bad += len(result.bad)
        self.bad_examples += result.bad[: max(MAX_BAD_EXAMPLES - len(self.bad_examples), 0)]
        for key, (flat, sizes) in result.arrays.items():
            self.documents[key] += len(sizes)
            self.tokens[key] += len(flat)
            self.empty[key] += result.empty[key]
            self.text_bytes[key] += result.text_bytes.get(key, 0)

    def rates(self) -> dict[str, float]:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        return {
            "seconds": round(seconds, 3),
            "docs_per_s": round(sum(self.documents.values()) / seconds, 1),
            "tokens_per_s": round(sum(self.tokens.values()) / seconds, 1),
            "mb_per_s": round(self.nbytes / 1e6 / seconds, 3),
        }


def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    # bytes of input (known for files): tqdm then shows MB/s and the ETA; hub datasets have no size
    return tqdm(total=total or None, unit="B", unit_scale=True, desc="tokenize", disable=quiet, file=sys.stderr, smoothing=0.1)


def _show(bar, tally: Tally, result: ChunkResult) -> None:
    bar.update(result.nbytes)
    if not bar.disable:
        rates = tally.rates()
        bar.set_postfix_str(f"{rates['docs_per_s']:,.0f} docs/s, {rates['tokens_per_s'] / 1e6:,.2f}M tok/s", refresh=False)


# -------------------------------------------------------------------------------------------------
# The library entry point


def tokenize(
    inputs: Sequence[str | Path],
    tokenizer: str | Path | BaseTokenizer,
    out: str | Path,
    *,
    keys: Sequence[str] | None = None,
    append_eod: bool = False,
    prepend_bos: bool = False,
    ftfy: bool = False,
    txt_mode: str = "file",
    on_error: str = "skip",
    max_docs: int | None = None,
    shard: int = 0,
    num_shards: int = 1,
    workers: int | None = None,
    split: str = "train",
    hf_config: str | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    quiet: bool = False,
    chat: bool = False,
) -> dict[str, Any]:
    """Tokenize ``inputs`` into ``OUT_{key}_document`` stores; returns the run's stats.

    ``keys`` default to ``text``, or ``messages`` with ``chat=True``: conversations rendered with
    the tokenizer's chat template into one store with assistant-only loss masks (see
    :mod:`synthlm.tokenize_chat`).

    Bad records (invalid JSON, missing key, non-string, non-UTF-8) are skipped and counted with
    their ``file:line`` under ``on_error="skip"``; ``"fail"`` stops at the first one with that
    message. Empty documents are always skipped and counted.
    """
    tok = tokenizer if isinstance(tokenizer, BaseTokenizer) else load_tokenizer(tokenizer)
    keys = (("messages",) if chat else ("text",)) if keys is None else keys
    options = Options(tuple(keys), append_eod, prepend_bos, ftfy, txt_mode, on_error, max_docs, shard, num_shards)
    options.check(tok)
    workers = _worker_count(workers)
    prefixes = output_prefixes(out, options.keys)
    done = [p for p in prefixes.values() if store_exists(p)]
    if done and skip_existing and len(done) == len(prefixes):
        return {"skipped": True, "outputs": {k: str(p) for k, p in prefixes.items()}}
    if done and not overwrite:
        raise UserError(f"{done[0]}: a token store already exists; pass --overwrite to replace it or --skip-existing")
    sources = expand_inputs(list(inputs), split=split, config=hf_config)
    check_keys(sources, list(options.keys))
    chat_setup = None
    if chat:
        from synthlm.tokenize_chat import prepare_chat

        chat_setup = prepare_chat(tok, tokenizer, options, sources)
    remove_stale_temps(prefixes)
    ranges = plan_ranges(sources, options)
    return _run(ranges, sources, tok, options, prefixes, workers, quiet, chat_setup)


def _worker_count(workers: int | None) -> int:
    if workers is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    return workers


def _run(ranges: list[Planned], sources: list[Source], tok: BaseTokenizer, options: Options,
         prefixes: dict[str, Path], workers: int, quiet: bool, chat: Any = None) -> dict[str, Any]:
    """Encode, write in order, finalize; ``chat`` (a ``ChatSetup``) swaps in the chat encoder."""
    tally = Tally(options.keys)
    pool_args = (tok, options, workers) if chat is None else (chat.tokenizer, options, workers, chat.encoder)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ChunkPool(*pool_args))
        writers = {k: stack.enter_context(TokenStoreWriter(p, tok.vocab_size, with_mask=chat is not None)) for k, p in prefixes.items()}
        bar = stack.enter_context(_progress(sum(part.nbytes for part in ranges), quiet))
        for result in pool.map(planned_chunks(ranges, options)):
            if result.bad and options.on_error == "fail":
                raise UserError(f"{result.bad[0]} (use --on-error skip to skip bad records)")
            tally.add(result)
            for key, (flat, sizes) in result.arrays.items():
                writers[key].add_flat(flat, sizes, result.masks.get(key))
            _show(bar, tally, result)
        stats = _stats(tally, sources, prefixes, options, workers)
        for key, writer in writers.items():
            writer.finalize(**{**_metadata(key, tok, sources, tally, options), **(chat.metadata if chat else {})})
    return stats


def _stats(tally: Tally, sources: list[Source], prefixes: dict[str, Path], options: Options, workers: int) -> dict[str, Any]:
    return {
        "outputs": {k: str(p) for k, p in prefixes.items()},
        "sources": source_summary(sources),
        "records": tally.records,
        "documents": dict(tally.documents),
        "tokens": dict(tally.tokens),
        "empty": dict(tally.empty),
        "bad_records": tally.bad,
        "bad_examples": list(tally.bad_examples),
        "input_bytes": tally.nbytes,
        "workers": workers,
        "shard": options.shard,
        "num_shards": options.num_shards,
        **tally.rates(),
    }


def _metadata(key: str, tok: BaseTokenizer, sources: list[Source], tally: Tally, options: Options) -> dict[str, Any]:
    """Provenance in PREFIX.json; the mixture reads ``append_eod`` to know documents end in eos."""
    return {
        "source": "synthlm tokenize",
        "key": key,
        "num_bytes": tally.text_bytes[key],
        "tokenizer": tok.describe(),
        "special_ids": tok.special_ids(),
        "extra_ids": tok.extra_ids,
        "source_files": source_summary(sources),
        "append_eod": options.append_eod,
        "prepend_bos": options.prepend_bos,
        "ftfy": options.ftfy,
        "txt_mode": options.txt_mode,
        "max_docs": options.max_docs,
        "shard": options.shard,
        "num_shards": options.num_shards,
        "records": tally.records,
        "empty_documents": tally.empty[key],
        "bad_records": tally.bad,
        "bad_examples": tally.bad_examples[:100],
    }
