"""``synthlm tokenize``: input files -> one Megatron token store per key, in parallel, in order.

Design (measured on 2 cores, see benchmarks/RESULTS.md): the main process only slices inputs into
~1 MiB chunks of raw records and writes results; ``--workers`` processes each parse, clean and
encode whole chunks with single-threaded batch encoding (Rust for HF tokenizers). Processes beat
Rust threads in one process here because JSON parsing, ftfy and turning encodings into arrays are
Python work that threads would serialise on the GIL. Results are written strictly in chunk order,
so the bytes never depend on ``--workers`` or on scheduling, and a fixed window of chunks in
flight overlaps reading, encoding and writing with bounded memory.

Each output store is written into a hidden work directory (:mod:`synthlm.partial`) and renamed
only when complete, so a killed run leaves nothing at the final names. The work directory records
after every chunk how far the run got; rerunning the same command continues from the last
completed chunk (also when it was killed between publishing two keys' stores), and the result is
byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthlm.data.chat_tokenization import prepare_chat
from synthlm.data.encoding import ChunkPool, ChunkResult, Options
from synthlm.data.readers import (
    Chunk,
    Source,
    check_keys,
    check_txt_mode,
    count_records,
    expand_inputs,
    read_chunks,
    source_summary,
)
from synthlm.data.store import (
    TokenStoreWriter,
    normalize_prefix,
    remove_stale_store_temps,
    store_exists,
)
from synthlm.errors import UserError
from synthlm.fileio import check_output
from synthlm.partial import WorkDir, fingerprint, work_dir
from synthlm.tokenizers import BaseTokenizer, load_tokenizer

MAX_BAD_EXAMPLES = 1000


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
            ranges.append(
                Planned(source, start, stop, source.nbytes * (stop - start) // max(count, 1))
            )
        offset += count
    return ranges


def planned_chunks(ranges: list[Planned], options: Options) -> Iterator[Chunk]:
    """Chunks over the planned ranges; without shards, ``--max-docs`` stops reading early."""
    limit = options.max_docs if options.num_shards == 1 else None
    seen = 0
    for part in ranges:
        if limit is not None and seen >= limit:
            return
        for chunk in read_chunks(
            part.source,
            start=part.start,
            stop=part.stop,
            txt_mode=options.txt_mode,
            keys=list(options.keys),
        ):
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
    blank: int = 0  # blank .jsonl lines: records read that are neither documents nor bad
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
        self.blank += result.blank
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
    from synthlm.progress import progress_bar

    # bytes of input (known for files): tqdm then shows MB/s and the ETA; hub datasets have no size
    return progress_bar(
        total=total or None,
        unit="B",
        unit_scale=True,
        desc="tokenize",
        disable=quiet,
        file=sys.stderr,
        smoothing=0.1,
    )


def _show(bar, tally: Tally, result: ChunkResult) -> None:
    bar.update(result.nbytes)
    if not bar.disable:
        rates = tally.rates()
        bar.set_postfix_str(
            f"{rates['docs_per_s']:,.0f} docs/s, {rates['tokens_per_s'] / 1e6:,.2f}M tok/s",
            refresh=False,
        )


# -------------------------------------------------------------------------------------------------
# The library entry point


def tokenize(
    inputs: Sequence[str | Path],
    tokenizer: str | Path | BaseTokenizer,
    out: str | Path,
    *,
    workers: int | None = None,
    split: str | None = None,
    hf_config: str | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    quiet: bool = False,
    chat: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Tokenize ``inputs`` into ``OUT_{key}_document`` stores; returns the run's stats.

    ``keys`` default to ``text``, or ``messages`` with ``chat=True``: conversations rendered with
    the tokenizer's chat template into one store with assistant-only loss masks (see
    :mod:`synthlm.data.chat_tokenization`).

    ``options`` are the fields of :class:`~synthlm.data.encoding.Options` (everything that decides
    the output bytes: ``keys``, ``append_eod``, ``prepend_bos``, ``keep_empty``, ``ftfy``,
    ``txt_mode``, ``on_error``, ``max_docs``, ``shard``, ``num_shards``); the other arguments only
    decide where and how fast.

    Bad records (invalid JSON, missing key, non-string, non-UTF-8) are skipped and counted with
    their ``file:line`` under ``on_error="skip"``; ``"fail"`` stops at the first one with that
    message. Empty documents (text ``""`` or text the tokenizer encodes to no ids; whitespace is
    not stripped) are skipped and counted, or with ``keep_empty`` kept in place as documents of
    only their BOS and/or EOS (Rocket trains on every CSV row, empty ones as ``<s></s>``).
    """
    if str(out).endswith(("/", os.sep)):  # "stores/": a directory meant, PREFIX expected
        raise UserError(
            f"--out {out}: give a store prefix, not a directory: the stores are written as "
            f"PREFIX_{{key}}_document.bin/.idx/.json (e.g. --out {Path(out) / 'web'})"
        )
    options = Options.build(chat=chat, **options)
    tok = tokenizer if isinstance(tokenizer, BaseTokenizer) else load_tokenizer(tokenizer)
    options.check(tok)
    prefixes = output_prefixes(out, options.keys)
    for prefix in prefixes.values():
        check_output(prefix)
    workers = _worker_count(workers)
    done = [p for p in prefixes.values() if store_exists(p)]
    work_path = work_dir(normalize_prefix(out), "tokenize")
    if done and skip_existing and len(done) == len(prefixes) and not work_path.exists():
        return {"skipped": True, "outputs": {k: str(p) for k, p in prefixes.items()}}
    sources = expand_inputs(list(inputs), split=split, config=hf_config)
    check_keys(sources, list(options.keys))
    check_txt_mode(sources, options.txt_mode)
    chat_setup = prepare_chat(tok, tokenizer, options, sources) if chat else None
    work = WorkDir(work_path, _fingerprint(tok, options, sources, prefixes, chat_setup))
    resuming = work.peek()
    if done and not overwrite and resuming is None:
        raise UserError(
            f"{done[0]}: a token store already exists; pass --overwrite to replace it or "
            f"--skip-existing"
        )
    replaced = None if overwrite else _replaced_by(resuming, prefixes, work_path)
    if replaced is not None:
        raise UserError(
            f"{replaced}: a token store already exists, and the interrupted run in {work_path} "
            f"was replacing it (--overwrite); pass --overwrite to finish replacing it"
        )
    for prefix in prefixes.values():  # what killed runs left; a live writer's stays
        remove_stale_store_temps(prefix)
    ranges = plan_ranges(sources, options)
    return _run(
        ranges, sources, tok, options, prefixes, workers, quiet, chat_setup, work, overwrite
    )


