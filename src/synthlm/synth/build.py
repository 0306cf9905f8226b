"""``synthlm synth generate``: a spec and a seed in, a complete dataset directory out.

    DIR/{train,valid,test}.bin/.idx/.json     token stores (Megatron MMIDIDX), one doc per sequence
    DIR/{split}.mask.bin/.idx                 loss masks (1 = train on this token)
    DIR/{split}.domains.npy                   domain index of every document
    DIR/manifest.json, DIR/README.md, DIR/card.svg

Everything is written into a hidden work directory next to DIR (``.DIR.synth-partial``, see
:mod:`synthlm.partial`) and renamed into place at the end, so DIR only ever holds a complete
dataset. Sequences are streamed block by block into the stores (memory is bounded by a few blocks
plus a few bytes per document). Within a split the documents are grouped by domain, in spec order;
mixtures shuffle at training time.

After every block the work directory records where generation stands (split, domain, next block,
the piece's counts, the carried budget); rerunning the same command after a kill continues from
there, with the seed the killed run drew, and writes the same bytes as an uninterrupted run. The
card's statistics and the train fingerprints used by ``--dedup-splits`` are computed from the
written stores, so they need no saving.
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.store import TokenStore, TokenStoreWriter, store_exists
from synthlm.errors import UserError
from synthlm.fileio import check_output, publish_dir
from synthlm.partial import WorkDir, fingerprint, work_dir
from synthlm.synth.blocks import Block, BlockSource
from synthlm.synth.generation_plan import Plan, make_plan
from synthlm.synth.manifest import data_files
from synthlm.synth.rng import sequence_hashes
from synthlm.synth.spec import SPLITS, DatasetSpecBase, resolve_seed

EXHAUSTED_AFTER = 4  # --dedup-splits: give up on a piece after this many blocks with nothing new
READ_CHUNK = 1 << 18  # tokens per step when reading the stores back (memory stays a few MiB)


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
        return cls(
            [[] for _ in content_sizes], [np.zeros(size, dtype=np.int64) for size in content_sizes]
        )

    def add(self, domain: int, tokens: np.ndarray, sizes: np.ndarray) -> None:
        self.lengths[domain].append(sizes)
        counts = self.counts[domain]
        counts += np.bincount(tokens[tokens < len(counts)], minlength=len(counts))

    def lengths_of(self, domain: int) -> np.ndarray:
        parts = self.lengths[domain]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass
class Run:
    """Mutable state of one generation run (``resume``: where a killed run stopped)."""

    plan: Plan
    staging: Path
    dedup_splits: bool
    progress: Any
    work: WorkDir | None = None
    resume: dict[str, Any] = field(default_factory=dict)
    carry: int = 0
    train_sorted: np.ndarray | None = None
    results: dict[str, list[PieceResult]] = field(default_factory=dict)

    def save(
        self,
        split: int,
        domain: int,
        block: int,
        piece: PieceResult | None,
        barren: int,
        writer: TokenStoreWriter | None,
        force: bool = False,
    ) -> None:
        """Record that everything before ``block`` of (``split``, ``domain``) is written
        (throttled, see :class:`~synthlm.partial.WorkDir`, unless ``force``)."""
        if self.work is None or not (force or self.work.due()):
            return
        self.work.save(
            {
                "seed": self.plan.seed,
                "split": split,
                "domain": domain,
                "block": block,
                "barren": barren,
                "piece": None if piece is None else asdict(piece),
                "carry": self.carry,
                "results": {k: [asdict(r) for r in v] for k, v in self.results.items()},
                "writer": None if writer is None else writer.state(),
            }
        )

    def at(self, split: int, domain: int) -> bool:
        """Whether the resumed run stopped inside this piece."""
        where = (self.resume.get("split"), self.resume.get("domain"))
        return bool(self.resume) and where == (split, domain)


def build_dataset(
    spec: DatasetSpecBase,
    out: str | Path,
    *,
    workers: int = 1,
    dedup_splits: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Generate the dataset described by ``spec`` into ``out``; returns the manifest.

    Continues an interrupted run of the same spec (see the module docstring).
    """
    from synthlm.synth.card import write_card
    from synthlm.synth.manifest import build_manifest, write_manifest

    out = Path(out)
    digest = fingerprint({"spec": spec.model_dump(mode="json"), "dedup_splits": dedup_splits})
    work = WorkDir(work_dir(out, "synth"), digest)
    if work.path.exists() and not (work.path / "dataset").exists():
        work.remove()  # killed after publishing, before cleaning up: nothing left to resume
    _check_target(out, overwrite)
    resume = work.open() or {}
    try:
        spec = resolve_seed(spec.model_copy(update={"seed": resume["seed"]}) if resume else spec)
        plan = make_plan(spec)
        staging = work.path / "dataset"
        staging.mkdir(exist_ok=True)
        with BlockSource(plan, workers) as source:  # workers fork before any progress thread
            progress = _progress(int(spec.num_tokens), quiet)
            run = Run(plan, staging, dedup_splits, progress, work, resume)
            _restore(run)
            with run.progress:
                for split_index, split in enumerate(SPLITS):
                    if not resume or split_index >= resume["split"]:
                        _write_split(run, source, split_index, split)
        _check_not_empty(run)
        manifest = build_manifest(plan, run.results, staging, dedup_splits)
        write_manifest(staging, manifest)
        write_card(staging, manifest, stats_from_stores(plan, staging))
        publish_dir(staging, out)
    except BaseException as exc:
        work.keep_if_resumable(exc)
        raise
    work.remove()
    return manifest


