"""Weighted, deterministic mixtures of natural and synthetic token stores, packed into windows.

Design: every training sample is a *pure function* of ``(seed, source weights, sample index)``.
That one property gives us three things other loaders struggle with:

* exact resume: the data cursor is just "samples consumed"; nothing is re-read or skipped;
* any number of dataloader workers or ranks produce the same global batch;
* ratios are exact, not sampled: sample ``i`` goes to the source whose next "due time"
  ``(k + 0.5) / w_s`` comes first (smooth weighted round robin), so after ``n`` samples each
  source holds ``w_s * n`` of them to within a sample or two. The bound is not one sample:
  when several sources fall due together the last of them lags (1.5 samples after 3 draws for
  weights 0.5 and five of 0.1; 1.9 worst case measured for six sources, 1.4 for twenty).
  Megatron's ``build_blending_indices`` picks the source with the largest shortfall instead
  and stays within one; we keep due times because they give each source's count over any
  prefix in closed form, which chunked blending and exact resume rest on.

Blending is computed in chunks from a closed form (see :func:`_blend_chunk`), so it costs
O(chunk) per chunk and needs no pass over earlier samples. Within a source, documents are
shuffled per epoch with a Philox key of ``(seed, source, epoch)``, joined with EOS, and cut into
consecutive ``seq_len`` windows: window ``k`` of source ``s`` is the ``k``-th sample drawn from it.
With ``data.shared_boundary`` window ``k`` also holds the next window's first token, as
Megatron's and GPT-NeoX's samples do, so every token of the stream is a target.
``data.shuffle_windows`` reads window ``k`` from a keyed permuted place within its pass
(:mod:`synthlm.data.window_shuffle`), as their samples are shuffled too.

Synthetic stores live in their own id space ``0..V_syn-1``; they are shifted into the reserved
meta-language range after the natural vocabulary (``meta_offset + id``), so no synthetic id can
ever equal a natural-text id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from synthlm.config import Count, Section
from synthlm.data.epoch_dealing import DealtEpochs
from synthlm.data.phases import PhaseConfig, PhaseSchedule, check_phase_sources
from synthlm.data.store import TokenStore, normalize_prefix, store_exists
from synthlm.data.window_shuffle import IndexPermutation
from synthlm.errors import ConfigError, UserError

BLEND_CHUNK = 4096
VOCAB_MULTIPLE = 64  # embedding rows rounded up: faster matmuls, room for a few extra ids
KINDS = ("natural", "synthetic")  # what a source holds; data.document_mask chooses among them


class SourceConfig(Section):
    """One training source: a token store prefix (natural) or a synthetic dataset dir."""

    name: str
    path: Path | None = Field(None, description="Token store prefix, or synthetic dataset dir.")
    spec: Path | dict[str, Any] | None = Field(
        None,
        description="Synthetic only, instead of path: a synth spec (file or mapping) "
        "generated inside the data loader.",
    )
    stream: Literal["budget", "infinite"] = Field(
        "budget",
        description="spec sources: budget = the spec's train split (as `synth generate` "
        "writes it), infinite = never repeats.",
    )
    weight: float = Field(1.0, gt=0, description="Relative share of training samples (normalised).")
    kind: Literal["natural", "synthetic"] = "natural"
    max_repetition: float | None = Field(
        None, gt=0, description="Max epochs over this source; more fails before training."
    )
    loss: Literal["stored", "all"] = Field(
        "stored",
        description="stored: the targets the data marks (a synthetic task's answer, a chat's "
        "assistant turns, every token of plain text); all: every token of this source's "
        "documents is a target (decoder-only objectives), as code that trains on raw ids "
        "does (Seqthetic's metalang pretraining, which never reads its task masks).",
    )
    order: Literal["shuffled", "stored"] = Field(
        "shuffled",
        description="shuffled: documents in a seeded order, reshuffled every pass. stored: "
        "in the store's own order every pass, for data shuffled once offline (Pythia's "
        "pre-shuffled Pile: with one source and data.packing: false, sample i is document i, "
        "so optimizer step s trains on documents [s x G, (s + 1) x G) of the store).",
    )

    @model_validator(mode="after")
    def _path_or_spec(self) -> SourceConfig:
        if (self.path is None) == (self.spec is None):
            raise ValueError(
                "set path (a store or dataset dir) or spec (synthetic, generated on the "
                "fly), exactly one"
            )
        if self.spec is not None and self.kind != "synthetic":
            raise ValueError("spec sources are synthetic: set kind: synthetic")
        if self.spec is not None and self.order != "shuffled":
            raise ValueError(
                "order: stored reads a store in its order; a spec source has no stored order "
                "(generate it with `synthlm synth generate` and give its path)"
            )
        if self.path is not None and self.stream != "budget":  # saved configs list the default
            raise ValueError(
                f"stream: {self.stream} applies to spec sources (generated on the fly); a path "
                "source is read as it is: drop stream"
            )
        return self


class EvalSetConfig(Section):
    """An evaluation set: loss/perplexity on natural text, loss + exact match on synthetic tasks."""

    name: str
    path: Path
    kind: Literal["natural", "synthetic"] = "natural"
    max_tokens: Count = Field(
        200_000, gt=0, description="Natural: tokens evaluated, in fixed windows."
    )
    max_examples: int = Field(
        100, ge=0, description="Synthetic: examples generated for exact-match accuracy."
    )
    max_documents: int | None = Field(
        None,
        gt=0,
        description="Natural: read no further than the first N documents of the store (one "
        "per row with data.packing: false), as code that takes the first N examples of a "
        "validation split does; max_tokens still applies (null: max_tokens alone).",
    )


class DataConfig(Section):
    """What to train on and how samples are built."""

    sources: list[SourceConfig] = Field(min_length=1)
    eval: list[EvalSetConfig] = Field(default_factory=list)
    seq_len: int = Field(512, gt=1, description="Tokens per training window.")
    document_mask: bool | None = Field(
        None,
        description="Stop attention across packed documents; positions restart per document. "
        "true: every source's documents; false: none; default (null): the synthetic sources' "
        "examples (decoder-only objectives), natural text packed GPT-style.",
    )
    packing: bool = Field(
        True,
        description="Pack documents into full windows; false: one document per sample, cut "
        "to seq_len and padded (SFT); token budgets and counts then include the padding.",
    )
    tokenizer: str | None = Field(
        None,
        description="Natural tokenizer; default: the one recorded by the first natural "
        "store, or 'meta' (special tokens only) when nothing is natural.",
    )
    epoch_batches: Literal["continuous", "per_epoch"] = Field(
        "continuous",
        description="continuous: the passes over the data are one stream of rows (a batch may "
        "hold the end of one and the start of the next). per_epoch: each pass ends with its "
        "own short batch, rows dealt to the micro-batches as torch's DistributedSampler deals "
        "them to ranks (PyTorch Lightning's epochs, Rocket's); needs data.packing: false, "
        "one source and a decoder-only objective (the short step's filler rows are kept out "
        "of the loss by their loss mask).",
    )
    shared_boundary: bool = Field(
        False,
        description="Rows of seq_len + 1 tokens, each sharing its last token with the next "
        "row, as GPT-NeoX and Megatron's GPTDataset cut the stream (row k: tokens "
        "[seq_len x k, seq_len x (k + 1) + 1)): seq_len inputs and seq_len targets per row, so "
        "every token of the stream is a target. false: rows of seq_len tokens that do not "
        "overlap (seq_len - 1 targets; a row's first token is never predicted). clm only.",
    )
    shuffle_windows: bool = Field(
        False,
        description="Also shuffle the windows cut from each source's document stream, pass by "
        "pass, as Megatron's and GPT-NeoX's GPTDataset shuffle their samples: the rows of a "
        "long document (a book) then fall in different steps. false: window k is the k-th "
        "stretch of the shuffled documents. Packed sources only (with packing: false a row is "
        "a document, already in the source's order); a stream: infinite source draws every "
        "window anew either way.",
    )
    phases: list[PhaseConfig] = Field(
        default_factory=list,
        description="Weights that change over the run: [{steps | tokens, weights: "
        "{source: w}}, ...]; with phases, the sources' own weight keys are not read. "
        "Default: one phase with the sources' own weights.",
    )

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return sources

    @field_validator("eval")
    @classmethod
    def _unique_eval_names(cls, sets: list[EvalSetConfig]) -> list[EvalSetConfig]:
        names = [s.name for s in sets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:  # metrics are keyed eval/<name>/...: two sets would write one series
            raise ValueError(f"eval set names must be unique; repeated: {', '.join(duplicates)}")
        return sets

    @field_validator("phases")
    @classmethod
    def _phases_name_sources(
        cls, phases: list[PhaseConfig], info: ValidationInfo
    ) -> list[PhaseConfig]:
        # a field check, not a section check: the error then names the file or override that
        # set data.phases, not the first file that set any data key
        if "sources" in info.data:  # else the sources' own error is reported
            check_phase_sources(phases, [s.name for s in info.data["sources"]])
        return phases

    @model_validator(mode="after")
    def _per_epoch_batches_read_one_padded_source(self) -> DataConfig:
        if self.epoch_batches == "per_epoch":
            if self.packing:
                raise ValueError(
                    "epoch_batches: per_epoch batches rows (one document each); set "
                    "data.packing: false"
                )
            if len(self.sources) != 1 or self.phases:
                raise ValueError(
                    "epoch_batches: per_epoch deals the rows of one source; a mixture (or "
                    "data.phases) has no single pass to deal"
                )
            if self.sources[0].stream == "infinite":
                raise ValueError("epoch_batches: per_epoch needs data that ends, not a stream")
        return self

    @model_validator(mode="after")
    def _windows_to_shuffle(self) -> DataConfig:
        if self.shuffle_windows and not self.packing:
            raise ValueError(
                "shuffle_windows: true shuffles the windows cut from packed documents; with "
                "packing: false each row is one document, ordered by the source's order key: "
                "drop shuffle_windows"
            )
        return self

    @property
    def has_synthetic(self) -> bool:
        return any(s.kind == "synthetic" for s in self.sources)

    def masked_kinds(self, *, seq2seq: bool = False) -> frozenset[str]:
        """Source kinds (``natural``, ``synthetic``) whose packed documents get the mask.

        ``document_mask`` true: all; false: none; null (the default): the synthetic sources,
        with a decoder-only objective. Why synthetic: packed synthetic examples share promoters
        and answer markers, so without the mask a window's later examples attend to earlier
        ones and the model learns the task 5-10x slower (copy at vocab 32: 0.14 exact match at
        2000 steps without, 1.00 at 800 with). Why not natural: natural text keeps the usual
        GPT-style packing, so a mixed run trains (and is scored on) its natural text exactly as
        a natural-only baseline does. Seq2seq objectives corrupt spans of whole windows and
        take no mask.
        """
        if self.document_mask is not None:
            return frozenset(KINDS) if self.document_mask else frozenset()
        return frozenset({"synthetic"}) if self.has_synthetic and not seq2seq else frozenset()


# ---------------------------------------------------------------------------------------------
# Vocabulary layout


@dataclass(frozen=True)
class ModelVocab:
    """Natural ids first, then a reserved meta-language range for synthetic data."""

    natural_size: int
    meta_offset: int
    meta_size: int
    model_vocab_size: int

    def to_dict(self) -> dict[str, int]:
        return {
            "natural_size": self.natural_size,
            "meta_offset": self.meta_offset,
            "meta_size": self.meta_size,
            "model_vocab_size": self.model_vocab_size,
        }


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def synthetic_vocab_needed(path: Path) -> int:
    """Total ids a synthetic dataset dir needs, from its manifest."""
    from synthlm.synth.manifest import MANIFEST, is_synthetic_dataset, read_manifest

    if not is_synthetic_dataset(path):
        raise UserError(
            f"{path}: not a synthetic dataset (no manifest.json); generate one with "
            f"`synthlm synth generate`"
        )
    manifest = read_manifest(path)
    manifest_path = Path(path) / MANIFEST
    layout = manifest.get("layout", {})
    needed = layout.get("vocab_size", manifest.get("vocab_size"))
    if not isinstance(needed, int):
        raise UserError(f"{manifest_path}: no layout.vocab_size recorded; regenerate the dataset")
    return needed


def source_vocab_needed(source: SourceConfig | EvalSetConfig, seed: int) -> int:
    """Meta-language ids a synthetic source needs: from its manifest, or its spec's layout."""
    spec = getattr(source, "spec", None)
    if spec is not None:
        from synthlm.data.synthetic_stream import load_plan

        return int(load_plan(spec, seed, f"data source '{source.name}'").layout.vocab_size)
    assert source.path is not None
    return synthetic_vocab_needed(source.path)


