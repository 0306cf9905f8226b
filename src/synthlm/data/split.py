"""Split a token store into held-out ``valid`` documents and the ``train`` rest.

Natural loss measured on the documents a model trained on says how well it memorised them, not
how well it models the language; an experiment comparing runs needs text none of them saw.
Documents (never parts of one) are chosen by a Philox permutation keyed by ``seed``, so the
split is the same on every machine; both outputs keep the input's order, loss masks and
provenance (tokenizer, EOS convention) plus where they came from. Existing ``_train`` /
``_valid`` stores are replaced only with ``overwrite`` (as ``data merge`` and ``tokenize`` do):
a rerun with another fraction or seed must not silently change the split earlier runs used.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from synthlm.data.store import TokenStore, TokenStoreWriter, normalize_prefix, store_exists
from synthlm.errors import StoreError, UserError
from synthlm.fileio import check_output

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
    stores there are replaced only with ``overwrite``."""
    prefix = normalize_prefix(prefix)
    if not store_exists(prefix):
        raise UserError(f"{prefix}: not a token store (PREFIX.bin + PREFIX.idx)")
    base = str(normalize_prefix(out) if out is not None else prefix)
    check_targets(prefix, [Path(f"{base}_{part}") for part in PARTS], overwrite)
    store = TokenStore(prefix, check_ids=False)
    held = np.zeros(len(store), dtype=bool)
    held[valid_documents(len(store), fraction, seed)] = True
    vocab = int(store.vocab_size or int(store.tokens(0, store.num_tokens).max()) + 1)
    kept = {
        k: v
        for k, v in store.metadata.items()
        if k not in {"num_documents", "num_tokens", "has_mask", "dtype", "vocab_size"}
    }
    written = {}
    for part, chosen in zip(PARTS, (~held, held)):
        info = {"store": str(prefix), "part": part, "valid_fraction": fraction, "seed": seed}
        meta = {**kept, **_byte_share(store, chosen), "split_from": info}
        written[part] = _copy_documents(
            store, np.flatnonzero(chosen), f"{base}_{part}", vocab, meta
        )
    return written


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
