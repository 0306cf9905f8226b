"""``synthlm synth generate``: a spec and a seed in, a complete dataset directory out.

    DIR/{train,valid,test}.bin/.idx/.json     token stores (Megatron MMIDIDX), one doc per sequence
    DIR/{split}.mask.bin/.idx                 loss masks (1 = train on this token)
    DIR/{split}.domains.npy                   domain index of every document
    DIR/manifest.json, DIR/README.md, DIR/card.svg

Everything is written into a hidden staging directory next to DIR and renamed into place at the
end, so DIR only ever holds a complete dataset. Sequences are streamed block by block into the
stores (memory is bounded by a few blocks plus a few bytes per document). Within a split the
documents are grouped by domain, in spec order; mixtures shuffle at training time.
"""

from __future__ import annotations

import os
import shutil
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.store import TokenStoreWriter
from synthlm.errors import UserError
from synthlm.fileio import temp_name
from synthlm.synth.blocks import Block, BlockSource
from synthlm.synth.manifest import data_files
from synthlm.synth.plan import Plan, make_plan
from synthlm.synth.rng import sequence_hashes
from synthlm.synth.spec import SPLITS, DatasetSpecBase, resolve_seed

EXHAUSTED_AFTER = 4  # --dedup-splits: give up on a piece after this many blocks with nothing new


@dataclass
class PieceResult:
    """What one (split, domain) piece wrote."""

    sequences: int = 0
    tokens: int = 0
    budget: int = 0
    overlap_with_train: int = 0
    removed: int = 0
    exhausted: bool = False
    truncated: int = 0  # sequences cut to meet the budget exactly (streams only)


@dataclass
class Stats:
    """Per-domain sequence lengths and content-token counts, for the dataset card."""

    lengths: list[list[np.ndarray]]
    counts: list[np.ndarray]

    @classmethod
    def empty(cls, content_sizes: list[int]) -> Stats:
        return cls([[] for _ in content_sizes], [np.zeros(size, dtype=np.int64) for size in content_sizes])

    def add(self, domain: int, tokens: np.ndarray, sizes: np.ndarray) -> None:
        self.lengths[domain].append(sizes)
        counts = self.counts[domain]
        counts += np.bincount(tokens[tokens < len(counts)], minlength=len(counts))

    def lengths_of(self, domain: int) -> np.ndarray:
        parts = self.lengths[domain]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass
class Run:
    """Mutable state of one generation run."""

    plan: Plan
    staging: Path
    dedup_splits: bool
    progress: Any
    carry: int = 0
    train_hashes: list[np.ndarray] = field(default_factory=list)
    train_sorted: np.ndarray | None = None
    results: dict[str, list[PieceResult]] = field(default_factory=dict)
    stats: Stats | None = None


