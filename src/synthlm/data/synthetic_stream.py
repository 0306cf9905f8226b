"""Synthetic training sources generated inside the data loader: a spec, no store on disk.

Generation runs at millions of tokens per second per core, far faster than a model consumes
them, so a synthetic source can be a spec (``data.sources[i].spec``) instead of a dataset dir:

* ``stream: budget`` (default) generates the spec's ``train`` split in memory at startup, with
  exactly the code path ``synthlm synth generate`` uses (same blocks, same per-domain budgets),
  so the run trains on the very documents the same spec written to disk would hold; packing,
  shuffling and resume are then those of any store.
* ``stream: infinite`` never repeats: window ``k`` is packed from documents generated with a
  Philox key of ``(seed, source, k)``, so it is a pure function of the sample index (exact
  resume, any worker count) and costs only its own documents. Each window starts a new
  document; the last one is cut at the window's end, as packing cuts documents. With
  ``data.packing: false`` window ``k`` is one such document alone, cut to ``seq_len`` and padded
  as a store's unpacked rows are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.mixture import padding_row
from synthlm.errors import ConfigError

STREAM_KEY = 3  # first spawn-key word of on-the-fly windows (synth.rng uses 0-2)


_PLANS: dict[str, Any] = {}


def load_plan(spec: Path | dict[str, Any], seed: int, where: str) -> Any:
    """The generation plan of a source's spec (cached); a spec without a seed takes the run's."""
    import json

    key = json.dumps(
        [str(spec) if isinstance(spec, Path) else spec, seed], sort_keys=True, default=str
    )
    if key not in _PLANS:
        _PLANS[key] = _load_plan(spec, seed, where)
    return _PLANS[key]


def _load_plan(spec: Path | dict[str, Any], seed: int, where: str) -> Any:
    from synthlm.synth.generation_plan import make_plan
    from synthlm.synth.spec import load_spec

    try:
        loaded = load_spec(spec if isinstance(spec, dict) else Path(spec))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}.spec: {exc}") from None
    if loaded.seed is None:
        loaded = loaded.model_copy(update={"seed": seed})
    return make_plan(loaded)


@dataclass
class MemoryStore:
    """The slice of the :class:`~synthlm.data.store.TokenStore` interface packing reads."""

    prefix: str
    tokens: np.ndarray
    sizes: np.ndarray
    masks: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = np.zeros(len(self.sizes) + 1, dtype=np.int64)
        np.cumsum(self.sizes, out=self.offsets[1:])

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    def document(self, i: int, offset: int = 0, length: int | None = None) -> np.ndarray:
        start = int(self.offsets[i]) + offset
        stop = int(self.offsets[i + 1]) if length is None else start + length
        return self.tokens[start:stop]

    def mask(self, i: int) -> np.ndarray:
        return self.masks[int(self.offsets[i]) : int(self.offsets[i + 1])]


def train_split(plan: Any, name: str) -> MemoryStore:
    """The spec's ``train`` split, document for document what ``synth generate`` writes."""
    from synthlm.synth.blocks import make_block

    tokens, sizes, masks = [], [], []
    carry = 0
    for d in range(len(plan.domains)):
        target, taken, index = int(plan.budgets[0, d]) + carry, 0, 0
        while target > 0:
            block = make_block(plan, 0, d, index)
            room = taken + np.cumsum(block.sizes)
            over = np.flatnonzero(room > target)
            stop = int(over[0]) if len(over) else len(block.sizes)
            cut = int(block.offsets[stop])
            tokens.append(block.tokens[:cut])
            masks.append(block.mask[:cut])
            sizes.append(block.sizes[:stop])
            taken += cut
            index += 1
            if len(over):
                break
        carry = target - taken
    flat = np.concatenate(tokens) if tokens else np.zeros(0, dtype=np.int64)
    return MemoryStore(
        f"{name} (spec, in memory)",
        flat,
        np.concatenate(sizes) if sizes else np.zeros(0, np.int64),
        np.concatenate(masks) if masks else np.zeros(0, np.uint8),
    )


class StreamSource:
    """An endless synthetic source: window ``k`` is generated from its own key."""

    def __init__(
        self,
        plan: Any,
        *,
        source_index: int,
        seq_len: int,
        eos_id: int,
        id_offset: int,
        packing: bool = True,
    ) -> None:
        self.plan = plan
        self.packing = packing
        self.source_index = source_index
        self.seq_len = seq_len
        self.eos_id = eos_id
        self.id_offset = id_offset
        weights = np.array([d.weight for d in plan.spec.domains], dtype=np.float64)
        self.weights = weights / weights.sum()
        shortest = min(max(1.0, len(d.promoter) + d.mean_body_length()) for d in plan.domains)
        self.draw = int(np.ceil(seq_len / (shortest + 1))) + 1  # documents drawn per round

    epoch_samples = float("inf")

    def epochs_for(self, num_windows: int) -> float:
        return 0.0  # never repeats

    def window(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from synthlm.synth.rng import generator

        rng = generator(self.plan.seed, STREAM_KEY, self.source_index, k)
        if not self.packing:
            return self._padded(rng)
        tokens, mask, segments, filled, segment = [], [], [], 0, 0
        while filled < self.seq_len:
            domains = rng.choice(len(self.weights), size=self.draw, p=self.weights)
            docs: dict[int, Any] = {}
            for d in np.unique(domains):
                docs[int(d)] = self._documents(rng, int(d), int((domains == d).sum()))
            used = dict.fromkeys(docs, 0)
            for d in domains.tolist():
                doc_tokens, doc_mask = docs[d][used[d]]
                used[d] += 1
                tokens.append(np.append(doc_tokens.astype(np.int64) + self.id_offset, self.eos_id))
                mask.append(np.append(doc_mask, 1).astype(np.uint8))
                segments.append(np.full(len(doc_tokens) + 1, segment, dtype=np.int32))
                filled += len(doc_tokens) + 1
                segment += 1
                if filled >= self.seq_len:
                    break
        cut = slice(0, self.seq_len)
        return np.concatenate(tokens)[cut], np.concatenate(mask)[cut], np.concatenate(segments)[cut]

    def _padded(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One document and its EOS, cut to ``seq_len`` and padded as
        :meth:`PackedSource._padded` pads a store's rows."""
        domain = int(rng.choice(len(self.weights), p=self.weights))
        ((doc_tokens, doc_mask),) = self._documents(rng, domain, 1)
        take = min(len(doc_tokens) + 1, self.seq_len)
        tokens, mask, segments = padding_row(self.seq_len, self.eos_id)
        body = np.append(doc_tokens.astype(np.int64) + self.id_offset, self.eos_id)
        tokens[:take] = body[:take]
        mask[:take] = np.append(doc_mask, 1)[:take]
        segments[:take] = 0
        return tokens, mask, segments

    def _documents(
        self, rng: np.random.Generator, domain: int, n: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        batch = self.plan.domains[domain].generate(rng, n)
        offsets = np.zeros(len(batch.sizes) + 1, dtype=np.int64)
        np.cumsum(batch.sizes, out=offsets[1:])
        return [
            (batch.tokens[a:b], batch.mask[a:b]) for a, b in itertools.pairwise(offsets.tolist())
        ]