def build_layout(
    data: DataConfig,
    natural_vocab_size: int,
    num_meta_tokens: int,
    seed: int = 0,
    multiple: int = VOCAB_MULTIPLE,
) -> ModelVocab:
    """Decide the model's id layout and fail fast on anything that cannot fit; the rows are
    rounded up to ``multiple`` (``model.vocab_multiple``)."""
    check_paths(data)
    synthetic = [s for s in data.sources if s.kind == "synthetic"] + [
        e for e in data.eval if e.kind == "synthetic"
    ]
    for source in synthetic:
        needed = source_vocab_needed(source, seed)
        if needed > num_meta_tokens:
            raise ConfigError(
                f"data source '{source.name}' ({source.path or 'spec'}) needs {needed} "
                f"meta-language ids but "
                f"model.num_meta_tokens is {num_meta_tokens}; set "
                f"model.num_meta_tokens={needed} or more"
            )
    for source in [*data.sources, *data.eval]:
        if source.kind == "natural" and source.path is not None:
            check_store_ids(TokenStore(source.path, check_ids=False), natural_vocab_size)
    size = round_up(natural_vocab_size + num_meta_tokens, multiple)
    return ModelVocab(natural_vocab_size, natural_vocab_size, num_meta_tokens, size)


def check_store_ids(store: TokenStore, vocab_size: int) -> None:
    """Ids must fit the vocabulary: from the header when the store records its vocabulary
    (synthlm's writer refuses ids outside it, so no id can exceed it), else by a full scan.

    Reading the header keeps ``--dry-run`` and startup fast on stores of billions of tokens.
    """
    recorded = store.metadata.get("vocab_size")
    if (
        store.metadata.get("format") == "synthlm-token-store"
        and isinstance(recorded, int)
        and recorded <= vocab_size
    ):
        return
    store.check_ids(vocab_size)


