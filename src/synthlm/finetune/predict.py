"""Generate targets for pairs, score them, and write predictions.

Generation is greedy (or beam search with ``finetune.num_beams``), up to ``max_target_length``
new tokens, from the bare HF model (under any DDP wrapper), never producing an id the pairs
cannot use (:func:`vocab_end`: text pairs stop at the tokenizer's size, so the model's padded
rows are never decoded). Outputs are cut at the first EOS.
DEPTH-marked inputs (``finetune.depth_inputs``) are encoded once with their hierarchical
encoder mask and decoded from those encoder states.
Text pairs are decoded with the run's tokenizer (cleaned up as nanoT5 scores them with
``finetune.scored_text: cleaned_up``, :mod:`synthlm.finetune.decoded_text`) and scored by the
metrics of :mod:`synthlm.finetune.metrics`; synthetic pairs are shifted back to the dataset's
ids and judged by the domain's own verifier (``accuracy``: several answers may be right, e.g.
abduction).

``finetune.eval_protocol: teacher_forced`` scores :func:`teacher_forced` outputs instead, by the
DEPTH code's rule (:func:`depth_scoring`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthlm.data.mixture import ModelVocab
from synthlm.finetune.data import Pair, PairSet
from synthlm.finetune.decoded_text import scored_text
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
        chunk = pairs[start : start + settings.batch_size]
        rows = [p.input_ids for p in chunk]
        width = max(len(r) for r in rows)
        ids = torch.from_numpy(pad_rows(rows, width, settings.pad_id)).to(device)
        mask = torch.from_numpy(
            pad_rows([np.ones(len(r), dtype=np.int64) for r in rows], width, 0)
        ).to(device)
        inputs: dict[str, Any] = {"input_ids": ids}
        if chunk[0].input_types is not None:
            types = torch.from_numpy(pad_rows([p.input_types for p in chunk], width, 0))
            inputs = {"encoder_outputs": depth_encoder_states(model, ids, types.to(device), mask)}
        out = model.generate(
            **inputs,
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


def depth_encoder_states(model: Any, ids: Any, types: Any, mask: Any) -> Any:
    """The encoder's output for DEPTH-marked inputs, under their hierarchical mask (generation
    then reads it; its cross-attention uses the 2D ``attention_mask``: every non-pad token)."""
    from synthlm.finetune.depth_inputs import encoder_mask
    from synthlm.objectives.depth import to_model_mask

    return model.get_encoder()(
        input_ids=ids, attention_mask=to_model_mask(encoder_mask(types, mask), model)
    )


def teacher_forced(
    objective: Any,
    model: Any,
    pairs: list[Pair],
    device: Any,
    batch_size: int,
    end: int | None,
    total: Any,
) -> tuple[Any, list[list[int]]]:
    """(``total`` with every batch's loss added, outputs): each output is the argmax at every
    target position given the reference prefix (the DEPTH code's
    ``preprocess_logits_for_metrics``), over the ids below ``end`` (the model's padded
    vocabulary rows are never decodable). ``total`` is a :mod:`synthlm.evaluate.loss`
    accumulator."""
    import torch

    from synthlm.objectives.base import IGNORE_INDEX
    from synthlm.objectives.text_to_text import row_sums

    outputs: list[list[int]] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = {k: v.to(device) for k, v in objective.collate(chunk).items()}
        with torch.no_grad():
            logits = objective.logits(model, batch)
        rows, counts = row_sums(logits, batch["labels"])
        total.add(float(rows.double().sum()), int(counts.sum()), len(chunk))
        argmax = logits[..., :end].argmax(-1)
        for predicted, labels in zip(argmax.tolist(), batch["labels"].tolist()):
            outputs.append([p for p, y in zip(predicted, labels) if y != IGNORE_INDEX])
    return total, outputs


def depth_scoring(
    predictions: list[str],
    references: list[str],
    label_words: tuple[str, ...] | None,
    regression: bool = False,
) -> list[str]:
    """Predictions as the DEPTH code's ``compute_fine_tune_metrics`` counts them: a prediction
    that is no label word becomes a wrong label (a random other label there; any wrong label
    scores the same in every metric of the tables: accuracy counts it wrong, and the F1 and
    Matthews tasks have two classes); for a regression task each number is rounded to the 0.2
    grid, and a prediction that is no number becomes the score farthest from the reference
    (5.0 below 2.5, else 0.0). Free text (no label words) is scored as decoded
    (``compute_fine_tune_metrics_ni``)."""
    if regression:
        return [_depth_score(p, r) for p, r in zip(predictions, references)]
    if label_words is None:
        return list(predictions)
    return [
        p if p in label_words else next(w for w in label_words if w != r)
        for p, r in zip(predictions, references)
    ]


def _depth_score(prediction: str, reference: str) -> str:
    try:
        return str(round(float(prediction) / 0.2) * 0.2)
    except ValueError:
        return "5.0" if float(reference) < 2.5 else "0.0"


def cut_at_eos(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row


def predicted_texts(
    tokenizer: Tokenizer, outputs: list[list[int]], *, clean_up: bool = False
) -> list[str]:
    """Generated ids as metrics read them (:func:`~synthlm.finetune.decoded_text.scored_text`)."""
    return [scored_text(tokenizer, row, clean_up=clean_up) for row in outputs]


def scored_texts(
    pairs: PairSet, outputs: list[list[int]], tokenizer: Tokenizer
) -> tuple[list[str], list[str | None]]:
    """(predictions, references) as ``finetune.scored_text`` has them compared: ``decoded``
    keeps each reference as written; ``cleaned_up`` decodes both sides from their ids and
    cleans them up, as nanoT5's ``predict`` does (a pair without a target keeps None)."""
    clean_up = pairs.scored_text == "cleaned_up"
    predictions = predicted_texts(tokenizer, outputs, clean_up=clean_up)
    if not clean_up:
        return predictions, [p.target_text for p in pairs.pairs]
    references = [
        None if p.target_ids is None else scored_text(tokenizer, p.target_ids, clean_up=True)
        for p in pairs.pairs
    ]
    return predictions, references


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
    pairs: PairSet,
    outputs: list[list[int]],
    tokenizer: Tokenizer,
    layout: ModelVocab,
    *,
    protocol: str = "generate",
) -> dict[str, float]:
    """Metrics of ``outputs`` (one per pair of ``pairs.pairs``; every pair has a reference);
    ``protocol`` teacher_forced counts them by the DEPTH code's rule (:func:`depth_scoring`)."""
    if pairs.kind == "synthetic":
        return (
            {"accuracy": float(np.mean(synthetic_correct(pairs, outputs, layout)))}
            if outputs
            else {}
        )
    predictions, targets = scored_texts(pairs, outputs, tokenizer)
    references = [t or "" for t in targets]
    if protocol == "teacher_forced":
        predictions = depth_scoring(predictions, references, pairs.label_words, pairs.regression)
        if pairs.regression:
            references = [_depth_score(r, r) for r in references]
    reference_sets = [
        list(p.references) if p.references else [r] for p, r in zip(pairs.pairs, references)
    ]

    def metrics_of(rows: Sequence[int]) -> dict[str, float]:
        return compute_metrics(
            pairs.metrics,
            [predictions[i] for i in rows],
            [references[i] for i in rows],
            pairs.label_words,
            [reference_sets[i] for i in rows],
        )

    results = metrics_of(range(len(predictions)))
    for kind in pairs.breakdown:
        for group, rows in group_rows(pairs.pairs, kind).items():
            results.update({f"{k}/{kind}/{group}": v for k, v in metrics_of(rows).items()})
    return results


def group_rows(pairs: Sequence[Pair], kind: str) -> dict[str, list[int]]:
    """The rows of each group of ``kind`` (``finetune.natural_instructions.breakdown``), groups
    in order of first appearance, as Tk-Instruct's ``compute_grouped_metrics`` collects them."""
    rows: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        group = (pair.groups or {}).get(kind)
        if group is None:
            raise ValueError(f"pair {pair.index} has no {kind} to be scored by")
        rows.setdefault(group, []).append(i)
    return rows


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
    for pair, text, target in zip(pairs.pairs, *scored_texts(pairs, outputs, tokenizer)):
        record: dict[str, Any] = {
            "index": pair.index,
            "input": pair.input_text,
            "prediction": text,
            "target": target,
        }
        if pairs.label_words is not None:
            record["label"] = pairs.label_words.index(text) if text in pairs.label_words else None
        if pair.references:  # all of an instance's outputs, as the SNI evaluation reads them
            record["references"] = list(pair.references)
        if pair.groups:  # its task and category, to score per group from the file alone
            record.update(pair.groups)
        records.append(record)
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    from synthlm.fileio import atomic_write_text

    return atomic_write_text(
        path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    )