def _replaced_by(
    resuming: dict[str, Any] | None, prefixes: dict[str, Path], work_path: Path
) -> Path | None:
    """The existing store an interrupted ``--overwrite`` run was about to replace, if any: a
    rerun without ``--overwrite`` must not finish replacing it unasked. A store whose new
    version is still staged in the work directory is the old one."""
    if not resuming or not resuming.get("overwrite"):
        return None
    for key, prefix in prefixes.items():
        staged = (work_path / f"{prefix.name}.bin").is_file()
        if key not in resuming.get("published", []) and store_exists(prefix) and staged:
            return prefix
    return None


def _fingerprint(
    tok: BaseTokenizer,
    options: Options,
    sources: list[Source],
    prefixes: dict[str, Path],
    chat: Any,
) -> str:
    """Everything that decides the output bytes: a resumed run must be this same run (the
    same files, unchanged, and of a dataset the same split and config)."""
    files = [[*_file_state(Path(s.path)), s.split, s.config] for s in sources]
    return fingerprint(
        {
            "options": asdict(options),
            "tokenizer": tok.describe(),
            "sources": files,
            "outputs": {k: str(p) for k, p in prefixes.items()},
            "chat": chat.metadata if chat else None,
        }
    )


def _file_state(path: Path) -> list:
    """(path, size, mtime) of a file; of a saved ``datasets`` dir, (path, the same of every
    file in it); a hub name (``hf:NAME``) is only its name."""
    if path.is_dir():
        inside = sorted(p for p in path.rglob("*") if p.is_file())
        return [str(path), [[str(p.relative_to(path)), *_stamp(p)] for p in inside]]
    return [str(path), *(_stamp(path) if path.is_file() else (None, None))]


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _worker_count(workers: int | None) -> int:
    if workers is None:
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    return workers


