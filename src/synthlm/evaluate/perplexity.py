"""Loss, perplexity and bits per byte on a natural token store, scored the way the model trained.

The store is read exactly as training reads a natural source, minus the shuffle: documents in
order, joined with EOS (unless the store already ends documents with one, ``append_eod``), cut
into fixed non-overlapping windows of ``seq_len`` (or one document per row with
``data.packing: false``); the first ``max_tokens`` tokens of that stream are evaluated. The
windows come from the training reader itself (:class:`synthlm.data.mixture.PackedSource`) and
are scored by the run's own objective, so the eval loss is the training loss on held-out text:
the store's loss mask (chat stores: the assistant's tokens, unless ``objective.train_on: all``)
and ``data.document_mask`` apply as they did in training.

Why it matters: a model whose natural documents were masked from each other in training
(``data.document_mask: true``, and before 2026-12-01 the default beside synthetic data) never
saw one document attend to another, nor a position past its document's length. Scored on
plain windows, a tiny Llama on line-sized tinyshakespeare documents measured 5.70 nats,
against 4.34 scored as it trained and a training loss of 4.33.

Bits per byte needs the UTF-8 bytes behind the tokens. When a store's ``PREFIX.json`` records
them (``num_bytes``: UTF-8 bytes of the stored documents' text), we use the store-wide bytes per
token (the usual approximation: evaluating a prefix does not change the ratio much). Without
it, bpb is omitted rather than guessed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator

import numpy as np

from synthlm.data.mixture import EvalSetConfig, PackedSource, Sample
from synthlm.data.store import TokenStore
from synthlm.errors import UserError
from synthlm.evaluate.loss import BatchMeanLoss, LossTotal, batched, loss_total
from synthlm.evaluate.registry import EvalContext, Evaluator, register_evaluator

BYTE_COUNT_KEY = "num_bytes"  # PREFIX.json: UTF-8 bytes of the stored documents' text


def joins_with_eos(store: TokenStore, eos_id: int) -> bool:
    """Same rule as the training mixture (:meth:`TokenStore.needs_eos_joins`)."""
    return store.needs_eos_joins(eos_id)


def token_stream(store: TokenStore, eos_id: int, max_tokens: int) -> Iterator[np.ndarray]:
    """Chunks of the EOS-joined document stream, ``max_tokens`` tokens in total."""
    left = max_tokens
    eos = np.array([eos_id], dtype=np.int64)
    add_eos = joins_with_eos(store, eos_id)
    for i in range(len(store)):
        if left <= 0:
            return
        doc = np.asarray(store.document(i), dtype=np.int64)
        piece = np.concatenate([doc, eos]) if add_eos else doc
        yield piece[:left]
        left -= len(piece)


def windows(
    store: TokenStore, *, seq_len: int, eos_id: int, max_tokens: int
) -> Iterator[np.ndarray]:
    """Consecutive ``seq_len`` windows of the stream; a last partial window of >= 2 tokens counts.

    The plain definition of what packed evaluation reads (the benchmark's baseline and the
    tests' reference); the evaluator itself reads through :func:`held_out_samples`.
    """
    buffer = np.zeros(0, dtype=np.int64)
    for chunk in token_stream(store, eos_id, max_tokens):
        buffer = np.concatenate([buffer, chunk])
        while len(buffer) >= seq_len:
            yield buffer[:seq_len]
            buffer = buffer[seq_len:]
    if len(buffer) >= 2:
        yield buffer


def held_out_samples(
    store: TokenStore,
    *,
    seq_len: int,
    eos_id: int,
    max_tokens: int,
    packing: bool,
    masked: bool = True,
    max_documents: int | None = None,
    shared_boundary: bool = False,
) -> Iterator[Sample]:
    """Training samples of ``store`` in document order, ``max_tokens`` tokens in all, from its
    first ``max_documents`` documents (None: all).

    Packed: the stream's windows; the last one is cut where the stream (or ``max_tokens``)
    ends instead of running into a second pass. Unpacked: one document per sample, cut to
    ``seq_len``, until the rows hold ``max_tokens`` tokens. What a sample does not cover is
    padding (never a target, never attended to under document masking), as in training.
    ``masked``: a document-masked objective masks the documents from each other (natural text
    was masked in training), else it scores the windows GPT-style. ``shared_boundary``: rows of
    ``seq_len + 1`` tokens, each sharing its last with the next (``data.shared_boundary``).
    """
    window = seq_len + (1 if shared_boundary else 0)
    source = PackedSource(
        store,
        seed=0,
        source_index=0,
        seq_len=window,
        eos_id=eos_id,
        id_offset=0,
        add_eos=joins_with_eos(store, eos_id),
        packing=packing,
        shuffle=False,
        stride=seq_len,
    )
    documents = len(store) if max_documents is None else min(max_documents, len(store))
    total = min(max_tokens, int(source.lengths[:documents].sum()))  # EOS included, as read
    rows = _packed_rows(source, total) if packing else _document_rows(source, total, documents)
    for tokens, mask, segments in rows:
        yield Sample(tokens, mask, segments, 0, masked, extra_target=shared_boundary)


Row = tuple[np.ndarray, np.ndarray, np.ndarray]


def _packed_rows(source: PackedSource, total: int) -> Iterator[Row]:
    """Windows over the first ``total`` tokens of the stream; the last is cut where they end
    and dropped when fewer than 2 tokens (nothing to predict) are left for it."""
    for k in itertools.count():
        real = min(source.seq_len, total - k * source.stride)
        if real < 2:
            return
        tokens, mask, segments = source.window(k)
        mask[real:], segments[real:] = 0, -1
        yield tokens, mask, segments


def _document_rows(source: PackedSource, total: int, documents: int) -> Iterator[Row]:
    """One document per row, until the rows hold ``total`` tokens."""
    left = total
    for k in range(documents):
        if left < 2:
            return
        tokens, mask, segments = source.window(k)
        real = int((segments >= 0).sum())
        if real > left:
            mask[left:], segments[left:] = 0, -1
        left -= min(real, left)
        yield tokens, mask, segments


def objective_loss(
    model, objective, batches: Iterable[list[Sample]], device, loss_average: str = "tokens"
) -> LossTotal | BatchMeanLoss:
    """Loss of ``objective`` (its targets, masks and positions) over ``batches``, averaged as
    the run averaged its training loss (``loss_average``: per token, or per batch).

    Through ``forward``, the call the training loop makes and every objective has, so any
    registered objective scores held-out text exactly as it computes its training loss.
    """
    total = loss_total(loss_average)
    for samples in batches:
        batch = {k: v.to(device) for k, v in objective.collate(samples).items()}
        out = objective.forward(model, batch)
        total.add(float(out.loss.double()), int(out.targets), len(samples))
    return total


def bytes_per_token(store: TokenStore) -> float | None:
    """Source UTF-8 bytes per stored token, when PREFIX.json records the byte count."""
    value = store.metadata.get(BYTE_COUNT_KEY)
    if isinstance(value, (int, float)) and value > 0 and store.num_tokens > 0:
        return float(value) / store.num_tokens
    return None


def natural_metrics(loss: float, bytes_per_tok: float | None) -> dict[str, float]:
    """loss (nats/token), ppl = exp(loss), bpb = loss / ln 2 / bytes-per-token."""
    metrics = {"loss": loss, "ppl": math.exp(min(loss, 700.0))}  # exp(>709) overflows a float
    if bytes_per_tok:
        metrics["bpb"] = loss / math.log(2) / bytes_per_tok
    return metrics


@register_evaluator("natural")
class NaturalEvaluator(Evaluator):
    """Loss / perplexity / bits per byte on the first ``max_tokens`` tokens of a store."""

    def check(self, eval_set: EvalSetConfig, ctx: EvalContext) -> None:
        store = TokenStore(eval_set.path, check_ids=False)
        if store.num_tokens == 0:
            raise UserError(f"eval set '{eval_set.name}': {eval_set.path} holds no tokens")
        head = store.tokens(0, min(store.num_tokens, eval_set.max_tokens))
        if int(head.max()) >= ctx.layout.natural_size:
            raise UserError(
                f"eval set '{eval_set.name}': {eval_set.path} has token id "
                f"{int(head.max())}, outside the "
                f"model's natural vocabulary of {ctx.layout.natural_size} ids (was it made "
                f"with another tokenizer?)"
            )

    def run(self, eval_set: EvalSetConfig, ctx: EvalContext) -> dict[str, float]:
        store = TokenStore(eval_set.path, check_ids=False)
        samples = held_out_samples(
            store,
            seq_len=ctx.seq_len,
            eos_id=ctx.eos_id,
            max_tokens=eval_set.max_tokens,
            packing=ctx.packing,
            masked=ctx.natural_masked,
            max_documents=eval_set.max_documents,
            shared_boundary=ctx.shared_boundary,
        )
        batches = ctx.bar(batched(samples, ctx.batch_size), f"eval {eval_set.name}")
        total = objective_loss(
            ctx.model, ctx.scoring_objective, batches, ctx.device, ctx.loss_average
        )
        return natural_metrics(total.mean, bytes_per_token(store))