def _restore(run: Run) -> None:
    if not run.resume:
        return
    run.carry = int(run.resume["carry"])
    run.results = {k: [PieceResult(**r) for r in v] for k, v in run.resume["results"].items()}
    piece = run.resume.get("piece") or {}
    done = sum(r.tokens for v in run.results.values() for r in v)
    run.progress.update(done + int(piece.get("tokens", 0)))


def _check_not_empty(run: Run) -> None:
    if sum(r.sequences for r in run.results["train"]):
        return
    raise UserError(
        f"token budget {int(run.plan.spec.num_tokens):,}: too small for even one training "
        f"sequence of "
        "any domain, so the dataset would be empty; raise --tokens (e.g. 20K)"
    )


def _check_target(out: Path, overwrite: bool) -> None:
    check_output(out, kind="dir")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise UserError(
            f"--out {out}: directory exists and is not empty (pass --overwrite to replace it)"
        )
    if not _is_dataset(out):  # --overwrite replaces a dataset, never a folder of other files
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise UserError(
            f"--out {out}: holds files that are not a synthetic dataset ({shown}); "
            "--overwrite only replaces a dataset synthlm generated (manifest.json); give "
            "another --out"
        )


def _is_dataset(path: Path) -> bool:
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "synthlm-synthetic"


def _progress(total: int, quiet: bool):
    from synthlm.progress import progress_bar

    return progress_bar(
        total=total, unit="tok", unit_scale=True, desc="synth generate", disable=quiet, leave=False
    )


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
    resumed = bool(run.resume) and run.resume["split"] == split_index
    if not resumed:
        run.results[split] = []
    results = run.results.setdefault(split, [])
    if split_index > 0 and run.train_sorted is None:
        run.train_sorted = _train_fingerprints(run.staging / "train")
    if not (resumed and store_exists(prefix)):  # else: killed after this split's store was complete
        work = run.work.path if run.work else None
        state = run.resume.get("writer") if resumed else None
        vocab = plan.layout.vocab_size
        with TokenStoreWriter(
            prefix, vocab, with_mask=True, metadata=metadata, work=work, resume=state
        ) as writer:
            for d in range(len(results), len(plan.domains)):
                results.append(_write_piece(run, source, writer, split_index, d))
                run.save(split_index, d + 1, 0, None, 0, writer, force=d == len(plan.domains) - 1)
            counts = {n: r.sequences for n, r in zip(plan.domain_names(), results)}
            writer.finalize(domain_counts=counts)
    if sum(r.sequences for r in results):
        domain_ids = [np.full(r.sequences, d, dtype=np.uint16) for d, r in enumerate(results)]
        np.save(
            run.staging / f"{split}.domains.npy", np.concatenate(domain_ids), allow_pickle=False
        )
    else:  # not written: megatron-core cannot mmap an empty store; the manifest says "absent"
        for name in data_files(split):
            (run.staging / name).unlink(missing_ok=True)
        (run.staging / f"{split}.json").unlink(missing_ok=True)
    run.save(split_index + 1, 0, 0, None, 0, None, force=True)
    if split == "train":
        run.train_sorted = _train_fingerprints(prefix)


def _train_fingerprints(prefix: Path) -> np.ndarray:
    """Sorted unique fingerprints of the train split's sequences (for overlap with valid/test)."""
    if not store_exists(prefix):  # an absent (empty) train split overlaps nothing
        return np.zeros(0, np.uint64)
    store = TokenStore(prefix, check_ids=False)
    parts, first = [], 0
    while first < len(store):  # whole documents, about READ_CHUNK tokens at a time
        end = store.offsets[first] + READ_CHUNK
        last = max(int(np.searchsorted(store.offsets, end, side="right")) - 1, first + 1)
        tokens = np.asarray(store.tokens(int(store.offsets[first]), int(store.offsets[last])))
        parts.append(sequence_hashes(tokens, store.sizes[first:last].astype(np.int64)))
        first = last
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)