def generate(
    spec: DatasetSpecBase,
    out: str | Path,
    *,
    workers: int = 1,
    dedup_splits: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Generate the dataset described by ``spec`` into ``out``; returns the manifest."""
    from synthlm.synth.card import write_card
    from synthlm.synth.manifest import build_manifest, write_manifest

    out = Path(out)
    _check_target(out, overwrite)
    spec = resolve_seed(spec)
    plan = make_plan(spec)
    staging = temp_name(out)
    staging.mkdir(parents=True)
    try:
        with BlockSource(plan, workers) as source:  # workers fork before any progress thread
            run = Run(plan, staging, dedup_splits, _progress(int(spec.num_tokens), quiet))
            run.stats = Stats.empty([d.content for d in plan.domains])
            with run.progress:
                for split_index, split in enumerate(SPLITS):
                    _write_split(run, source, split_index, split)
        manifest = build_manifest(plan, run.results, staging, dedup_splits)
        write_manifest(staging, manifest)
        write_card(staging, manifest, run.stats)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out {out}: directory exists and is not empty (pass --overwrite to replace it)")


def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="tok", unit_scale=True, desc="synth generate", disable=quiet, leave=False)


def _publish(staging: Path, out: Path) -> None:
    """Swap the finished staging directory into place (the old one, if any, is removed after)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = temp_name(out)
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_split(run: Run, source: BlockSource, split_index: int, split: str) -> None:
    """Write one split's store; a split with no budget (fraction 0) or no documents is not
    written at all (megatron-core cannot mmap an empty store) and the manifest marks it absent."""
    plan = run.plan
    if int(plan.budgets[split_index].sum()) == 0:
        run.results[split] = [PieceResult() for _ in plan.domains]
        return
    prefix = run.staging / split
    metadata = {
        "source": "synthlm synth",
        "dataset": plan.spec.name,
        "split": split,
        "seed": plan.seed,
        "domains": plan.domain_names(),
        "layout": plan.layout.to_dict(),
    }
    results, domain_ids = [], []
    with TokenStoreWriter(prefix, plan.layout.vocab_size, with_mask=True, metadata=metadata) as writer:
        for d in range(len(plan.domains)):
            result = _write_piece(run, source, writer, split_index, d)
            results.append(result)
            domain_ids.append(np.full(result.sequences, d, dtype=np.uint16))
        writer.finalize(domain_counts={n: r.sequences for n, r in zip(plan.domain_names(), results)})
    run.results[split] = results
    if not sum(r.sequences for r in results):
        for name in data_files(split):
            (run.staging / name).unlink(missing_ok=True)
        (run.staging / f"{split}.json").unlink(missing_ok=True)
    else:
        np.save(run.staging / f"{split}.domains.npy", np.concatenate(domain_ids), allow_pickle=False)
    if split == "train":
        hashes = np.concatenate(run.train_hashes) if run.train_hashes else np.zeros(0, np.uint64)
        run.train_sorted = np.unique(hashes)
        run.train_hashes = []


def _write_piece(run: Run, source: BlockSource, writer: TokenStoreWriter, split: int, domain: int) -> PieceResult:
    """Take sequences from the piece's blocks, in order, until the next one would not fit."""
    result = PieceResult(budget=int(run.plan.budgets[split, domain]))
    target = result.budget + run.carry
    if target <= 0:
        return result
    barren = 0  # consecutive blocks in which every sequence already occurs in train
    with closing(source.blocks(split, domain)) as blocks:
        for block in blocks:
            full, fresh = _take_from(run, writer, block, result, target, split, domain)
            barren = 0 if fresh else barren + 1
            if full:
                break
            if barren >= EXHAUSTED_AFTER:
                result.exhausted = True
                break
    run.carry = target - result.tokens
    return result


def _take_from(run: Run, writer: TokenStoreWriter, block: Block, result: PieceResult, target: int, split: int, domain: int) -> tuple[bool, bool]:
    """Write the block's sequences that fit; returns (piece is full, block had a new sequence)."""
    keep = np.ones(len(block.sizes), dtype=bool)
    duplicate = _in_train(run, block.hashes) if split > 0 else np.zeros(len(keep), dtype=bool)
    if run.dedup_splits:
        keep &= ~duplicate
    room = result.tokens + np.cumsum(np.where(keep, block.sizes, 0))
    over = np.flatnonzero(keep & (room > target))
    stop = int(over[0]) if len(over) else len(keep)
    take = keep & (np.arange(len(keep)) < stop)
    result.overlap_with_train += int(duplicate[:stop].sum())
    result.removed += int((duplicate & ~keep)[:stop].sum())
    _write_taken(run, writer, block, take, domain, split)
    result.sequences += int(take.sum())
    result.tokens += int(block.sizes[take].sum())
    if len(over) and run.plan.domains[domain].truncatable:
        _write_prefix(run, writer, block, stop, target - result.tokens, result, domain, split)
    return bool(len(over)), bool(keep.any())


def _write_prefix(run: Run, writer: TokenStoreWriter, block: Block, index: int, room: int, result: PieceResult, domain: int, split: int) -> None:
    """Fill the budget exactly with the start of sequence ``index``, for domains whose
    sequences stay valid when cut (streams); at least one token after the promoter."""
    if room <= len(run.plan.domains[domain].promoter):
        return
    start = int(block.offsets[index])
    tokens, mask = block.tokens[start : start + room], block.mask[start : start + room]
    sizes = np.array([room], dtype=np.int64)
    hashes = sequence_hashes(tokens.astype(np.int64), sizes)
    _write_taken(run, writer, Block(tokens, sizes, mask, hashes), np.ones(1, dtype=bool), domain, split)
    result.sequences += 1
    result.tokens += room
    result.truncated += 1


def _in_train(run: Run, hashes: np.ndarray) -> np.ndarray:
    known = run.train_sorted
    if known is None or not len(known):
        return np.zeros(len(hashes), dtype=bool)
    at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
    return known[at] == hashes


def _write_taken(run: Run, writer: TokenStoreWriter, block: Block, take: np.ndarray, domain: int, split: int) -> None:
    if not take.any():
        return
    if take.all():
        tokens, mask, sizes = block.tokens, block.mask, block.sizes
    else:
        per_token = np.repeat(take, block.sizes)
        tokens, mask, sizes = block.tokens[per_token], block.mask[per_token], block.sizes[take]
    writer.add_flat(tokens, sizes, mask)
    if split == 0:
        run.train_hashes.append(block.hashes[take])
    if run.stats is not None:
        run.stats.add(domain, tokens, sizes)
    run.progress.update(int(sizes.sum()))