def _run(
    ranges: list[Planned],
    sources: list[Source],
    tok: BaseTokenizer,
    options: Options,
    prefixes: dict[str, Path],
    workers: int,
    quiet: bool,
    chat: Any,
    work: WorkDir,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Encode, write in order, finalize; ``chat`` (a ``ChatSetup``) swaps in the chat encoder.

    Resumes from ``work`` when it holds this run's state: chunks already written are read but
    not encoded again, and stores already published are kept.
    """
    tally = Tally(options.keys)
    pool_args = (
        (tok, options, workers)
        if chat is None
        else (chat.tokenizer, options, workers, chat.encoder)
    )
    try:
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(ChunkPool(*pool_args))
            state = work.open() or {
                "chunks": 0,
                "complete": False,
                "published": [],
                "overwrite": overwrite,  # a rerun must ask again before it replaces a store
            }
            published = _resume(state, prefixes, tally, work)
            writers = {
                k: stack.enter_context(
                    _writer(p, tok, chat, work, state["writers"][k] if state["chunks"] else None)
                )
                for k, p in prefixes.items()
                if k not in published
            }
            bar = stack.enter_context(_progress(sum(part.nbytes for part in ranges), quiet))
            bar.update(tally.nbytes)
            if not state["complete"]:
                chunks = itertools.islice(planned_chunks(ranges, options), state["chunks"], None)
                for result in pool.map(chunks):
                    _write_chunk(result, options, tally, writers)
                    state["chunks"] += 1
                    if work.due():
                        _save(work, state, writers, tally, published)
                    _show(bar, tally, result)
                state["complete"] = True
                _save(work, state, writers, tally, published)
            stats = _stats(tally, sources, prefixes, options, workers)
            _refuse_empty(tally, writers, options)
            for key, writer in writers.items():
                extra = chat.metadata if chat else {}
                writer.finalize(**{**_metadata(key, tok, sources, tally, options), **extra})
                published.append(key)
                _save(work, state, writers, tally, published)
    except BaseException as exc:
        work.keep_if_resumable(exc)
        raise
    work.remove()
    return stats


def _refuse_empty(tally: Tally, writers: dict[str, TokenStoreWriter], options: Options) -> None:
    """A store without a single document is never what was asked for (a wrong ``--keys``, an
    input that is not what its name says): stop, saying why, and publish nothing. Except a
    shard that was dealt no records (more shards than records): a SLURM array's task must
    still leave its part, empty, for the merge, and says so."""
    empty = [key for key in writers if tally.documents[key] == 0]
    if not empty:
        return
    if options.num_shards > 1 and tally.records == 0:
        print(
            f"warning: shard {options.shard} of {options.num_shards} was dealt no records (the "
            "input has fewer records than shards): writing empty stores",
            file=sys.stderr,
        )
        return
    if tally.bad_examples:
        why = f"{tally.bad:,} of {tally.records:,} records were bad, e.g. {tally.bad_examples[0]}"
    else:
        why = f"the input held {tally.records:,} records, none with text"
    raise UserError(f"no documents for key {', '.join(empty)}: {why}; nothing was written")


def _writer(
    prefix: Path, tok: BaseTokenizer, chat: Any, work: WorkDir, resume: dict | None
) -> TokenStoreWriter:
    return TokenStoreWriter(
        prefix, tok.vocab_size, with_mask=chat is not None, work=work.path, resume=resume
    )


def _write_chunk(
    result: ChunkResult, options: Options, tally: Tally, writers: dict[str, TokenStoreWriter]
) -> None:
    if result.bad and options.on_error == "fail":
        raise UserError(f"{result.bad[0]} (use --on-error skip to skip bad records)")
    tally.add(result)
    for key, (flat, sizes) in result.arrays.items():
        writers[key].add_flat(flat, sizes, result.masks.get(key))


def _resume(
    state: dict[str, Any], prefixes: dict[str, Path], tally: Tally, work: WorkDir
) -> list[str]:
    """Restore the counts of an interrupted run; returns the keys whose stores it published."""
    published = list(state["published"])
    if not state["chunks"]:
        return published
    for key, value in state["tally"].items():
        setattr(tally, key, value)
    for key, prefix in prefixes.items():
        staged = (work.path / f"{prefix.name}.bin").is_file()
        if key not in published and store_exists(prefix) and not staged:
            published.append(key)  # killed after its publish, before the state recorded it
    return published


def _save(
    work: WorkDir,
    state: dict[str, Any],
    writers: dict[str, TokenStoreWriter],
    tally: Tally,
    published: list[str],
) -> None:
    counts = {k: v for k, v in asdict(tally).items() if k not in ("keys", "started")}
    writer_states = {k: w.state() for k, w in writers.items() if k not in published}
    work.save({**state, "tally": counts, "writers": writer_states, "published": published})


def _stats(
    tally: Tally, sources: list[Source], prefixes: dict[str, Path], options: Options, workers: int
) -> dict[str, Any]:
    return {
        "outputs": {k: str(p) for k, p in prefixes.items()},
        "sources": source_summary(sources),
        "records": tally.records,
        "documents": dict(tally.documents),
        "tokens": dict(tally.tokens),
        "empty": dict(tally.empty),
        "keep_empty": options.keep_empty,  # whether the empty documents were kept or skipped
        "bad_records": tally.bad,
        "blank_lines": tally.blank,
        "bad_examples": list(tally.bad_examples),
        "input_bytes": tally.nbytes,
        "workers": workers,
        "shard": options.shard,
        "num_shards": options.num_shards,
        **tally.rates(),
    }


def _metadata(
    key: str, tok: BaseTokenizer, sources: list[Source], tally: Tally, options: Options
) -> dict[str, Any]:
    """Provenance in PREFIX.json; the mixture reads ``append_eod`` to know documents end in eos."""
    return {
        "source": "synthlm tokenize",
        "key": key,
        "num_bytes": tally.text_bytes[key],
        "tokenizer": tok.describe(),
        "special_ids": tok.special_ids(),
        "extra_ids": tok.extra_ids,
        "source_files": source_summary(sources),
        **options.metadata(),
        "records": tally.records,
        "empty_documents": tally.empty[key],  # kept in the store when keep_empty
        "bad_records": tally.bad,
        "blank_lines": tally.blank,
        "bad_examples": tally.bad_examples[:100],
    }