def _is_synthetic_dataset(path: Path) -> bool:
    from synthlm.synth.manifest import is_synthetic_dataset  # natural-only runs skip synth/

    return is_synthetic_dataset(path)


def check_paths(data: DataConfig) -> None:
    """Every source and eval set must exist before any work starts."""
    for kind, items in (("data.sources", data.sources), ("data.eval", data.eval)):
        for i, item in enumerate(items):
            if item.path is None:  # a spec source: checked when its plan is built
                continue
            ok = (
                _is_synthetic_dataset(item.path)
                if item.kind == "synthetic"
                else store_exists(normalize_prefix(item.path))
            )
            if not ok:
                what = (
                    "a synthetic dataset dir (with manifest.json)"
                    if item.kind == "synthetic"
                    else "a token store (PREFIX.bin + PREFIX.idx)"
                )
                raise ConfigError(
                    f"{kind}.{i}.path: {item.path} is not {what} (source '{item.name}')"
                )


# ---------------------------------------------------------------------------------------------
# Blending: which source, and which window of it, does sample i come from?


def _due_time(k: np.ndarray, weight: float) -> np.ndarray:
    """When source with ``weight`` is due to emit its ``k``-th sample (float64, identical everywhere)."""
    return (k.astype(np.float64) + 0.5) / weight