def _write_piece(
    run: Run, source: BlockSource, writer: TokenStoreWriter, split: int, domain: int
) -> PieceResult:
    """Take sequences from the piece's blocks, in order, until the next one would not fit."""
    start, barren = 0, 0  # barren: consecutive blocks whose every sequence already occurs in train
    result = PieceResult(budget=int(run.plan.budgets[split, domain]))
    if run.at(split, domain) and run.resume.get("piece"):
        result = PieceResult(**run.resume["piece"])
        start, barren = int(run.resume["block"]), int(run.resume["barren"])
    target = result.budget + run.carry
    if target <= 0:
        return result
    with closing(source.blocks(split, domain, start)) as blocks:
        for index, block in enumerate(blocks, start):
            full, fresh = _take_from(run, writer, block, result, target, split, domain)
            barren = 0 if fresh else barren + 1
            if full:
                break
            if barren >= EXHAUSTED_AFTER:
                result.exhausted = True
                break
            run.save(split, domain, index + 1, result, barren, writer)
    run.carry = target - result.tokens
    return result


def _take_from(
    run: Run,
    writer: TokenStoreWriter,
    block: Block,
    result: PieceResult,
    target: int,
    split: int,
    domain: int,
) -> tuple[bool, bool]:
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
    _write_taken(run, writer, block, take)
    result.sequences += int(take.sum())
    result.tokens += int(block.sizes[take].sum())
    if len(over) and run.plan.domains[domain].truncatable:
        _write_prefix(run, writer, block, stop, target - result.tokens, result, domain)
    return bool(len(over)), bool(keep.any())


def _write_prefix(
    run: Run,
    writer: TokenStoreWriter,
    block: Block,
    index: int,
    room: int,
    result: PieceResult,
    domain: int,
) -> None:
    """Fill the budget exactly with the start of sequence ``index``, for domains whose
    sequences stay valid when cut (streams); at least one token after the promoter."""
    if room <= len(run.plan.domains[domain].promoter):
        return
    start = int(block.offsets[index])
    tokens, mask = block.tokens[start : start + room], block.mask[start : start + room]
    sizes = np.array([room], dtype=np.int64)
    hashes = sequence_hashes(tokens.astype(np.int64), sizes)
    _write_taken(run, writer, Block(tokens, sizes, mask, hashes), np.ones(1, dtype=bool))
    result.sequences += 1
    result.tokens += room
    result.truncated += 1


def _in_train(run: Run, hashes: np.ndarray) -> np.ndarray:
    known = run.train_sorted
    if known is None or not len(known):
        return np.zeros(len(hashes), dtype=bool)
    at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
    return known[at] == hashes


def _write_taken(run: Run, writer: TokenStoreWriter, block: Block, take: np.ndarray) -> None:
    if not take.any():
        return
    if take.all():
        tokens, mask, sizes = block.tokens, block.mask, block.sizes
    else:
        per_token = np.repeat(take, block.sizes)
        tokens, mask, sizes = block.tokens[per_token], block.mask[per_token], block.sizes[take]
    writer.add_flat(tokens, sizes, mask)
    run.progress.update(int(sizes.sum()))


def stats_from_stores(plan: Plan, directory: Path) -> Stats:
    """The card's statistics, read back from the written stores (documents grouped by domain)."""
    stats = Stats.empty([d.content for d in plan.domains])
    for split in SPLITS:
        if not store_exists(directory / split):  # an empty split is absent: nothing to count
            continue
        store = TokenStore(directory / split, check_ids=False)
        domains = np.load(directory / f"{split}.domains.npy")
        for d in range(len(plan.domains)):
            where = np.flatnonzero(domains == d)
            if not len(where):
                continue
            first, last = int(where[0]), int(where[-1]) + 1
            stats.lengths[d].append(store.sizes[first:last].astype(np.int64))
            counts = stats.counts[d]
            for start in range(int(store.offsets[first]), int(store.offsets[last]), READ_CHUNK):
                stop = min(start + READ_CHUNK, int(store.offsets[last]))
                tokens = np.asarray(store.tokens(start, stop))
                counts += np.bincount(tokens[tokens < len(counts)], minlength=len(counts))
    return stats
