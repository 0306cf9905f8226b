"""Loss and exact-match accuracy on a synthetic dataset's ``valid`` split.

Synthetic ids live in their own space ``0..V_syn-1``; the model sees them shifted into the
meta-language range (``layout.meta_offset + id``), exactly as the training mixture feeds them.

* Loss: each valid document on its own (shifted, EOS appended as in training), targets where
  the document's loss mask is 1 (the EOS counts as a target, as in training). Documents are
  evaluated one per row rather than packed, so no document sees another's tokens: the number
  measures the task, not the packing. Documents are taken one per domain in turn (the split
  stores each domain's documents together) until ``max_tokens`` tokens have been read, so a
  budget smaller than the split still covers every domain.
* Accuracy: for the first ``max_examples`` examples, greedy-decode ``len(answer) + 1`` tokens
  from the prompt (the extra token lets the model say EOS), cut at EOS, shift back to synthetic
  ids (anything outside the meta range becomes -1, which no answer contains) and let the
  domain's ``score`` judge it. Reported overall and per domain.
* Per domain: loss (token-weighted over that domain's targets) and accuracy, as flat metrics
  ``loss/<domain>`` and ``acc/<domain>``; ``synthlm eval`` also asks for the tables by answer
  length and the decoded predictions (:mod:`synthlm.evaluate.synthetic_details`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from synthlm.data.mixture import EvalSetConfig, ModelVocab, synthetic_vocab_needed
from synthlm.errors import UserError
from synthlm.evaluate.loss import LossTotal, batched, rows_loss
from synthlm.evaluate.registry import EvalContext, Evaluator, register_evaluator
from synthlm.evaluate.synthetic_details import Details, Prediction

SPLIT = "valid"


def round_robin(owners: np.ndarray) -> np.ndarray:
    """Document indices taking one document of each domain in turn (domain order, then index).

    A split stores each domain's documents together, so reading it in order would spend a
    ``max_tokens`` budget on the first domains only; in turns, every domain gets its share.
    """
    owners = np.asarray(owners, dtype=np.int64)
    by_domain = np.argsort(owners, kind="stable")
    starts = np.searchsorted(owners[by_domain], owners[by_domain], side="left")
    rank = np.empty(len(owners), dtype=np.int64)
    rank[by_domain] = np.arange(len(owners)) - starts
    return np.lexsort((owners, rank))


def document_rows(
    store, *, layout: ModelVocab, eos_id: int, seq_len: int, max_tokens: int, order=None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(shifted tokens + EOS, loss mask) per document of ``order`` (default: store order), cut
    to ``seq_len``, ``max_tokens`` in total."""
    left = max_tokens
    for i in range(len(store)) if order is None else order:
        if left <= 0:
            return
        i = int(i)
        doc = np.asarray(store.document(i), dtype=np.int64) + layout.meta_offset
        mask = store.mask(i)
        mask = np.ones(len(doc), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        tokens = np.concatenate([doc, [eos_id]])[:seq_len]
        targets = np.concatenate([mask, [True]])[:seq_len]
        left -= len(tokens)
        yield tokens, targets


def to_synthetic(generated: list[int], *, layout: ModelVocab, eos_id: int, keep: int) -> np.ndarray:
    """The first ``keep`` generated ids, cut at EOS, shifted back; non-meta ids become -1."""
    row = generated[:keep]
    if eos_id in row:
        row = row[: row.index(eos_id)]
    ids = np.asarray(row, dtype=np.int64) - layout.meta_offset
    ids[(ids < 0) | (ids >= layout.meta_size)] = -1
    return ids


def greedy_answers(
    ctx: EvalContext, prompts: list[np.ndarray], lengths: list[int]
) -> list[list[int]]:
    """Greedy continuations (model ids) of shifted prompts, ``lengths[i]`` new tokens at least."""
    from synthlm.inference.sampling import left_pad

    ids, mask = left_pad([(p + ctx.layout.meta_offset).tolist() for p in prompts], ctx.pad_id)
    out = ctx.generator.generate(
        input_ids=ids.to(ctx.device),
        attention_mask=mask.to(ctx.device),
        do_sample=False,
        max_new_tokens=max(lengths),
        eos_token_id=ctx.eos_id,
        pad_token_id=ctx.pad_id,
        suppress_tokens=None,  # answers are meta ids, which a checkpoint's generation_config suppresses
    )
    return out[:, ids.shape[1] :].tolist()


def predict(ctx: EvalContext, dataset, max_examples: int) -> list[Prediction]:
    """Greedy answers of the first ``max_examples`` examples, each scored by its domain."""
    from synthlm.synth import score

    preds: list[Prediction] = []
    examples = list(dataset.examples(SPLIT, max_examples))
    for start in ctx.bar(range(0, len(examples), ctx.batch_size), "exact match"):
        batch = examples[start : start + ctx.batch_size]
        lengths = [len(e.answer) + 1 for e in batch]
        prompts = [np.asarray(e.prompt, dtype=np.int64) for e in batch]
        for example, row, keep in zip(batch, greedy_answers(ctx, prompts, lengths), lengths):
            ids = to_synthetic(row, layout=ctx.layout, eos_id=ctx.eos_id, keep=keep)
            kept = row[:keep]
            kept = kept[: kept.index(ctx.eos_id) + 1] if ctx.eos_id in kept else kept
            value = float(score(example.domain, example.prompt, ids, dataset=dataset))
            preds.append(
                Prediction(
                    example.domain,
                    int(example.index),
                    example.prompt.tolist(),
                    example.answer.tolist(),
                    ids.tolist(),
                    kept,
                    value,
                )
            )
    return preds


def accuracy_metrics(preds: list[Prediction]) -> dict[str, float]:
    """Mean score overall (``acc``) and per domain (``acc/<domain>``)."""
    if not preds:
        return {}
    scores: dict[str, list[float]] = defaultdict(list)
    for p in preds:
        scores[p.domain].append(p.score)
    metrics = {"acc": float(np.mean([p.score for p in preds]))}
    metrics.update({f"acc/{d}": float(np.mean(v)) for d, v in sorted(scores.items())})
    return metrics


def domain_losses(
    ctx: EvalContext, dataset, max_tokens: int, name: str
) -> dict[str, tuple[float, int]]:
    """(loss sum, target tokens) per domain over valid documents taken in domain turns."""
    store, owners = dataset.split(SPLIT), np.asarray(dataset.domain_of(SPLIT))
    names, order = dataset.domain_names(), round_robin(owners)
    rows = document_rows(
        store,
        layout=ctx.layout,
        eos_id=ctx.eos_id,
        seq_len=ctx.seq_len,
        max_tokens=max_tokens,
        order=order,
    )
    totals: dict[str, list] = {}
    done = 0
    for batch in ctx.bar(batched(rows, ctx.batch_size), f"eval {name} loss"):
        for loss_sum, tokens in rows_loss(ctx.model, batch, pad_id=ctx.pad_id, device=ctx.device):
            entry = totals.setdefault(names[int(owners[order[done]])], [0.0, 0])
            entry[0] += loss_sum
            entry[1] += tokens
            done += 1
    return {domain: (float(s), int(n)) for domain, (s, n) in totals.items()}


def loss_metrics(losses: dict[str, tuple[float, int]]) -> dict[str, float]:
    """``loss`` over every target token, ``loss/<domain>`` over each domain's."""
    total = LossTotal()
    for loss_sum, tokens in losses.values():
        total.add(loss_sum, tokens)
    metrics = {"loss": total.mean}
    metrics.update({f"loss/{d}": s / n for d, (s, n) in sorted(losses.items()) if n})
    return metrics


@register_evaluator("synthetic")
class SyntheticEvaluator(Evaluator):
    """Masked loss on valid documents plus exact-match accuracy from greedy generation."""

    def check(self, eval_set: EvalSetConfig, ctx: EvalContext) -> None:
        needed = synthetic_vocab_needed(Path(eval_set.path))
        if needed > ctx.layout.meta_size:
            raise UserError(
                f"eval set '{eval_set.name}': {eval_set.path} needs {needed} meta-language "
                f"ids but the "
                f"model reserves {ctx.layout.meta_size} (model.num_meta_tokens); it was "
                f"not trained for this dataset"
            )
        from synthlm.synth import load_synthetic

        store = load_synthetic(eval_set.path).split(SPLIT)
        if len(store) == 0:
            raise UserError(
                f"eval set '{eval_set.name}': {eval_set.path} has an empty '{SPLIT}' split"
            )

    def run(self, eval_set: EvalSetConfig, ctx: EvalContext) -> dict[str, float]:
        from synthlm.synth import load_synthetic

        dataset = load_synthetic(eval_set.path)
        losses = domain_losses(ctx, dataset, eval_set.max_tokens, eval_set.name)
        preds = predict(ctx, dataset, eval_set.max_examples) if eval_set.max_examples > 0 else []
        if isinstance(ctx.details, Details):
            from synthlm.inference.synthetic_ids import SymbolTable

            table = SymbolTable.from_dataset(
                eval_set.path, meta_offset=ctx.layout.meta_offset, eos_id=ctx.eos_id
            )
            ctx.details.add(eval_set.name, table, losses, preds)
        return {**loss_metrics(losses), **accuracy_metrics(preds)}
