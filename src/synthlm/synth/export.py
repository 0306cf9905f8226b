"""Export a synthetic dataset into another framework's id space (Megatron-LM, GPT-NeoX).

Inside synthlm a synthetic store keeps its own ids ``0..V-1`` and the trainer shifts them past
the natural vocabulary and joins documents with EOS while packing. Megatron and GPT-NeoX read
stores as they are, so an exported split is written the way synthlm would feed it:

* ``SPLIT_text_document``: every id plus ``offset``, and ``eod`` after each document (as
  Megatron's ``preprocess_data.py --append-eod`` does);
* ``SPLIT_label_document``: GPT-NeoX labels (``label_data_paths``), int32, the token where the
  loss mask is 1 and -100 where it is 0 (NeoX trains only on labels >= 0); the EOD is a target;
* the synthlm loss-mask sidecar beside the text store, so synthlm reads the export unchanged.

Megatron-LM's GPTDataset has no per-token loss-mask input: there the mask is lost (every token
becomes a target) unless the user's own dataset class reads the label store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.store import TokenStore, TokenStoreWriter, _BinWriter, bin_path, idx_path
from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json, publish
from synthlm.synth.spec import SPLITS

IGNORE = -100  # GPT-NeoX / Hugging Face: a label that is not a target
CHUNK_DOCS = 65_536


def export_synthetic(
    directory: str | Path,
    out: str | Path,
    *,
    offset: int,
    eod: int,
    vocab_size: int | None = None,
    splits: list[str] | None = None,
) -> dict[str, Any]:
    """Write each split of the dataset at ``directory`` into ``out`` in global ids; returns the
    export summary (also written to ``out/export.json``)."""
    from synthlm.synth import load_synthetic

    dataset = load_synthetic(directory)
    local = dataset.vocab_size
    vocab = _checked_vocab(offset, eod, local, vocab_size)
    chosen = splits or list(SPLITS)
    for split in chosen:
        if split not in SPLITS:
            raise UserError(f"--split {split!r}: choose from {', '.join(SPLITS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "source": str(directory),
        "offset": offset,
        "eod": eod,
        "vocab_size": vocab,
        "synthetic_vocab_size": local,
        "global_id_range": [offset, offset + local],
        "splits": {},
    }
    for split in chosen:
        summary["splits"][split] = _export_split(
            dataset.split(split), out / split, offset, eod, vocab
        )
    atomic_write_json(out / "export.json", summary)
    return summary


def _checked_vocab(offset: int, eod: int, local: int, vocab_size: int | None) -> int:
    """The model vocabulary the export targets; ids must fit it and EOD must not collide."""
    if offset < 0 or eod < 0:
        raise UserError(f"--offset and --eod must be >= 0 (got {offset}, {eod})")
    if offset <= eod < offset + local:
        raise UserError(
            f"--eod {eod} falls inside the synthetic ids [{offset}, {offset + local}); "
            f"pick the tokenizer's end-of-document id"
        )
    needed = max(offset + local, eod + 1)
    if vocab_size is not None and vocab_size < needed:
        raise UserError(
            f"--vocab-size {vocab_size} is too small: ids up to {needed - 1} are needed "
            f"(offset {offset} + {local} synthetic ids)"
        )
    return vocab_size or needed


def _export_split(
    store: TokenStore, prefix: Path, offset: int, eod: int, vocab: int
) -> dict[str, int]:
    text = Path(f"{prefix}_text_document")
    labels = _BinWriter(Path(f"{prefix}_label_document"), np.dtype(np.int32))
    meta = {"append_eod": True, "exported_from": str(store.prefix), "offset": offset, "eod": eod}
    try:
        with TokenStoreWriter(text, vocab, with_mask=True, metadata=meta) as writer:
            for first in range(0, len(store), CHUNK_DOCS):
                ids, mask, sizes = _chunk(
                    store, first, min(first + CHUNK_DOCS, len(store)), offset, eod
                )
                writer.add_flat(ids, sizes, mask)
                labels.write(np.where(mask == 1, ids, IGNORE), sizes)
            writer.finalize()
        temp_bin, temp_idx = labels.finish()
    except BaseException:
        labels.abort()
        raise
    publish(temp_bin, bin_path(labels.prefix))
    publish(temp_idx, idx_path(labels.prefix))
    return {"documents": len(store), "tokens": int(store.num_tokens) + len(store)}


def _chunk(
    store: TokenStore, first: int, stop: int, offset: int, eod: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documents ``[first, stop)`` shifted by ``offset``, each followed by ``eod`` (mask 1)."""
    start, end = int(store.offsets[first]), int(store.offsets[stop])
    sizes = np.asarray(store.sizes[first:stop], dtype=np.int64)
    ends = np.cumsum(sizes)
    ids = np.insert(store.tokens(start, end).astype(np.int64) + offset, ends, eod)
    mask = store.mask_tokens(start, end)
    mask = np.ones(end - start, np.uint8) if mask is None else np.asarray(mask, np.uint8)
    return ids, np.insert(mask, ends, 1), sizes + 1
