"""DEPTH (``objective: depth``): span corruption plus sentence un-shuffling, for T5 models.

Two constructions. ``construction: synthlm`` (the default, described below) packs windows
across documents, masks text tokens at the exact density, numbers sentinels in order and ends
targets with ``</s>``. ``construction: paper`` builds examples as the DEPTH paper's code does
(``synthlm.objectives.depth_paper``); docs/papers/depth.md lists every difference and why the
default departs from the paper.

Example layout. A window's sentences S1..Sk (at most ``max_sentences``) each get a sentence
token, drawn as a random permutation of ``<sent_0..N-1>`` per example (in order with
``sentence_ids: ordered``, for fine-tuning)::

    input:  <eosen> <sent_a> S1' <eosen> <sent_b> S2' <eosen> ... </s>     (segments shuffled)
    target: <sent_a> T1 <sent_b> T2 ... </s>                                (original order)

``Si'`` is sentence i with its noise spans replaced by sentinels and ``Ti`` the sentinels with
the tokens they hide. One T5 noise mask covers all sentence tokens together (so the density is
exact); special tokens are never masked, and a span is never continued across a sentence
boundary (it gets a second sentinel). Sentinels are numbered in the original order, before the
segments ``<sent_x> Sx' <eosen>`` are shuffled (with ``sentence_shuffling_probability``); the
target keeps the original order, so predicting each ``<sent_x>`` means recovering the order.

Why decode, split, re-encode: sentence boundaries are a property of text, and windows are token
ids. Each document piece of the window is decoded, split with a download-free splitter
(``synthlm.text.sentences``) and re-encoded sentence by sentence. The cost: tokens at a
sentence start may differ slightly from the stored ones (BPE merges never cross our cuts), and
a window cut in the middle of a multi-byte character decodes to a replacement character. The
splitter gives inter-sentence whitespace to the next sentence so merges stay close to the
original. Document boundaries are sentence boundaries; all sentences of a window, from
whichever document, form one example, as when DEPTH truncates long texts.

Lengths: inputs are padded to ``input_length`` and targets to a fixed ``target_length``, both
computed from the worst case (every sentence boundary splitting a span), so no example is ever
cut after corruption; whole sentences are kept and only the last one is shortened to fit.

Hierarchical attention (``hierarchical_attention: true``). Sentence tokens are the
``<sent_x>`` tokens of the encoder input and the decoder *input* (the decoder position that
reads ``<sent_x>``, i.e. knows which sentence it has just placed):

* encoder: a sentence token attends only to its own segment ``<sent_x> Sx' <eosen>``; other
  tokens attend to every non-pad token;
* decoder: causal; a sentence token attends only to earlier (and its own) sentence tokens;
* cross: a decoder sentence token attends only to encoder sentence tokens; others to all.

How the masks reach HF T5 (transformers 5.x): the encoder and decoder stacks take a prepared
4D mask ``[B, 1, Q, K]`` as-is (``masking_utils`` returns 4D masks untouched), but
``T5ForConditionalGeneration`` passes its single ``attention_mask`` to *both* the encoder and
the cross-attention, whose shapes differ (``[B,1,L,L]`` vs ``[B,1,T,L]``). So the encoder mask
goes in as ``attention_mask``, and a forward pre-hook on the decoder stack, installed only for
the duration of the call, swaps the decoder's ``encoder_attention_mask`` for the cross mask.
The model is still called once, through any DDP/FSDP wrapper, and the saved checkpoint is a
plain T5. Masks are boolean for SDPA and additive floats for eager attention, as HF builds
them; other attention back-ends are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from synthlm.errors import ConfigError, UserError
from synthlm.objectives import depth_paper
from synthlm.objectives.base import IGNORE_INDEX, register_objective
from synthlm.objectives.span_corruption import EncoderDecoderObjective, SpanCorruptionConfig
from synthlm.objectives.t5_noise import (
    corrupt,
    noise_counts,
    raw_length_for,
    sample_rng,
    span_starts,
)
from synthlm.text.sentences import get_splitter, split_sentences
from synthlm.text.special_tokens import (
    TextCodec,
    depth_token_names,
    other_special_ids,
    vocab_size,
)


class DepthConfig(SpanCorruptionConfig):
    """Options of ``objective: depth``."""

    noise_density: float = Field(0.3, gt=0, lt=1, description="Share of sentence tokens hidden.")
    max_sentences: int = Field(
        20, ge=1, description="Sentences per example; also the number of <sent_i> tokens."
    )
    sentence_shuffling_probability: float = Field(
        0.5, ge=0, le=1, description="Chance that an example's sentences are shuffled."
    )
    sentence_loss_coefficient: float = Field(
        1.0,
        ge=0,
        description="Weight of the loss on <sent_i> targets; reconstruction targets weigh 1.",
    )
    sentence_ids: Literal["random", "ordered"] = Field(
        "random",
        description="random: a permutation per example (pretraining); ordered: fine-tuning.",
    )
    splitter: str = Field(
        "pysbd",
        description="Sentence splitter (synthlm.text.sentences): pysbd, rules or nltk "
        "(the paper's; needs punkt_tab).",
    )
    hierarchical_attention: bool = Field(
        True, description="Sentence tokens attend hierarchically (see module docs)."
    )
    construction: Literal["synthlm", "paper"] = Field(
        "synthlm",
        description="synthlm: packed windows, exact density (module docs); paper: the "
        "DEPTH code's examples (depth_paper).",
    )
    paper_label_padding: bool = Field(
        True,
        description="construction: paper only. true: the padding of the targets is trained "
        "(<pad> targets), as in the DEPTH code's runs; false: it is ignored, as that code "
        "meant to do (docs/papers/depth.md).",
    )

    @model_validator(mode="after")
    def _options_of_the_construction(self) -> DepthConfig:
        """Each construction reads only its own options: the paper's draws a random
        permutation of sentence tokens per example (no ordered ids), and only the paper's pads
        targets. Defaults pass (a saved config.yaml lists every option)."""
        if self.construction == "paper" and self.sentence_ids != "random":
            raise ValueError(
                f"sentence_ids: {self.sentence_ids} is not read by construction: paper (the "
                "DEPTH code draws a random permutation of the sentence tokens per example); "
                "remove objective.sentence_ids or use construction: synthlm"
            )
        if self.construction != "paper" and not self.paper_label_padding:
            raise ValueError(
                "paper_label_padding: false is read by construction: paper only (the synthlm "
                "construction never trains padding); remove objective.paper_label_padding or "
                "set objective.construction=paper"
            )
        return self


@register_objective("depth")
class Depth(EncoderDecoderObjective):
    """Span corruption inside sentences plus sentence un-shuffling (DEPTH)."""

    config_class = DepthConfig
    config: DepthConfig

    def __init__(self, tokenizer: Any = None, **options: Any) -> None:
        super().__init__(tokenizer, **options)
        get_splitter(self.config.splitter)  # unknown splitter: fail now, not in a worker
        split_sentences("Ready. Set.", self.config.splitter)  # a missing splitter model, too
        self.eosen_id = self.ids[self._eosen_name]
        self.sentence_token_ids = np.array(
            [self.ids[n] for n in self._sentence_names], dtype=np.int64
        )
        self.codec = TextCodec(tokenizer)
        self.text_vocab_size = vocab_size(tokenizer)
        self.other_special_ids = other_special_ids(tokenizer)

    def token_names(self, vocab: dict[str, int]) -> list[str]:
        self._eosen_name, self._sentence_names = depth_token_names(
            vocab, self.config.num_sentinels, self.config.max_sentences
        )
        return [*super().token_names(vocab), self._eosen_name, *self._sentence_names]

    # -- lengths -------------------------------------------------------------------------------

    def check_data(self, data: Any) -> None:
        """The paper's construction is one document per example: it needs unpacked samples."""
        if self.config.construction == "paper" and getattr(data, "packing", False):
            raise ConfigError(
                "objective.construction=paper builds one document per example as the "
                "DEPTH code does; "
                "set data.packing: false"
            )

    def window_length(self, seq_len: int) -> int:
        """Raw tokens to read: as for span corruption; sentence tokens take room, so a little
        text is always left over rather than missing. The paper's construction reads up to
        ``seq_len`` tokens of one document (its sequence, specials included, is cut there)."""
        if self.config.construction == "paper":
            if seq_len < 4:
                raise ConfigError(
                    f"objective 'depth': input length {seq_len} leaves no room for text; "
                    f"raise data.seq_len"
                )
            self._input_length_of_raw[seq_len] = seq_len
            return seq_len
        raw, _ = raw_length_for(
            seq_len, self.config.noise_density, self.config.mean_noise_span_length
        )
        if self.content_budget(seq_len, 1) < 2:
            raise ConfigError(
                f"objective 'depth': input length {seq_len} leaves no room for text; raise "
                f"data.seq_len"
            )
        self._check_sentinels(seq_len, self.sentinels_needed(raw, seq_len))
        self._input_length_of_raw[raw] = seq_len
        return raw

    def sentinels_needed(self, raw: int, seq_len: int) -> int:
        return max(
            self._spans(self.content_budget(seq_len, s)) + s - 1
            for s in range(1, self.config.max_sentences + 1)
        )

    def _spans(self, n: int) -> int:
        return (
            noise_counts(n, self.config.noise_density, self.config.mean_noise_span_length)[1]
            if n >= 2
            else 0
        )

    def _noise(self, n: int) -> int:
        return (
            noise_counts(n, self.config.noise_density, self.config.mean_noise_span_length)[0]
            if n >= 2
            else 0
        )

    def input_bound(self, n: int, sentences: int) -> int:
        """Longest input from ``n`` text tokens in ``sentences`` sentences: each boundary may
        split a span in two; specials are one <eosen> plus <sent_x>, <eosen> per sentence, </s>."""
        return n - self._noise(n) + self._spans(n) + (sentences - 1) + 2 * sentences + 2

    def target_bound(self, n: int, sentences: int) -> int:
        return self._noise(n) + self._spans(n) + (sentences - 1) + sentences + 1

    @lru_cache(maxsize=1024)  # noqa: B019 - a handful of (length, sentences) pairs per run
    def content_budget(self, seq_len: int, sentences: int) -> int:
        """Most text tokens that always fit ``seq_len`` input tokens with ``sentences`` sentences."""
        n = raw_length_for(seq_len, self.config.noise_density, self.config.mean_noise_span_length)[
            0
        ]
        while n > 0 and self.input_bound(n, sentences) > seq_len:
            n -= 1
        return n

    def input_length_of(self, raw: int) -> int:
        """The paper's construction reads as many tokens as the input holds."""
        return raw if self.config.construction == "paper" else super().input_length_of(raw)

    def target_length(self, seq_len: int) -> int:
        if (
            self.config.construction == "paper"
        ):  # the paper pads (and cuts) targets to the input length
            return seq_len
        return max(
            self.target_bound(self.content_budget(seq_len, s), s)
            for s in range(1, self.config.max_sentences + 1)
        )

    # -- examples ------------------------------------------------------------------------------

    def sentences_of(
        self, tokens: np.ndarray, segments: np.ndarray, source: int
    ) -> list[np.ndarray]:
        """Re-encoded sentences of a window's documents, at most ``max_sentences``."""
        if len(tokens) and int(tokens.max()) >= self.text_vocab_size:
            raise UserError(
                f"objective 'depth' reads text, but source {source} holds ids up to "
                f"{int(tokens.max())} beyond the "
                f"tokenizer's {self.text_vocab_size}; use depth on natural token stores only"
            )
        cuts = np.flatnonzero(segments[1:] != segments[:-1]) + 1
        out: list[np.ndarray] = []
        for piece in np.split(tokens, cuts):
            piece = piece[(piece != self.eos_id) & (piece != self.pad_id)]
            if not len(piece):
                continue
            for sentence in split_sentences(self.codec.decode(piece), self.config.splitter):
                ids = self.codec.encode(sentence)
                if ids:
                    out.append(np.asarray(ids, dtype=np.int64))
                if len(out) == self.config.max_sentences:
                    return out
        return out

    def fit(self, sentences: list[np.ndarray], seq_len: int) -> list[np.ndarray]:
        """Keep the most sentences whose text still fits, shortening the last one."""
        lengths = np.cumsum([len(s) for s in sentences])
        kept = 1
        for count in range(1, len(sentences) + 1):
            before = lengths[count - 2] if count > 1 else 0
            if before < self.content_budget(seq_len, count):
                kept = count
        budget = self.content_budget(seq_len, kept) - (lengths[kept - 2] if kept > 1 else 0)
        return [*sentences[: kept - 1], sentences[kept - 1][:budget]]

    def build_example(
        self, sentences: list[np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input ids, sentence index of each input token or -1, target ids)."""
        count = len(sentences)
        mask = self.noise_mask(sum(len(s) for s in sentences), rng)
        pieces, start, sentinel = [], 0, 0
        for sentence in sentences:
            piece_mask = mask[start : start + len(sentence)]
            pieces.append(corrupt(sentence, piece_mask, self.sentinel_ids, sentinel))
            sentinel += int(span_starts(piece_mask).sum())  # a span cut by the boundary restarts
            start += len(sentence)
        if self.config.sentence_ids == "random":
            ids = self.sentence_token_ids[rng.permutation(self.config.max_sentences)[:count]]
        else:
            ids = self.sentence_token_ids[:count]
        shuffle = rng.random() < self.config.sentence_shuffling_probability
        order = rng.permutation(count) if shuffle else np.arange(count)
        inputs, owner = [np.array([self.eosen_id])], [np.array([-1])]
        for i in order:
            segment = np.concatenate(([ids[i]], pieces[i][0], [self.eosen_id]))
            inputs.append(segment)
            owner.append(np.full(len(segment), i))
        inputs.append(np.array([self.eos_id]))
        owner.append(np.array([-1]))
        targets = np.concatenate(
            [np.concatenate(([ids[i]], pieces[i][1])) for i in range(count)] + [[self.eos_id]]
        )
        return (
            np.concatenate(inputs).astype(np.int64),
            np.concatenate(owner).astype(np.int64),
            targets.astype(np.int64),
        )

    def example(self, sample: Any, seq_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tokens = np.asarray(sample.input_ids, dtype=np.int64)
        sentences = self.sentences_of(tokens, np.asarray(sample.segment_ids), sample.source)
        if not sentences:  # a window of separators only: one empty sentence
            sentences = [np.zeros(0, dtype=np.int64)]
        rng = sample_rng(self.config.seed, tokens, sample.source)
        return self.build_example(self.fit(sentences, seq_len), rng)

    def paper_example(
        self, sample: Any, seq_len: int, shuffle: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One example as the DEPTH code builds it (see ``depth_paper``), from the sample's
        first document."""
        tokens = np.asarray(sample.input_ids, dtype=np.int64)
        segments = np.asarray(sample.segment_ids)
        first = segments == segments[0]
        sentences = self.sentences_of(tokens[first], segments[first], sample.source)
        rng = sample_rng(self.config.seed, tokens, sample.source)
        ids = self.sentence_token_ids[rng.permutation(self.config.max_sentences)]
        sequence, owner = depth_paper.paper_sequence(sentences, ids, self.eosen_id, seq_len)
        special = np.isin(sequence, self._special_ids)
        noise = depth_paper.paper_noise_mask(
            len(sequence),
            self.config.noise_density,
            self.config.mean_noise_span_length,
            special,
            rng,
        )
        inputs, owner, labels = depth_paper.paper_corrupt(
            sequence, owner, noise, self._label_specials, self.sentinel_ids, rng
        )
        if shuffle:
            inputs, owner = depth_paper.paper_shuffle(
                inputs, owner, self.eosen_id, self.eos_id, self.pad_id, seq_len, rng
            )
        return inputs[:seq_len], owner[:seq_len], labels[:seq_len]

    @property
    def _special_ids(self) -> np.ndarray:
        """The DEPTH tokenizer's ``all_special_ids``: pad, ``</s>``, ``<unk>`` (and a bos where
        the tokenizer has one), the sentinels, ``<eosen>`` and the sentence tokens."""
        return np.array(
            [
                self.eos_id,
                self.pad_id,
                *self.other_special_ids,
                self.eosen_id,
                *self.sentence_token_ids,
                *self.sentinel_ids,
            ]
        )

    @property
    def _label_specials(self) -> np.ndarray:
        return np.array([self.eosen_id, *self.sentence_token_ids])

    def rows(self, samples: list, seq_len: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if self.config.construction != "paper":
            return [self.example(s, seq_len) for s in samples]
        every = np.concatenate([np.asarray(s.input_ids, dtype=np.int64) for s in samples])
        batch_rng = sample_rng(
            self.config.seed, every, salt=-1
        )  # one decision per batch, as the paper
        shuffle = bool(batch_rng.random() < self.config.sentence_shuffling_probability)
        return [self.paper_example(s, seq_len, shuffle) for s in samples]

    def collate(self, samples: list) -> dict[str, torch.Tensor]:
        seq_len = self.input_length_of(len(samples[0].input_ids))
        rows = self.rows(samples, seq_len)
        target_len = self.target_length(seq_len)
        targets = self.pad_rows([r[2] for r in rows], target_len, self.pad_id)
        # The paper's code trains the padding of its targets (see paper_label_padding).
        label_pad = self.pad_id if self._trains_padding else IGNORE_INDEX
        labels = self.pad_rows([r[2] for r in rows], target_len, label_pad)
        return {
            "input_ids": torch.from_numpy(
                self.pad_rows([r[0] for r in rows], seq_len, self.pad_id)
            ),
            "attention_mask": torch.from_numpy(  # a shuffled paper input has padding inside
                self.pad_rows([(r[0] != self.pad_id).astype(np.int64) for r in rows], seq_len, 0)
            ),
            "encoder_sentence": torch.from_numpy(self.pad_rows([r[1] for r in rows], seq_len, -1)),
            "decoder_input_ids": torch.from_numpy(self.shift_right(targets)),
            "labels": torch.from_numpy(labels),
            "source": torch.tensor([s.source for s in samples], dtype=torch.long),
        }

    # -- model side ------------------------------------------------------------------------------

    def is_sentence_token(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.isin(ids, torch.as_tensor(self.sentence_token_ids, device=ids.device))

    @property
    def _trains_padding(self) -> bool:
        return self.config.construction == "paper" and self.config.paper_label_padding

    def token_groups(self, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, float]]:
        targets = batch["labels"] != IGNORE_INDEX
        sentence = self.is_sentence_token(batch["labels"]) & targets
        groups = {"sentence": (sentence, self.config.sentence_loss_coefficient)}
        if self._trains_padding:  # pad targets, reported apart so reconstruction stays readable
            padding = (batch["labels"] == self.pad_id) & targets
            groups["padding"] = (padding, 1.0)
            targets = targets & ~padding
        groups["reconstruction"] = (targets & ~sentence, 1.0)
        return groups

    def forward_logits(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        if not self.config.hierarchical_attention:
            return super().forward_logits(model, batch)
        encoder, decoder, cross = (
            to_model_mask(m, model) for m in hierarchical_masks(batch, self.is_sentence_token)
        )
        with cross_attention_mask(model, cross):
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=encoder,
                decoder_input_ids=batch["decoder_input_ids"],
                decoder_attention_mask=decoder,
                use_cache=False,
            )
        return out.logits


def hierarchical_masks(
    batch: dict[str, torch.Tensor], is_sentence: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean ``[B, 1, Q, K]`` masks (True = may attend): encoder, decoder, cross."""
    valid = batch["attention_mask"].bool()
    enc_sentence = is_sentence(batch["input_ids"]) & valid
    owner = batch["encoder_sentence"]
    encoder = valid[:, None, :] & (
        ~enc_sentence[:, :, None] | (owner[:, :, None] == owner[:, None, :])
    )
    dec_sentence = is_sentence(batch["decoder_input_ids"])
    length = dec_sentence.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=dec_sentence.device).tril()
    decoder = causal[None] & (~dec_sentence[:, :, None] | dec_sentence[:, None, :])
    cross = valid[:, None, :] & (~dec_sentence[:, :, None] | enc_sentence[:, None, :])
    return encoder[:, None], decoder[:, None], cross[:, None]


def to_model_mask(allowed: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """The mask format HF's attention back-end expects: bool for SDPA, additive float for eager."""
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:  # 4.x T5 rebuilt masks from 2D inputs only
        raise ConfigError("objective 'depth' with hierarchical_attention needs transformers >= 5")
    inner = unwrap(model)
    implementation = getattr(inner.config, "_attn_implementation", "eager")
    if implementation == "sdpa":
        return allowed
    if implementation != "eager":
        raise ConfigError(
            f"objective 'depth' with hierarchical_attention needs eager or sdpa attention, "
            f"got '{implementation}'; "
            "set the model's attn_implementation or objective.hierarchical_attention=false"
        )
    dtype = next(inner.parameters()).dtype
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The HF model inside DDP / accelerate / torch.compile wrappers."""
    while not hasattr(model, "get_decoder") and hasattr(model, "module"):
        model = model.module
    return model


@contextmanager
def cross_attention_mask(model: torch.nn.Module, mask: torch.Tensor) -> Iterator[None]:
    """While active, the decoder stack's cross-attention uses ``mask`` (see module docs)."""

    def swap(_module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "encoder_attention_mask": mask}

    handle = unwrap(model).get_decoder().register_forward_pre_hook(swap, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
