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

The export is built in a hidden work directory next to ``out`` (``.OUT.export-partial``, see
:mod:`synthlm.partial`) and renamed to ``out`` when every split and ``export.json`` are written,
so ``out`` is only ever a whole export (or absent). The work directory records the splits done;
the same command rerun after a kill redoes only the split it was writing (a different command
starts over), and leftovers of killed runs (their temporaries, the old export a killed
``--overwrite`` had moved aside) are removed. ``out`` belongs to the export: a directory that
holds other files is refused, since replacing it would delete them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.store import (
    TokenStore,
    TokenStoreWriter,
    _BinWriter,
    bin_path,
    idx_path,
    store_stamp,
)
from synthlm.errors import UserError
from synthlm.fileio import (
    TMP_MARK,
    atomic_write_json,
    check_output,
    is_stale_temp,
    publish,
    publish_dir,
    remove_stale_temps,
)
from synthlm.partial import WorkDir, fingerprint, work_dir
from synthlm.synth.spec import SPLITS

IGNORE = -100  # GPT-NeoX / Hugging Face: a label that is not a target
CHUNK_DOCS = 65_536
MAX_VOCAB = 2**31  # ids 0..2**31-1: the int32 stores (text above 65500 ids, labels) hold them


def export_synthetic(
    directory: str | Path,
    out: str | Path,
    *,
    offset: int,
    eod: int,
    vocab_size: int | None = None,
    splits: list[str] | None = None,
    overwrite: bool = False,
    natural_vocab: int | None = None,
) -> dict[str, Any]:
    """Write each split of the dataset at ``directory`` into ``out`` in global ids; returns the
    export summary (also written to ``out/export.json``).

    ``natural_vocab`` is the target tokenizer's vocabulary size, when known: the synthetic ids
    must start at or past it, or they would collide with natural ids (what exporting prevents).
    Every check that can fail (ids, splits, stores, the output path) runs before the first byte
    is written, so bad input never leaves a partial export behind.
    """
    from synthlm.synth import load_synthetic

    dataset = load_synthetic(directory)
    local = dataset.vocab_size
    if natural_vocab is not None:
        _check_past_natural(offset, local, natural_vocab)
    vocab = _checked_vocab(offset, eod, local, vocab_size)
    chosen, absent = _chosen_splits(dataset.manifest["splits"], splits, directory)
    stores = {split: _checked_store(dataset.split(split), local) for split in chosen}
    out = Path(out)
    target = Path(os.path.abspath(out))  # "." and "x/" name a directory too
    work = WorkDir(
        work_dir(target, "export"), _fingerprint(directory, stores, offset, eod, vocab, target)
    )
    published = _published_by_killed_run(work, target)
    if published is not None:
        return published
    _checked_out(out, overwrite)
    if absent:
        print(
            f"note: {directory}: skipped the absent splits {', '.join(absent)} (no sequences; "
            f"see its manifest.json)",
            file=sys.stderr,
        )
    summary: dict[str, Any] = {
        "source": str(directory),
        "offset": offset,
        "eod": eod,
        "vocab_size": vocab,
        "synthetic_vocab_size": local,
        "global_id_range": [offset, offset + local],
        "splits": {},
        "absent_splits": absent,
    }
    try:
        done: dict[str, Any] = (work.open() or {}).get("splits", {})
        staging = work.path / STAGING
        staging.mkdir(exist_ok=True)
        remove_stale_temps(staging)  # the split a killed run was writing is written again
        for split, store in stores.items():
            if split not in done:
                done[split] = _export_split(store, staging / split, offset, eod, vocab)
                work.save({"splits": done})
        summary["splits"] = {split: done[split] for split in stores}
        atomic_write_json(staging / "export.json", summary)
        work.save({"splits": done, "complete": True})
        publish_dir(staging, target)
    except BaseException as exc:
        work.keep_if_resumable(exc)
        raise
    work.remove()
    return summary


STAGING = "export"  # the export being built, inside the work directory


def _fingerprint(
    directory: str | Path,
    stores: dict[str, TokenStore],
    offset: int,
    eod: int,
    vocab: int,
    target: Path,
) -> str:
    """What decides the export's bytes: the source stores' files (size and modification time,
    so a dataset regenerated between a kill and the rerun starts the export over), the ids and
    the destination."""
    return fingerprint(
        {
            "source": str(Path(directory).resolve()),
            "files": {
                k: v for store in stores.values() for k, v in store_stamp(store.prefix).items()
            },
            "splits": list(stores),
            "offset": offset,
            "eod": eod,
            "vocab_size": vocab,
            "out": str(target),
        }
    )