def _count_before(time: float, weight: float) -> int:
    """Number of k >= 0 with due time < ``time``, exactly consistent with :func:`_due_time`."""
    k = max(int(np.floor(time * weight - 0.5)) - 1, -1)
    while k >= 0 and _due_time(np.array([k]), weight)[0] >= time:
        k -= 1
    while _due_time(np.array([k + 1]), weight)[0] < time:
        k += 1
    return k + 1


@functools.lru_cache(maxsize=64)
def _blend_chunk(weights: tuple[float, ...], chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Source and per-source index of samples ``[chunk*C, (chunk+1)*C)`` in the merged order.

    The global order sorts every (source s, k) by due time ``(k+0.5)/w_s``, ties by source.
    Because weights sum to 1, the sample of rank ``r`` is due within ``len(weights)`` of ``r``;
    so a chunk only needs the candidates in a slightly wider time window, plus the exact
    count of candidates before that window.
    """
    margin = len(weights) + 2
    start, stop = chunk * BLEND_CHUNK, (chunk + 1) * BLEND_CHUNK
    t0, t1 = max(start - margin, 0), stop + margin
    sources, indices, times = [], [], []
    base = 0
    for s, w in enumerate(weights):
        first, last = _count_before(t0, w), _count_before(t1, w)
        base += first
        k = np.arange(first, last, dtype=np.int64)
        sources.append(np.full(len(k), s, dtype=np.int32))
        indices.append(k)
        times.append(_due_time(k, w))
    src, idx, tim = np.concatenate(sources), np.concatenate(indices), np.concatenate(times)
    order = np.lexsort((src, tim))
    lo, hi = start - base, stop - base
    if lo < 0 or hi > len(order):  # pragma: no cover - guarded by the margin argument above
        raise AssertionError("blend window too narrow")
    chosen = order[lo:hi]
    return src[chosen], idx[chosen]


def blend(weights: tuple[float, ...], index: int) -> tuple[int, int]:
    """(source, k): sample ``index`` is the ``k``-th window drawn from ``source``."""
    src, idx = _blend_chunk(weights, index // BLEND_CHUNK)
    return int(src[index % BLEND_CHUNK]), int(idx[index % BLEND_CHUNK])


def normalized_weights(sources: list[SourceConfig]) -> tuple[float, ...]:
    total = float(sum(s.weight for s in sources))
    return tuple(float(s.weight) / total for s in sources)


def samples_per_source(weights: tuple[float, ...], num_samples: int) -> list[int]:
    """How many of the first ``num_samples`` samples each source provides (exact)."""
    return [_count_before_rank(weights, s, num_samples) for s in range(len(weights))]


def _count_before_rank(weights: tuple[float, ...], source: int, num_samples: int) -> int:
    """The source's last window index among the first samples, + 1 (walks back over chunks
    that hold none of it: only a very rare source needs more than one)."""
    while num_samples > 0:
        src, idx = _blend_chunk(weights, (num_samples - 1) // BLEND_CHUNK)
        upto = (num_samples - 1) % BLEND_CHUNK + 1
        mine = idx[:upto][src[:upto] == source]
        if len(mine):
            return int(mine[-1]) + 1
        num_samples -= upto
    return 0


# ---------------------------------------------------------------------------------------------
# One source as an endless stream of shuffled, EOS-joined documents


@dataclass
class Sample:
    """One training window."""

    input_ids: np.ndarray  # int64[seq_len] (seq_len + 1 with extra_target)
    loss_mask: np.ndarray  # uint8[seq_len]: 1 = this token is a training target
    segment_ids: np.ndarray  # int32[seq_len]: document index within the window
    source: int
    # with a document-masked objective: mask this window's documents from each other (False:
    # attend across them, GPT-style; the segment ids still say where documents start)
    masked: bool = True
    # data.shared_boundary: the last token is the next row's first, here a target only (never
    # an input), so the row feeds seq_len inputs and seq_len targets
    extra_target: bool = False


def padding_row(seq_len: int, eos_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An unpacked row before its document is copied in: EOS tokens with loss mask 0 and
    segment id -1, so padding is never a target nor (with ``document_mask``) attended to."""
    return (
        np.full(seq_len, eos_id, dtype=np.int64),
        np.zeros(seq_len, dtype=np.uint8),
        np.full(seq_len, -1, dtype=np.int32),
    )


