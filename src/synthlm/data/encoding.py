"""The per-chunk work of ``synthlm tokenize``: options, the chunk encoder and the ordered pool.

Split from the pipeline (:mod:`synthlm.data.tokenization`) so that other encoders (the chat
encoder of :mod:`synthlm.data.chat_tokenization`) plug into the same pool without importing the
pipeline that chooses between them.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from synthlm.data.readers import TXT_MODES, Chunk, Extracted, extract
from synthlm.data.store import dtype_for_vocab
from synthlm.errors import UserError
from synthlm.tokenizers import BaseTokenizer
from synthlm.workers import die_with_parent

if TYPE_CHECKING:
    from synthlm.protocols import Tokenizer

ON_ERROR = ("skip", "fail")
KEEP_EMPTY_NEEDS_SPECIALS = (
    "--keep-empty needs --prepend-bos and/or --append-eod (Rocket: both): without them an empty "
    "document has no tokens, so it is no document to every reader (Megatron and GPT-NeoX "
    "training skip it, synthlm's mixture reads it as a lone EOS, and megatron-core cannot open "
    "a store of only empty documents, whose .bin is empty)"
)


@dataclass(frozen=True)
class Options:
    """Everything that decides the output bytes (and nothing that only decides speed)."""

    keys: tuple[str, ...] = ("text",)
    append_eod: bool = False
    prepend_bos: bool = False
    keep_empty: bool = False  # empty = "" or text the tokenizer encodes to no ids
    ftfy: bool = False
    txt_mode: str = "file"
    on_error: str = "skip"
    max_docs: int | None = None
    shard: int = 0
    num_shards: int = 1

    @classmethod
    def build(cls, chat: bool = False, keys: Any = None, **values: Any) -> Options:
        """Options from keyword values (the library's and the CLI's names are the field names);
        ``keys`` default to ``text``, or ``messages`` for conversations."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"tokenize: unknown option(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        if chat and values.get("keep_empty"):
            raise UserError(
                "--keep-empty: --chat skips no empty documents (every conversation ends with "
                "EOS; one without messages is a bad record); drop --keep-empty"
            )
        keys = (("messages",) if chat else ("text",)) if keys is None else keys
        return cls(keys=tuple(keys), **values)

    def metadata(self) -> dict[str, Any]:
        """What a store's ``PREFIX.json`` records about how it was made (keys name the stores)."""
        return {k: v for k, v in asdict(self).items() if k != "keys"}

    def check(self, tokenizer: BaseTokenizer) -> None:
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise UserError(f"--keys must name distinct fields, got {list(self.keys)}")
        bad_key = next((k for k in self.keys if not k or "/" in k or k.startswith(".")), None)
        if bad_key is not None:
            raise UserError(
                f"--keys {bad_key!r}: a key names an output file, so it cannot be empty, "
                f"contain '/' or start with '.'"
            )
        if self.on_error not in ON_ERROR:
            raise UserError(f"--on-error {self.on_error!r}: choose one of {', '.join(ON_ERROR)}")
        if self.txt_mode not in TXT_MODES:
            raise UserError(f"--txt-mode {self.txt_mode!r}: choose one of {', '.join(TXT_MODES)}")
        if self.num_shards < 1 or not 0 <= self.shard < self.num_shards:
            raise UserError(
                f"--shard {self.shard} --num-shards {self.num_shards}: need 0 <= shard < num-shards"
            )
        if self.max_docs is not None and self.max_docs < 0:
            raise UserError(f"--max-docs must be >= 0, got {self.max_docs}")
        if self.append_eod and tokenizer.eos_id is None:
            raise UserError(
                f"--append-eod: the tokenizer {tokenizer.path} has no eos token; add one "
                f"or drop --append-eod"
            )
        if self.prepend_bos and tokenizer.bos_id is None:
            raise UserError(
                f"--prepend-bos: the tokenizer {tokenizer.path} has no bos token; drop "
                f"--prepend-bos"
            )
        if self.keep_empty and not (self.prepend_bos or self.append_eod):
            raise UserError(KEEP_EMPTY_NEEDS_SPECIALS)


@dataclass
class ChunkResult:
    """One chunk, encoded: per key a flat id array and document sizes."""

    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    records: int
    empty: dict[str, int]
    bad: list[str]
    nbytes: int
    text_bytes: dict[str, int] = field(default_factory=dict)  # UTF-8 bytes of each key's kept text
    masks: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # per key, flat uint8 loss masks (chat mode)
    blank: int = 0  # blank .jsonl lines among the chunk's records (counted, never documents)


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
            texts, records = extracted.texts[key], extracted.records[key]
            if self.options.keep_empty:
                texts, records = self._with_empties(key, extracted)
            if self._fix is not None:
                texts = [self._fix(t) for t in texts]
            flat, sizes, failed = self._encode(texts, records, chunk)
            bad += failed
            if self.options.keep_empty:  # "" and text that encodes to nothing, both kept
                empty[key] = int((sizes == 0).sum())
            else:
                keep = sizes > 0  # text that encodes to nothing is an empty document too
                empty[key] += int((~keep).sum())
                sizes = sizes[keep]
            arrays[key] = self._add_specials(flat, sizes)
            # for bits per byte at eval time; undecodable texts were dropped, so "ignore" is exact
            text_bytes[key] = sum(len(t.encode("utf-8", "ignore")) for t in texts)
        bad.sort()
        return ChunkResult(
            arrays,
            len(chunk),
            empty,
            [message for _, message in bad],
            chunk.nbytes,
            text_bytes,
            blank=extracted.blank,
        )

    @staticmethod
    def _with_empties(key: str, extracted: Extracted) -> tuple[list[str], list[int]]:
        """The key's texts with its empty records put back as ``""``, in record order."""
        kept = dict(zip(extracted.records[key], extracted.texts[key], strict=True))
        order = sorted([*kept, *extracted.empty_records[key]])
        return [kept.get(i, "") for i in order], order

    def _encode(
        self, texts: list[str], records: list[int], chunk: Chunk
    ) -> tuple[np.ndarray, np.ndarray, list]:
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
                failed.append(
                    (
                        record,
                        f"{chunk.where(record)}: not valid UTF-8 (undecodable character at "
                        f"offset {exc.start})",
                    )
                )
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


def _init_worker(
    tokenizer: Tokenizer,
    options: Options,
    encoder: Callable[[Any, Options], Encoder] = ChunkEncoder,
    parent: int | None = None,
) -> None:
    """Each worker encodes single-threaded: parallelism comes from the pool, not from Rust threads."""
    global _WORKER
    if parent is not None:
        die_with_parent(parent)
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
    the chat encoder (:mod:`synthlm.data.chat_tokenization`) for conversations.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        options: Options,
        workers: int,
        encoder: Callable[[Any, Options], Encoder] = ChunkEncoder,
    ) -> None:
        self.tokenizer, self.options, self.workers, self.encoder = (
            tokenizer,
            options,
            workers,
            encoder,
        )
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ChunkPool:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=_pool_context(),
                initializer=_init_worker,
                initargs=(self.tokenizer, self.options, self.encoder, os.getpid()),
            )
            self._pool.submit(
                os.getpid
            ).result()  # start the workers now, before any thread of ours exists
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