def _published_by_killed_run(work: WorkDir, target: Path) -> dict[str, Any] | None:
    """The summary of this very export when a run of it was killed after renaming it into
    place but before removing its work directory (the rerun then has nothing left to do);
    otherwise None, and a work directory with nothing to resume is removed."""
    state = work.peek()
    if state is None or (work.path / STAGING).is_dir():
        return None
    work.remove()
    summary_path = target / "export.json"
    if not state.get("complete") or not summary_path.is_file():
        return None
    try:
        return json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _chosen_splits(
    manifest_splits: dict[str, Any], requested: list[str] | None, directory: str | Path
) -> tuple[list[str], list[str]]:
    """(splits to export, absent splits skipped): all splits with data when none is requested;
    a requested split that is absent is an error, since the user asked for its stores."""
    absent = [s for s in SPLITS if manifest_splits.get(s, {}).get("absent")]
    present = [s for s in SPLITS if s not in absent]
    if not requested:
        if not present:
            raise UserError(f"{directory}: every split is absent; there is nothing to export")
        return present, absent
    for split in requested:
        if split not in SPLITS:
            raise UserError(f"--split {split!r}: choose from {', '.join(SPLITS)}")
        if split in absent:
            raise UserError(
                f"--split {split!r}: {directory} has no {split} split (its manifest marks it "
                f"absent: no sequences); choose from {', '.join(present) or 'none'}"
            )
    return list(dict.fromkeys(requested)), []


def _checked_store(store: TokenStore, local: int) -> TokenStore:
    """The store, once its ids are known to fit the synthetic vocabulary: an id outside it would
    otherwise stop the export midway, after earlier splits were written."""
    store.check_ids(local)
    return store


def _checked_out(out: Path, overwrite: bool) -> Path:
    """``out`` if it is (or can become) a directory that holds no earlier export (unless
    ``overwrite``) and nothing but an export; checked before any split is written, as
    ``tokenize`` refuses existing stores.

    The finished export replaces the whole directory, so a file that is not an export's would
    be lost: such a directory is refused even with ``overwrite``. The temporaries killed runs
    left in ``out`` are removed here and are never a reason to refuse (an old export a killed
    ``--overwrite`` had moved aside is removed when the new one is published).
    """
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is a file, not a directory; give a directory")
    check_output(out, kind="dir", what="--out")
    if not out.is_dir():
        return out
    names = sorted(p.name for p in out.iterdir())
    for name in names:
        if _export_name(name.rsplit(TMP_MARK, 1)[0]) and is_stale_temp(out / name):
            (out / name).unlink(missing_ok=True)
    names = [name for name in names if (out / name).exists()]
    foreign = [name for name in names if not _export_name(name)]
    if foreign:
        raise UserError(
            f"--out {out}: holds files that are not an export ({_listed(foreign)}); the export "
            f"replaces the whole directory, so give a new or empty directory"
        )
    if names and not overwrite:
        raise UserError(
            f"--out {out}: already holds an export ({_listed(names)}); pass --overwrite to "
            f"replace it"
        )
    return out


def _listed(names: list[str]) -> str:
    return f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"


_SPLIT_STORE = re.compile(rf"({'|'.join(SPLITS)})_(text|label)_document(\.mask)?\.(bin|idx|json)")


def _export_name(name: str) -> bool:
    """Whether ``name`` is one of the files an export writes: export.json and each split's
    text store (with its mask and provenance) and label store."""
    return name == "export.json" or _SPLIT_STORE.fullmatch(name) is not None


def _check_past_natural(offset: int, local: int, natural_vocab: int) -> None:
    """Refuse an offset that would put synthetic ids among the tokenizer's own ids."""
    if offset < natural_vocab:
        raise UserError(
            f"--offset {offset} is below the --tokenizer's vocabulary size {natural_vocab}: "
            f"synthetic ids {offset}..{offset + local - 1} would collide with natural ids "
            f"0..{natural_vocab - 1}; use --offset {natural_vocab} or more (or leave --offset "
            f"out: it defaults to the vocabulary size)"
        )


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
            f"({_too_small_causes(offset, eod, local, vocab_size)})"
        )
    vocab = vocab_size or needed
    if vocab > MAX_VOCAB:
        raise UserError(
            f"vocabulary of {vocab} ids (--offset/--eod/--vocab-size) exceeds {MAX_VOCAB}: "
            f"exported stores and labels hold int32 ids"
        )
    return vocab


def _too_small_causes(offset: int, eod: int, local: int, vocab_size: int) -> str:
    """Which ids do not fit ``vocab_size``: the synthetic range, the EOD, or both."""
    causes = []
    if offset + local > vocab_size:
        causes.append(
            f"the synthetic ids run to {offset + local - 1}: --offset {offset} + {local} "
            f"synthetic ids"
        )
    if eod >= vocab_size:
        causes.append(f"--eod {eod}")
    return "; ".join(causes)


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
