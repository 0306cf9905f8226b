"""Loss and exact-match accuracy on a synthetic dataset's ``valid`` split.

Synthetic ids live in their own space ``0..V_syn-1``; the model sees them shifted into the
meta-language range (``layout.meta_offset + id``), exactly as the training mixture feeds them.

* Loss: each valid document on its own (shifted, EOS appended as in training), targets where
  the document's loss mask is 1 (the EOS counts as a target, as in training). Documents are
  evaluated one per row rather than packed, so no document sees another's tokens: the number
  measures the task, not the packing. Documents are taken in order up to ``max_tokens``.
* Accuracy: for the first ``max_examples`` examples, greedy-decode ``len(answer) + 1`` tokens
  from the prompt (the extra token lets the model say EOS), cut at EOS, shift back to synthetic
  ids (anything outside the meta range becomes -1, which no answer contains) and let the
  domain's ``score`` judge it. Reported overall, per domain and per answer-length bucket
  (``acc_by_answer_len/5-8``): whether a model fails on long answers only is the first
  question when accuracy stalls. The loss is reported overall and per domain too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from synthlm.data.mixture import EvalSetConfig, VocabLayout, synthetic_vocab_needed
from synthlm.errors import UserError
from synthlm.evaluate.loss import batched, sequences_loss
from synthlm.evaluate.registry import EvalContext, Evaluator, register_evaluator

SPLIT = "valid"


def document_rows(store, *, layout: VocabLayout, eos_id: int, seq_len: int, max_tokens: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(shifted tokens + EOS, loss mask) per document, cut to ``seq_len``, ``max_tokens`` in total."""
    left = max_tokens
    for i in range(len(store)):
        if left <= 0:
            return
        doc = np.asarray(store.document(i), dtype=np.int64) + layout.meta_offset
        mask = store.mask(i)
        mask = np.ones(len(doc), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        tokens = np.concatenate([doc, [eos_id]])[:seq_len]
        targets = np.concatenate([mask, [True]])[:seq_len]
        left -= len(tokens)
        yield tokens, targets


def to_synthetic(generated: list[int], *, layout: VocabLayout, eos_id: int, keep: int) -> np.ndarray:
    """The first ``keep`` generated ids, cut at EOS, shifted back; non-meta ids become -1."""
    row = generated[:keep]
    if eos_id in row:
        row = row[: row.index(eos_id)]
    ids = np.asarray(row, dtype=np.int64) - layout.meta_offset
    ids[(ids < 0) | (ids >= layout.meta_size)] = -1
    return ids


def greedy_answers(ctx: EvalContext, prompts: list[np.ndarray], lengths: list[int]) -> list[list[int]]:
    """Greedy continuations (model ids) of shifted prompts, ``lengths[i]`` new tokens at least."""
    from synthlm.inference.sampling import left_pad

    ids, mask = left_pad([(p + ctx.layout.meta_offset).tolist() for p in prompts], ctx.pad_id)
    out = ctx.generator.generate(
        input_ids=ids.to(ctx.device), attention_mask=mask.to(ctx.device), do_sample=False,
        max_new_tokens=max(lengths), eos_token_id=ctx.eos_id, pad_token_id=ctx.pad_id,
    )
    return out[:, ids.shape[1] :].tolist()


def accuracy(ctx: EvalContext, dataset, max_examples: int, name: str = "") -> dict[str, float]:
    """Mean score overall (``acc``) and per domain (``acc/<domain>``); with ``ctx.predictions``
    every example is also written to ``PREDICTIONS/<name>.jsonl``."""
    from synthlm.synth import score

    scores: dict[str, list[float]] = defaultdict(list)
    by_length: dict[str, list[float]] = defaultdict(list)
    dumped: list[dict] = []
    examples = list(dataset.examples(SPLIT, max_examples))
    for start in ctx.bar(range(0, len(examples), ctx.batch_size), "exact match"):
        batch = examples[start : start + ctx.batch_size]
        lengths = [len(e.answer) + 1 for e in batch]
        generated = greedy_answers(ctx, [np.asarray(e.prompt, dtype=np.int64) for e in batch], lengths)
        for example, row, keep in zip(batch, generated, lengths):
            predicted = to_synthetic(row, layout=ctx.layout, eos_id=ctx.eos_id, keep=keep)
            value = float(score(example.domain, example.prompt, predicted, dataset=dataset))
            scores[example.domain].append(value)
            dumped.append(prediction_record(example, predicted, value))
            by_length[length_bucket(len(example.answer))].append(value)
    if ctx.predictions is not None:
        write_predictions(Path(ctx.predictions) / f"{name or 'synthetic'}.jsonl", dumped)
    if not examples:
        return {}
    everything = [s for values in scores.values() for s in values]
    metrics = {"acc": float(np.mean(everything))}
    metrics.update({f"acc/{domain}": float(np.mean(values)) for domain, values in sorted(scores.items())})
    metrics.update({f"acc_by_answer_len/{k}": float(np.mean(v)) for k, v in sorted(by_length.items(), key=lambda kv: int(kv[0].split("-")[0]))})
    return metrics


def domain_losses(ctx: EvalContext, rows: list, owners: np.ndarray, names: list[str], label: str) -> dict[str, float]:
    """Loss over all rows (``loss``) and per domain (``loss/<domain>``), token-weighted.

    Rows come in document order, so row ``k`` belongs to document ``k``'s domain.
    """
    from synthlm.evaluate.loss import LossTotal

    total, metrics = LossTotal(), {}
    for d, name in enumerate(names):
        mine = [row for k, row in enumerate(rows) if owners[k] == d]
        if not mine:
            continue
        part = sequences_loss(ctx.model, ctx.bar(batched(mine, ctx.batch_size), f"eval {label} loss {name}"), pad_id=ctx.pad_id, device=ctx.device)
        total.add(part.loss_sum, part.tokens)
        metrics[f"loss/{name}"] = part.mean
    return {"loss": total.mean, **metrics}


def prediction_record(example, predicted: np.ndarray, value: float) -> dict:
    """One example as the dataset sees it: synthetic ids (shifted back), -1 for non-meta ids."""
    return {
        "domain": example.domain, "prompt": np.asarray(example.prompt).tolist(),
        "answer": np.asarray(example.answer).tolist(), "predicted": predicted.tolist(), "score": value,
    }


def write_predictions(path: Path, records: list[dict]) -> None:
    import json

    from synthlm.fileio import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def length_bucket(n: int) -> str:
    """Answer lengths grouped by powers of two: 1, 2, 3-4, 5-8, 9-16, ..."""
    if n <= 2:
        return str(n)
    high = 1 << (n - 1).bit_length()
    return f"{high // 2 + 1}-{high}"


@register_evaluator("synthetic")
class SyntheticEvaluator(Evaluator):
    """Masked loss on valid documents plus exact-match accuracy from greedy generation."""

    def check(self, eval_set: EvalSetConfig, ctx: EvalContext) -> None:
        needed = synthetic_vocab_needed(Path(eval_set.path))
        if needed > ctx.layout.meta_size:
            raise UserError(
                f"eval set '{eval_set.name}': {eval_set.path} needs {needed} meta-language ids but the "
                f"model reserves {ctx.layout.meta_size} (model.num_meta_tokens); it was not trained for this dataset"
            )
        from synthlm.synth import load_synthetic

        store = load_synthetic(eval_set.path).split(SPLIT)
        if len(store) == 0:
            raise UserError(f"eval set '{eval_set.name}': {eval_set.path} has an empty '{SPLIT}' split")

    def run(self, eval_set: EvalSetConfig, ctx: EvalContext) -> dict[str, float]:
        from synthlm.synth import load_synthetic

        dataset = load_synthetic(eval_set.path)
        rows = document_rows(dataset.split(SPLIT), layout=ctx.layout, eos_id=ctx.eos_id, seq_len=ctx.seq_len, max_tokens=eval_set.max_tokens)
        metrics = domain_losses(ctx, list(rows), np.asarray(dataset.domain_of(SPLIT)), dataset.domain_names(), eval_set.name)
        if eval_set.max_examples > 0:
            metrics.update(accuracy(ctx, dataset, eval_set.max_examples, eval_set.name))
        return metrics
