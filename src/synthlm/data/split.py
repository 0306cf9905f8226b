"""Split a token store into held-out ``valid`` documents and the ``train`` rest.

Natural loss measured on the documents a model trained on says how well it memorised them, not
how well it models the language; an experiment comparing runs needs text none of them saw.
Documents (never parts of one) are chosen by a Philox permutation keyed by ``seed``, so the
split is the same on every machine; both outputs keep the input's order, loss masks and
provenance (tokenizer, EOS convention) plus where they came from. Existing ``_train`` /
``_valid`` stores are replaced only with ``overwrite`` (as ``data merge`` and ``tokenize`` do):
a rerun with another fraction or seed must not silently change the split earlier runs used.

Both stores are written complete into a hidden work directory next to the output
(``.OUT.split-partial``, see :mod:`synthlm.partial`) and only then moved to ``OUT_train`` and
``OUT_valid``. A kill while writing leaves nothing at the final names, and the rerun starts over
(a copy of the store is cheap). A kill while moving leaves ``OUT_train`` published and
``OUT_valid`` not yet: the work directory's state says so, and a rerun of the same command
(same input files, fraction, seed and output) finishes the move instead of refusing its own
half-published output; any other command sees the half-published store as an existing one.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.store import (
    TokenStore,
    TokenStoreWriter,
    bin_path,
    idx_path,
    mask_prefix,
    meta_path,
    normalize_prefix,
    publish_store,
    remove_stale_store_temps,
    store_exists,
    store_stamp,
)
from synthlm.errors import StoreError, UserError
from synthlm.fileio import check_output
from synthlm.partial import WorkDir, fingerprint, work_dir

CHUNK_TOKENS = 1 << 22  # documents are copied in runs of about this many tokens
PARTS = ("train", "valid")


def valid_documents(num_documents: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the held-out documents: at least one, and at least one left to train on."""
    if not 0 < fraction < 1:
        raise UserError(f"--valid-fraction: {fraction} must be between 0 and 1 (exclusive)")
    if num_documents < 2:
        raise UserError(f"the store has {num_documents} document(s); a split needs at least 2")
    count = min(max(math.ceil(fraction * num_documents), 1), num_documents - 1)
    rng = np.random.Generator(np.random.Philox(key=[seed & (2**64 - 1), 0x5B117]))
    return np.sort(rng.permutation(num_documents)[:count])


def split_store(
    prefix: str | Path,
    fraction: float,
    *,
    out: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, TokenStore]:
    """Write ``OUT_train`` and ``OUT_valid`` (``OUT`` defaults to the input prefix); existing
    stores there are replaced only with ``overwrite``. Both appear only once both are complete;
    a rerun after a kill finishes or redoes the split (see the module docstring)."""
    prefix = normalize_prefix(prefix)
    if not store_exists(prefix):
        raise UserError(f"{prefix}: not a token store (PREFIX.bin + PREFIX.idx)")
    base = normalize_prefix(out) if out is not None else prefix
    targets = {part: Path(f"{base}_{part}") for part in PARTS}
    store = TokenStore(prefix, check_ids=False)
    held = np.zeros(len(store), dtype=bool)
    held[valid_documents(len(store), fraction, seed)] = True
    work = WorkDir(work_dir(base, "split"), _fingerprint(prefix, fraction, seed, targets))
    state = work.peek()
    finishing = bool(state and state.get("staged"))  # killed while publishing: ours to finish
    check_targets(prefix, list(targets.values()), overwrite or finishing)
    for target in targets.values():
        remove_stale_store_temps(target)  # what a killed run of an older synthlm left there
    try:
        if not finishing:
            work.open()  # a fresh directory: whatever a run killed while writing left is gone
            _stage(store, held, prefix, fraction, seed, work.path)
            work.save({"staged": True})
        for part, target in targets.items():
            _publish_part(work.path / part, target)
    except BaseException as exc:
        work.keep_if_resumable(exc)
        raise
    work.remove()
    return {part: TokenStore(target, check_ids=False) for part, target in targets.items()}


def _fingerprint(prefix: Path, fraction: float, seed: int, targets: dict[str, Path]) -> str:
    """What decides the split's bytes: the input's files (by size and modification time, so
    an input rewritten between a kill and the rerun starts the split over), the fraction, the
    seed, and where the parts go."""
    return fingerprint(
        {
            "input": str(prefix.resolve()),
            "files": store_stamp(prefix),
            "fraction": repr(float(fraction)),
            "seed": int(seed),
            "targets": {part: str(t.resolve()) for part, t in targets.items()},
        }
    )


