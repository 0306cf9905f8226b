"""Generate targets for pairs, score them, and write predictions.

Generation is greedy (or beam search with ``finetune.num_beams``), up to ``max_target_length``
new tokens, from the bare HF model (under any DDP wrapper), never producing an id the pairs
cannot use (:func:`vocab_end`: text pairs stop at the tokenizer's size, so the model's padded
rows are never decoded). Outputs are cut at the first EOS.
Text pairs are decoded with the run's tokenizer and scored by the metrics of
:mod:`synthlm.finetune.metrics`; synthetic pairs are shifted back to the dataset's ids and judged
by the domain's own verifier (``accuracy``: several answers may be right, e.g. abduction).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthlm.data.mixture import ModelVocab
from synthlm.finetune.data import Pair, PairSet
from synthlm.finetune.metrics import compute_metrics

if TYPE_CHECKING:
    from synthlm.protocols import Tokenizer


@dataclass(frozen=True)
class GenerationSettings:
    """How :func:`generate` decodes; ``vocab_end``: ids at or past it are never generated."""

    batch_size: int
    max_new_tokens: int
    num_beams: int
    eos_id: int
    pad_id: int
    vocab_end: int | None


def vocab_end(kind: str, layout: ModelVocab) -> int:
    """The first id generation must not produce for pairs of ``kind``.

    Text pairs are decoded by the tokenizer, which has only the natural ids: the model's
    meta-language and padding rows (its vocabulary is rounded up) would make it fail. Synthetic
    answers are meta ids, so only the padding rows past the meta range are cut.
    """
    if kind == "synthetic":
        return layout.meta_offset + layout.meta_size
    return layout.natural_size


def suppressed_ids(model: Any, end: int | None) -> list[int] | None:
    """``model.generate``'s ``suppress_tokens``: the output rows from ``end`` on, or None.

    Rows come from the config, as :func:`synthlm.train.checkpoint.reserved_ids_suppressed`
    does for saved checkpoints (the weight may be a shard under FSDP / ZeRO-3). None when there
    is nothing to suppress: passed explicitly, it still overrides a checkpoint's
    generation_config, which suppresses the meta ids synthetic answers need.
    """
    rows = model.config.get_text_config().vocab_size
    return list(range(end, rows)) if end is not None and end < rows else None


def generate(
    model: Any,
    pairs: list[Pair],
    settings: GenerationSettings,
    device: Any,
    *,
    progress: bool = False,
) -> list[list[int]]:
    """Generated target ids (without the decoder start, cut before EOS) for every pair."""
    import torch
    from tqdm.auto import tqdm

    from synthlm.objectives.text_to_text import pad_rows

    outputs: list[list[int]] = []
    suppress = suppressed_ids(model, settings.vocab_end)
    starts = range(0, len(pairs), settings.batch_size)
    for start in tqdm(starts, desc="generate", unit="batch", disable=not progress, leave=False):
        rows = [p.input_ids for p in pairs[start : start + settings.batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.from_numpy(pad_rows(rows, width, settings.pad_id)).to(device)
        mask = torch.from_numpy(
            pad_rows([np.ones(len(r), dtype=np.int64) for r in rows], width, 0)
        ).to(device)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=settings.max_new_tokens,
            num_beams=settings.num_beams,
            do_sample=False,
            decoder_start_token_id=settings.pad_id,
            eos_token_id=settings.eos_id,
            pad_token_id=settings.pad_id,
            suppress_tokens=suppress,
        )
        outputs.extend(cut_at_eos(row[1:], settings.eos_id) for row in out.tolist())
    return outputs


def cut_at_eos(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row


def predicted_texts(tokenizer: Tokenizer, outputs: list[list[int]]) -> list[str]:
    return [tokenizer.decode(row, skip_special=True).strip() for row in outputs]


def synthetic_answer(row: list[int], layout: ModelVocab) -> np.ndarray:
    """Model ids back to the dataset's ids; ids outside the meta range become -1 (never right)."""
    ids = np.asarray(row, dtype=np.int64) - layout.meta_offset
    ids[(ids < 0) | (ids >= layout.meta_size)] = -1
    return ids


def synthetic_correct(pairs: PairSet, outputs: list[list[int]], layout: ModelVocab) -> list[bool]:
    return [
        bool(pairs.dataset.score(p.domain, p.prompt, synthetic_answer(row, layout)))
        for p, row in zip(pairs.pairs, outputs)
    ]


def score(
    pairs: PairSet, outputs: list[list[int]], tokenizer: Tokenizer, layout: ModelVocab
) -> dict[str, float]:
    """Metrics of ``outputs`` (one per pair of ``pairs.pairs``; every pair has a reference)."""
    if pairs.kind == "synthetic":
        return (
            {"accuracy": float(np.mean(synthetic_correct(pairs, outputs, layout)))}
            if outputs
            else {}
        )
    references = [p.target_text or "" for p in pairs.pairs]
    return compute_metrics(
        pairs.metrics, predicted_texts(tokenizer, outputs), references, pairs.label_words
    )


def prediction_records(
    pairs: PairSet, outputs: list[list[int]], tokenizer: Tokenizer, layout: ModelVocab
) -> list[dict[str, Any]]:
    """One JSON record per pair: input, prediction, and the reference when there is one."""
    if pairs.kind == "synthetic":
        correct = synthetic_correct(pairs, outputs, layout)
        return [
            {
                "index": p.index,
                "domain": p.domain,
                "input": p.prompt.tolist(),
                "prediction": synthetic_answer(row, layout).tolist(),
                "target": (p.target_ids[:-1] - layout.meta_offset).tolist(),
                "correct": ok,
            }
            for p, row, ok in zip(pairs.pairs, outputs, correct)
        ]
    records = []
    for pair, text in zip(pairs.pairs, predicted_texts(tokenizer, outputs)):
        record: dict[str, Any] = {
            "index": pair.index,
            "input": pair.input_text,
            "prediction": text,
            "target": pair.target_text,
        }
        if pairs.label_words is not None:
            record["label"] = pairs.label_words.index(text) if text in pairs.label_words else None
        records.append(record)
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    from synthlm.fileio import atomic_write_text

    return atomic_write_text(
        path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    )
