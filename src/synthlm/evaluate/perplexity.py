"""Loss, perplexity and bits per byte on a natural token store.

The store is read exactly as training reads a natural source, minus the shuffle: documents in
order, joined with EOS (unless the store already ends documents with one, ``append_eod``), cut
into fixed non-overlapping windows of ``seq_len``; the first ``max_tokens`` tokens of that
stream are evaluated. Every token of a window except its first is a target, as in training, so
numbers from ``synthlm eval`` and from the training loop's eval agree.

A model trained with ``data.document_mask`` (the default when a source is synthetic) never saw
one document attend to another, nor a position past its document's length; scored on plain
windows it would be measured on inputs it never trained on (a tiny Llama on line-sized
tinyshakespeare documents: 5.70 nats on plain windows, 4.34 scored as it trained, 4.33
training loss). Such a model is scored as it trained: each document in a window attends only
to itself, its positions start at 0, and its first token is not a target.

Bits per byte needs the UTF-8 bytes behind the tokens. When a store's ``PREFIX.json`` records
them (``num_bytes``: UTF-8 bytes of the stored documents' text), we use the store-wide bytes per token
(the usual approximation: evaluating a prefix does not change the ratio much). Without it, bpb is
omitted rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from synthlm.data.mixture import EvalSetConfig
from synthlm.data.store import TokenStore
from synthlm.errors import UserError
from synthlm.evaluate.loss import batched, document_masked_loss, sequences_loss
from synthlm.evaluate.registry import EvalContext, Evaluator, register_evaluator

BYTE_COUNT_KEY = "num_bytes"  # PREFIX.json: UTF-8 bytes of the stored documents' text


def joins_with_eos(store: TokenStore) -> bool:
    """Same rule as the training mixture: add EOS after each document unless the store has it."""
    return not bool(store.metadata.get("append_eod", False))


def token_stream(store: TokenStore, eos_id: int, max_tokens: int) -> Iterator[np.ndarray]:
    """Chunks of the EOS-joined document stream, ``max_tokens`` tokens in total."""
    left = max_tokens
    eos = np.array([eos_id], dtype=np.int64)
    add_eos = joins_with_eos(store)
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
    """Consecutive ``seq_len`` windows of the stream; a last partial window of >= 2 tokens counts."""
    for tokens, _ in document_windows(store, seq_len=seq_len, eos_id=eos_id, max_tokens=max_tokens):
        yield tokens


def document_windows(
    store: TokenStore, *, seq_len: int, eos_id: int, max_tokens: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The windows of :func:`windows`, each token with the number of its document in the stream
    (what a document-masked model needs: its attention and positions restart per document)."""
    tokens = np.zeros(0, dtype=np.int64)
    documents = np.zeros(0, dtype=np.int64)
    for number, chunk in enumerate(token_stream(store, eos_id, max_tokens)):
        tokens = np.concatenate([tokens, chunk])
        documents = np.concatenate([documents, np.full(len(chunk), number, dtype=np.int64)])
        while len(tokens) >= seq_len:
            yield tokens[:seq_len], documents[:seq_len]
            tokens, documents = tokens[seq_len:], documents[seq_len:]
    if len(tokens) >= 2:
        yield tokens, documents


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
        limits = dict(seq_len=ctx.seq_len, eos_id=ctx.eos_id, max_tokens=eval_set.max_tokens)
        if ctx.document_mask:  # as the model trained: each document attends to itself only
            rows = document_windows(store, **limits)
            batches = ctx.bar(batched(rows, ctx.batch_size), f"eval {eval_set.name}")
            total = document_masked_loss(ctx.model, batches, device=ctx.device)
        else:
            rows = ((w, np.ones(len(w), dtype=bool)) for w in windows(store, **limits))
            batches = ctx.bar(batched(rows, ctx.batch_size), f"eval {eval_set.name}")
            total = sequences_loss(ctx.model, batches, pad_id=ctx.pad_id, device=ctx.device)
        return natural_metrics(total.mean, bytes_per_token(store))