class PackedSource:
    """Documents of one store, shuffled per epoch, EOS-joined, read as consecutive windows.

    Evaluation reads held-out stores through the same class (``shuffle=False``), so eval
    windows are built exactly as training windows are: packing, EOS, loss masks, padding.
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        seed: int,
        source_index: int,
        seq_len: int,
        eos_id: int,
        id_offset: int,
        add_eos: bool,
        packing: bool = True,
        shuffle: bool = True,
        stride: int | None = None,
        shuffle_windows: bool = False,
    ) -> None:
        if len(store) == 0 or store.num_tokens == 0:
            raise UserError(f"{store.prefix}: the store holds no tokens")
        self.store = store
        self.seed = seed
        self.source_index = source_index
        self.seq_len = seq_len  # tokens per window
        # where window k starts: k x stride (seq_len - 1 with data.shared_boundary: neighbouring
        # windows then share one token)
        self.stride = seq_len if stride is None else stride
        self.eos_id = eos_id
        self.id_offset = id_offset
        self.lengths = store.sizes.astype(np.int64) + (1 if add_eos else 0)
        self.add_eos = add_eos
        self.packing = packing
        self.shuffle = shuffle  # False: documents in store order (held-out text read for eval)
        self.epoch_tokens = int(self.lengths.sum())
        self.dealing: DealtEpochs | None = None  # data.epoch_batches: per_epoch
        # data.shuffle_windows: window k is read from a permuted place within its pass
        self.window_block = max(1, self.epoch_tokens // self.stride) if shuffle_windows else 0
        self._block_order = functools.lru_cache(maxsize=4)(self._compute_block_order)
        # per source, not per class: one shared cache thrashed with five or more sources
        self._epoch_cache = functools.lru_cache(maxsize=4)(self._compute_epoch)

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        return self._epoch_cache(epoch)

    def _compute_epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(document order, start offset of each position) for one epoch."""
        rng = np.random.Generator(
            np.random.Philox(key=[self.seed & (2**64 - 1), (self.source_index << 32) | epoch])
        )
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        starts = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(self.lengths[order], out=starts[1:])
        return order, starts

    @property
    def epoch_samples(self) -> float:
        """Samples in one pass over the source: documents when padded, windows when packed;
        with dealt epochs, the whole steps a pass takes (its filler rows included)."""
        if self.dealing is not None:
            return float(self.dealing.samples)
        return float(len(self.lengths)) if not self.packing else self.epoch_tokens / self.stride

    def epochs_for(self, num_windows: int) -> float:
        return num_windows / self.epoch_samples

    def _compute_block_order(self, block: int) -> IndexPermutation:
        return IndexPermutation(self.window_block, (self.seed, self.source_index, block, 1))

    def window(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tokens, loss mask and segment ids of window ``k``."""
        if not self.packing:
            return self._padded(k)
        if self.window_block:  # data.shuffle_windows: whole passes' worth of windows permuted
            block, within = divmod(k, self.window_block)
            k = block * self.window_block + self._block_order(block)(within)
        tokens = np.empty(self.seq_len, dtype=np.int64)
        mask = np.empty(self.seq_len, dtype=np.uint8)
        segments = np.empty(self.seq_len, dtype=np.int32)
        position, segment = k * self.stride, 0
        filled = 0
        while filled < self.seq_len:
            epoch, offset = divmod(position, self.epoch_tokens)
            order, starts = self._epoch(epoch)
            slot = int(np.searchsorted(starts, offset, side="right") - 1)
            doc = int(order[slot])
            within = offset - int(starts[slot])
            take = min(int(self.lengths[doc]) - within, self.seq_len - filled)
            self._copy(
                doc, within, take, tokens[filled : filled + take], mask[filled : filled + take]
            )
            segments[filled : filled + take] = segment
            filled += take
            position += take
            segment += 1
        return tokens, mask, segments

    def _padded(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Document ``k`` of the shuffled stream alone, cut to ``seq_len`` and padded with EOS.

        Padding carries loss mask 0 and segment id -1, so it is never a target and (with
        ``document_mask``) never attended to by the document.
        """
        if self.dealing is not None:
            epoch, found = self.dealing.locate(k)
        else:
            epoch, found = divmod(k, len(self.lengths))
        tokens, mask, segments = padding_row(self.seq_len, self.eos_id)
        if found is None:  # a filler row of a dealt epoch's short last batch: no targets
            return tokens, mask, segments
        doc = int(self._epoch(epoch)[0][found])
        take = min(int(self.lengths[doc]), self.seq_len)
        self._copy(doc, 0, take, tokens[:take], mask[:take])
        segments[:take] = 0
        return tokens, mask, segments

    def _copy(self, doc: int, within: int, take: int, tokens: np.ndarray, mask: np.ndarray) -> None:
        """Copy ``take`` tokens of document ``doc`` (plus its trailing EOS) from ``within``."""
        body = int(self.store.sizes[doc])
        n_body = max(0, min(take, body - within))
        if n_body:
            tokens[:n_body] = (
                self.store.document(doc, within, n_body).astype(np.int64) + self.id_offset
            )
            doc_mask = self.store.mask(doc)
            mask[:n_body] = 1 if doc_mask is None else doc_mask[within : within + n_body]
        if take > n_body:  # the EOS after the document
            tokens[n_body:take] = self.eos_id
            mask[n_body:take] = 1


# ---------------------------------------------------------------------------------------------
# The mixture


class Mixture:
    """Deterministic weighted blend of packed sources; ``sample(i)`` is a pure function of i."""

    def __init__(
        self,
        data: DataConfig,
        *,
        seed: int,
        layout: ModelVocab,
        eos_id: int,
        masked_kinds: frozenset[str] | None = None,
    ) -> None:
        self.data = data
        # whose windows a document-masked objective masks per document (the rest: GPT-style);
        # None: as data.document_mask says for a decoder-only objective
        self.masked_kinds = data.masked_kinds() if masked_kinds is None else masked_kinds
        self.masked_sources = tuple(s.kind in self.masked_kinds for s in data.sources)
        self.all_targets = tuple(s.loss == "all" for s in data.sources)
        self.seed = seed
        self.layout = layout
        self.weights = normalized_weights(data.sources)
        self.source_names = [s.name for s in data.sources]
        self.eos_id = eos_id
        self.sources = [self._open(i, s) for i, s in enumerate(data.sources)]
        self.phases: PhaseSchedule | None = None

    @property
    def window_tokens(self) -> int:
        """Tokens each window holds: seq_len, plus the boundary token it shares with the next
        window under ``data.shared_boundary``."""
        return self.data.seq_len + (1 if self.data.shared_boundary else 0)

    def set_phases(self, *, global_batch: int, seq_len: int, total_steps: int) -> None:
        """Apply ``data.phases`` (their lengths in samples need the run's batch and budget)."""
        if self.data.phases:
            names = self.source_names
            self.phases = PhaseSchedule(
                self.data.phases,
                names,
                global_batch=global_batch,
                seq_len=seq_len,
                total_steps=total_steps,
            )

    def deal_epochs(self, *, global_batch: int, micro: int) -> None:
        """``data.epoch_batches: per_epoch``: each pass over the (single) source ends with its
        own short step (:mod:`synthlm.data.epoch_dealing`)."""
        if self.data.epoch_batches == "per_epoch":
            (source,) = self.sources
            source.dealing = DealtEpochs(len(source.lengths), global_batch // micro, micro)

    def counts(self, num_samples: int) -> list[int]:
        """Windows each source gives in the first ``num_samples`` samples."""
        if self.phases is not None:
            return self.phases.counts(num_samples)
        return samples_per_source(self.weights, num_samples)

    def tokens_seen(self, num_samples: int, seq_len: int) -> dict[str, int]:
        """Per-source training tokens (``seq_len`` per window) in the first ``num_samples``."""
        return {
            f"tokens/{n}": c * seq_len for n, c in zip(self.source_names, self.counts(num_samples))
        }

    def _open(self, index: int, source: SourceConfig) -> Any:
        if source.spec is not None:
            return self._open_spec(index, source)
        if source.kind == "synthetic":
            from synthlm.synth import load_synthetic

            store = load_synthetic(source.path).split("train")
            offset, add_eos = self.layout.meta_offset, True
        else:
            store = TokenStore(source.path, check_ids=False)
            offset, add_eos = 0, store.needs_eos_joins(self.eos_id)
        return PackedSource(
            store,
            seed=self.seed,
            source_index=index,
            seq_len=self.window_tokens,
            eos_id=self.eos_id,
            id_offset=offset,
            add_eos=add_eos,
            packing=self.data.packing,
            shuffle=source.order == "shuffled",
            stride=self.data.seq_len,
            shuffle_windows=self.data.shuffle_windows,
        )

    def _open_spec(self, index: int, source: SourceConfig) -> Any:
        """A synthetic source generated here: its train split in memory, or an endless stream."""
        from synthlm.data.synthetic_stream import StreamSource, load_plan, train_split

        assert source.spec is not None
        plan = load_plan(source.spec, self.seed, f"data source '{source.name}'")
        offset = self.layout.meta_offset
        if source.stream == "infinite":
            return StreamSource(
                plan,
                source_index=index,
                seq_len=self.window_tokens,
                eos_id=self.eos_id,
                id_offset=offset,
                packing=self.data.packing,
            )
        return PackedSource(
            train_split(plan, source.name),
            seed=self.seed,
            source_index=index,
            seq_len=self.window_tokens,  # type: ignore[arg-type]
            eos_id=self.eos_id,
            id_offset=offset,
            add_eos=True,
            packing=self.data.packing,
            stride=self.data.seq_len,
            shuffle_windows=self.data.shuffle_windows,
        )

    def sample(self, index: int) -> Sample:
        source, k = blend(self.weights, index) if self.phases is None else self.phases.locate(index)
        tokens, mask, segments = self.sources[source].window(k)
        if self.all_targets[source]:  # every document token; padding (segment -1) stays out
            mask = (segments >= 0).astype(np.uint8)
        return Sample(
            tokens,
            mask,
            segments,
            source,
            self.masked_sources[source],
            extra_target=self.data.shared_boundary,
        )

    def check_budget(self, num_samples: int) -> dict[str, float]:
        """Epochs each source will see in ``num_samples``; fail fast past ``max_repetition``."""
        counts = self.counts(num_samples)
        epochs = {}
        for config, packed, count in zip(self.data.sources, self.sources, counts):
            epochs[config.name] = packed.epochs_for(count)
            if config.max_repetition is not None and epochs[config.name] > config.max_repetition:
                raise ConfigError(
                    f"data source '{config.name}' would be repeated "
                    f"{epochs[config.name]:.2f} times "
                    f"(max_repetition={config.max_repetition}): {count:,} of the run's "
                    f"{num_samples:,} windows (whole optimizer steps; a token budget rounds up "
                    f"to them) against {packed.epoch_samples:,.1f} per pass over it; add data, "
                    f"lower its weight, or train fewer steps"
                )
        return epochs


class MixtureDataset:
    """Map-style dataset over chosen sample indices (torch's DataLoader accepts any sequence).

    Item ``i`` is ``mixture.sample(indices[i])``; pass ``range(start, stop)`` for a plain slice
    of the global stream, or the indices one rank owns.
    """

    def __init__(self, mixture: Mixture, indices: range | list[int]) -> None:
        self.mixture = mixture
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Sample:
        return self.mixture.sample(int(self.indices[i]))