def _stage(
    store: TokenStore, held: np.ndarray, prefix: Path, fraction: float, seed: int, work: Path
) -> None:
    """Write both parts as complete stores ``work/train`` and ``work/valid``."""
    vocab = int(store.vocab_size or int(store.tokens(0, store.num_tokens).max()) + 1)
    kept = {k: v for k, v in store.metadata.items() if k not in WHOLE_STORE_KEYS}
    for part, chosen in zip(PARTS, (~held, held), strict=True):
        info = {"store": str(prefix), "part": part, "valid_fraction": fraction, "seed": seed}
        counts = _domain_counts(store, chosen)
        meta = {**kept, **_byte_share(store, chosen), **counts, "split_from": info}
        _copy_documents(store, np.flatnonzero(chosen), str(work / part), vocab, meta)


def _publish_part(staged: Path, target: Path) -> None:
    """Move the complete store ``staged`` (in the work directory) to ``target``.

    Its ``.idx`` moves last (the commit point of :func:`publish_store`), so a staged store
    without one was published by a killed run and is done. Otherwise the files that run moved
    already are taken back first (they are this run's own: the staged ``.idx`` proves the store
    was not committed), and the store is published again from the start, in the order that
    never pairs an old ``.idx`` with a new ``.bin``.
    """
    if not idx_path(staged).is_file():
        return
    try:
        metadata: dict[str, Any] = json.loads(meta_path(staged).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{meta_path(staged)}: the staged split is damaged ({exc}); rerun the command with "
            f"--overwrite to split again"
        ) from None
    pairs = [(bin_path(staged), bin_path(target))]
    if metadata.get("has_mask"):
        pairs += [(bin_path(mask_prefix(staged)), bin_path(mask_prefix(target)))]
        pairs += [(idx_path(mask_prefix(staged)), idx_path(mask_prefix(target)))]
    for temp, final in pairs:
        if not temp.is_file() and final.is_file():
            os.replace(final, temp)  # moved by the killed run: take it back
        if not temp.is_file():
            raise StoreError(
                f"{temp}: missing from the staged split; rerun the command with --overwrite to "
                f"split again"
            )
    files = {final: temp for temp, final in pairs}
    files[idx_path(target)] = idx_path(staged)
    publish_store(target, files, metadata)


def check_targets(prefix: Path, targets: list[Path], overwrite: bool) -> None:
    """Before any work: each output can be written, is not the input, and replaces an
    existing store only with ``overwrite`` (the wording of ``data merge`` and ``tokenize``)."""
    for target in targets:
        check_output(target)
        if target.resolve() == prefix.resolve():
            raise StoreError(
                f"--out: {target} is the input store; write the split to another prefix"
            )
        if store_exists(target) and not overwrite:
            raise StoreError(
                f"{target}: a token store already exists; pass --overwrite to replace it"
            )


# PREFIX.json keys that count the whole input (its documents, or the records its tokenize run
# read): a part has other numbers, so they are recomputed (num_bytes, domain_counts) or dropped
WHOLE_STORE_KEYS = frozenset(
    {"num_documents", "num_tokens", "has_mask", "dtype", "vocab_size", "num_bytes", "records",
     "empty_documents", "bad_records", "domain_counts"}
)  # fmt: skip


def _domain_counts(store: TokenStore, chosen: np.ndarray) -> dict[str, dict[str, int]]:
    """A synthetic split's documents per domain, counted over the part from the domain index
    beside the store (``PREFIX.domains.npy``), in the order of its ``domains`` names."""
    sidecar = Path(f"{store.prefix}.domains.npy")
    names = store.metadata.get("domains")
    if not sidecar.is_file() or not isinstance(names, list):
        return {}
    owners = np.load(sidecar, mmap_mode="r")[chosen]
    return {"domain_counts": {str(n): int((owners == i).sum()) for i, n in enumerate(names)}}


def _byte_share(store: TokenStore, chosen: np.ndarray) -> dict[str, int]:
    """The part's share of the text bytes (``num_bytes``, for bits per byte at eval).

    A store records the bytes of all its text, not per document, so a part gets the bytes of its
    share of the tokens: the store-wide bytes per token that eval uses anyway. Copying the whole
    store's count would divide it by a part's tokens and understate bits per byte 20x for a 5%
    valid split.
    """
    total = store.metadata.get("num_bytes")  # written by synthlm tokenize
    if not isinstance(total, int) or not store.num_tokens:
        return {}
    tokens = int(store.sizes[chosen].sum())
    return {"num_bytes": round(total * tokens / store.num_tokens)}


def _copy_documents(
    store: TokenStore, docs: np.ndarray, prefix: str, vocab: int, metadata: dict
) -> TokenStore:
    with TokenStoreWriter(
        prefix, vocab, with_mask=store.has_mask, metadata=metadata, dtype=store.dtype
    ) as writer:
        start = 0
        while start < len(docs):
            stop, tokens = start, 0
            while stop < len(docs) and (tokens < CHUNK_TOKENS or stop == start):
                tokens += int(store.sizes[docs[stop]])
                stop += 1
            batch = docs[start:stop]
            writer.add_batch(
                [store.document(int(d)) for d in batch],
                [store.mask(int(d)) for d in batch] if store.has_mask else None,
            )
            start = stop
        return writer.finalize()
