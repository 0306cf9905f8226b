"""Looking inside a synthetic eval: per-domain loss and accuracy, accuracy by answer length, and
the predictions themselves, decoded with the dataset's layout.

The flat metrics (``acc``, ``acc/<domain>``, ``loss/<domain>``) are what training logs every
``eval_every`` steps; the tables and predictions here are what ``synthlm eval`` adds to its
results file (key ``synthetic``) and its predictions JSONL, and what ``synthlm report`` shows.

Answer lengths are bucketed by powers of two (``1``, ``2``, ``3-4``, ``5-8``, ...): task lengths
are usually drawn from a range, and a doubling scale keeps the table short while still showing
where accuracy falls off as answers get longer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALL = "all"  # the row of every domain together


@dataclass
class Prediction:
    """One generated answer, in local synthetic ids (the model's own ids kept alongside)."""

    domain: str
    index: int  # document index in the split
    prompt: list[int]
    answer: list[int]
    predicted: list[int]  # -1 where the model wrote an id outside the dataset's range
    model_ids: list[int]  # the generated ids as the model wrote them, cut after EOS
    score: float

    def record(self, table, eval_set: str) -> dict[str, Any]:
        """A JSONL line: symbols for reading, ids for computing."""
        return {
            "eval_set": eval_set,
            "domain": self.domain,
            "index": self.index,
            "prompt": table.decode(self.prompt),
            "answer": table.decode(self.answer),
            "predicted": table.decode_model(self.model_ids),
            "correct": self.score == 1.0,
            "score": self.score,
            "prompt_ids": self.prompt,
            "answer_ids": self.answer,
            "predicted_ids": self.predicted,
            "predicted_model_ids": self.model_ids,
        }


@dataclass
class Details:
    """Sink handed to the evaluators by ``synthlm eval``: tables and predictions per eval set."""

    max_predictions: int = 100  # predictions kept per eval set (0: none)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, tuple[Any, list[Prediction]]] = field(default_factory=dict)

    def add(self, name: str, table, losses: dict[str, tuple[float, int]], preds: list) -> None:
        """Record eval set ``name``: per-domain (loss sum, tokens) and its predictions."""
        self.tables[name] = {
            "domains": domain_rows(losses, preds),
            "by_length": length_rows(preds),
        }
        if self.max_predictions > 0 and preds:
            self.predictions[name] = (table, preds[: self.max_predictions])

    def records(self) -> Iterable[dict[str, Any]]:
        for name, (table, preds) in self.predictions.items():
            for p in preds:
                yield p.record(table, name)


def length_bucket(length: int) -> tuple[int, int]:
    """(lo, hi) of the power-of-two bucket holding ``length``: 0, 1, 2, 3-4, 5-8, 9-16, ..."""
    if length <= 2:
        return length, length
    hi = 1 << (length - 1).bit_length()
    return hi // 2 + 1, hi


def bucket_label(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _accuracy(scores: list[float]) -> dict[str, Any]:
    return {
        "examples": len(scores),
        "correct": int(sum(s == 1.0 for s in scores)),
        "acc": sum(scores) / len(scores) if scores else None,
    }


def domain_rows(losses: dict[str, tuple[float, int]], preds: list[Prediction]) -> list[dict]:
    """One row per domain (then ``all``): loss over its targets and accuracy of its answers."""
    scores: dict[str, list[float]] = defaultdict(list)
    for p in preds:
        scores[p.domain].append(p.score)
    rows = []
    names = list(dict.fromkeys([*losses, *scores]))
    total = [sum(losses[n][0] for n in losses), sum(losses[n][1] for n in losses)]
    for name, (loss_sum, tokens) in [*((n, losses.get(n, (0.0, 0))) for n in names), (ALL, total)]:
        graded = [s for values in scores.values() for s in values] if name == ALL else scores[name]
        rows.append(
            {
                "domain": name,
                "loss": loss_sum / tokens if tokens else None,
                "loss_tokens": tokens,
                **_accuracy(graded),
            }
        )
    return rows


def length_rows(preds: list[Prediction]) -> list[dict]:
    """Accuracy per (domain, answer-length bucket), then per bucket over every domain."""
    groups: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    for p in preds:
        lo, hi = length_bucket(len(p.answer))
        groups[(p.domain, lo, hi)].append(p.score)
        groups[(ALL, lo, hi)].append(p.score)
    order = list(dict.fromkeys([*(p.domain for p in preds), ALL]))
    keys = sorted(groups, key=lambda k: (order.index(k[0]), k[1]))
    return [
        {
            "domain": d,
            "length": bucket_label(lo, hi),
            "lo": lo,
            "hi": hi,
            **_accuracy(groups[(d, lo, hi)]),
        }
        for d, lo, hi in keys
    ]


def write_predictions(records: Iterable[dict[str, Any]], path) -> int:
    """One JSON object per line, written atomically (the file appears only when complete)."""
    import json

    from synthlm.fileio import atomic_path

    count = 0
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
