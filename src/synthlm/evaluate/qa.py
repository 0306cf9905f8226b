"""Closed-book multiple-choice QA (QuALITY format), the evaluation of Synthetic Continued Pretraining.

The article is never shown: the question tests what continued pretraining put into the weights.
Two scorers, because they answer different questions:

* ``loglik``: the option with the highest log-likelihood after the question wins. Works for
  any base model, even a tiny one; reported raw (``acc``) and per-character normalised
  (``acc_norm``, which removes the bias toward short options).
* ``cot``: few-shot chain-of-thought generation under a protocol (:mod:`.qa_protocols`:
  ``synthlm``, the paper's ``entigraph``, or a user template), then the answer is parsed.
  Models may decline or ramble, so we report accuracy over attempted questions (None, i.e.
  undefined, when none was attempted), the attempt rate and accuracy over all questions
  (unattempted count as wrong).

Results split by QuALITY's ``difficult`` flag when the file has it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthlm.errors import UserError

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer

LETTERS = "ABCDEFGHIJ"
SCORERS = ("loglik", "cot", "both")

# Exemplars written for this module: generic reading-comprehension style, not from QuALITY.
FEW_SHOT = [
    {
        "title": "The Lighthouse Keeper",
        "question": "Why does the keeper refuse to leave the island?",
        "options": [
            "He is afraid of the sea",
            "He promised his father to keep the light",
            "He has no money",
            "The boat is broken",
        ],
        "reasoning": "The story says the keeper stays because of the promise he made to "
        "his dying father about the light.",
        "answer": 1,
    },
    {
        "title": "A Winter Market",
        "question": "What does the narrator buy at the end?",
        "options": ["A coat", "Apples", "A lantern", "Nothing"],
        "reasoning": "After walking past every stall, the narrator spends the last coin "
        "on a lantern for the walk home.",
        "answer": 2,
    },
]


@dataclass(frozen=True)
class QAItem:
    title: str
    question: str
    options: tuple[str, ...]
    answer: int
    difficult: bool | None
    author: str = ""
    year: str = ""


def read_qa(path: str | Path | Sequence[str | Path]) -> list[QAItem]:
    """Questions with gold answers from QuALITY json/jsonl files (articles with questions).

    Several files are read as one set (the paper scores QuALITY train + dev together).
    """
    from synthlm.entigraph.documents import read_documents

    documents = read_documents(path, fmt="quality", flag="--qa", what="QA")
    items = [
        QAItem(doc.title, q.question, tuple(q.options), q.answer, q.difficult, doc.author, doc.year)
        for doc in documents
        for q in doc.questions
        if q.answer is not None
    ]
    if not items:
        raise UserError(f"--qa {_names(path)}: no questions with a gold_label to evaluate")
    for item in items:
        if len(item.options) > len(LETTERS):
            raise UserError(
                f"--qa {_names(path)}: question {item.question[:40]!r} has "
                f"{len(item.options)} options (at most {len(LETTERS)})"
            )
    return items


def _names(path: str | Path | Sequence[str | Path]) -> str:
    """The file or files as typed, not a Python list's repr."""
    return str(path) if isinstance(path, (str, Path)) else ", ".join(map(str, path))


# ---------------------------------------------------------------------------------------------
# Log-likelihood scoring


def question_prompt(item: QAItem) -> str:
    about = f' about "{item.title}"' if item.title else ""
    return f"Question{about}: {item.question}\nAnswer:"


def option_logliks(
    model: Any, tokenizer: HFTokenizer, prompt: str, options: Sequence[str], device: Any
) -> list[float]:
    """Sum of log p(option tokens | prompt) for each option, in one padded batch."""
    import torch

    # BOS as the model's tokenizer adds it. An option's tokens are those of prompt + " " +
    # option past the prompt's, as lm-evaluation-harness cuts them (_encode_pair): encoded on
    # its own, " B" gives SentencePiece an extra "▁" piece that the joined text never has.
    context = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    rows = [
        context
        + tokenizer(f"{prompt} {option}", add_special_tokens=True)["input_ids"][len(context) :]
        for option in options
    ]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
    with torch.no_grad():
        logprobs = (
            model(input_ids=ids.to(device), attention_mask=attention.to(device), use_cache=False)
            .logits.float()
            .log_softmax(-1)
            .cpu()
        )
    scores = []
    for i, row in enumerate(rows):
        positions = torch.arange(len(context), len(row))
        scores.append(float(logprobs[i, positions - 1, torch.tensor(row[len(context) :])].sum()))
    return scores


def score_loglik(
    model: Any, tokenizer: HFTokenizer, items: Sequence[QAItem], device: Any
) -> list[dict[str, Any]]:
    predictions = []
    for item in items:
        scores = option_logliks(model, tokenizer, question_prompt(item), item.options, device)
        # per character of the option alone, not of the " " joining it to the question (which
        # is scored): lm-evaluation-harness's acc_norm divides by len(choice) the same way
        normed = [s / max(1, len(o)) for s, o in zip(scores, item.options)]
        predictions.append(
            {
                "pred": max(range(len(scores)), key=scores.__getitem__),
                "pred_norm": max(range(len(normed)), key=normed.__getitem__),
                "scores": scores,
            }
        )
    return predictions


# ---------------------------------------------------------------------------------------------
# Chain-of-thought scoring


def format_question(title: str, question: str, options: Sequence[str]) -> str:
    lines = [f'Story: "{title}"' if title else "Story: (unnamed)", f"Question: {question}"]
    lines += [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join(lines)


def cot_prompt(item: QAItem, shots: int = 2) -> str:
    parts = [
        "Answer each question about a story from memory. Think step by step, then give "
        "the final answer as 'Answer: <letter>'.\n"
    ]
    for shot in FEW_SHOT[:shots]:
        parts.append(
            f"{format_question(shot['title'], shot['question'], shot['options'])}\nReasoning: "
            f"{shot['reasoning']}\nAnswer: {LETTERS[shot['answer']]}\n"
        )
    parts.append(f"{format_question(item.title, item.question, item.options)}\nReasoning:")
    return "\n".join(parts)


_ANSWER_RE = re.compile(r"answer\s*(?:is)?\s*[:\-]?\s*", re.IGNORECASE)


def parse_choice(text: str, num_options: int = 4) -> int | None:
    """The option chosen by the last ``Answer: X`` in ``text``; None when missing or ambiguous."""
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].split("\n", 1)[0][:40]
    letters = set(re.findall(rf"\b([{LETTERS[:num_options]}])\b", rest))
    return LETTERS.index(letters.pop()) if len(letters) == 1 else None


# ---------------------------------------------------------------------------------------------
# Metrics


def _subsets(
    items: Sequence[QAItem], extra: dict[str, list[int]] | None = None, keep_empty: bool = False
) -> dict[str, list[int]]:
    """Index lists: all, ``extra`` (the paper's val / test), difficult / easy, and each extra
    subset split by difficulty (``test/difficult``: the paper's "test hard" accuracy). Empty
    ones are dropped unless ``keep_empty``."""
    subsets = {"all": list(range(len(items))), **(extra or {})}
    if any(item.difficult is not None for item in items):
        groups = [("", subsets["all"]), *((f"{n}/", i) for n, i in (extra or {}).items())]
        for prefix, idx in groups:
            subsets[f"{prefix}difficult"] = [i for i in idx if items[i].difficult]
            subsets[f"{prefix}easy"] = [i for i in idx if items[i].difficult is False]
    return {name: idx for name, idx in subsets.items() if idx or keep_empty}


def loglik_metrics(
    items: Sequence[QAItem], predictions: Sequence[dict[str, Any]]
) -> dict[str, float | None]:
    """Accuracy of the likeliest option (``acc``) and of the likeliest per character (``acc_norm``);
    a subset with no questions (no hard ones in the file) reports None, as :func:`cot_metrics`
    does, so both scorers' results have the same keys."""
    metrics: dict[str, float | None] = {}
    for name, idx in _subsets(items, keep_empty=True).items():
        suffix = "" if name == "all" else f"/{name}"
        for key, field in (("acc", "pred"), ("acc_norm", "pred_norm")):
            right = sum(predictions[i][field] == items[i].answer for i in idx)
            metrics[f"{key}{suffix}"] = right / len(idx) if idx else None
    metrics["n"] = len(items)
    return metrics


def cot_metrics(
    items: Sequence[QAItem],
    predictions: Sequence[dict[str, Any]],
    extra: dict[str, list[int]] | None = None,
) -> dict[str, float | None]:
    """Accuracy over attempted questions is undefined (None, the paper's NaN) when none was
    attempted; a subset with no questions reports all three as None, as the original's
    ``performance_stats`` reports val / test and their hard / non-hard parts NaN when empty."""
    metrics: dict[str, float | None] = {}
    for name, idx in _subsets(items, extra, keep_empty=True).items():
        suffix = "" if name == "all" else f"/{name}"
        attempted = [i for i in idx if predictions[i]["pred"] is not None]
        correct = sum(predictions[i]["pred"] == items[i].answer for i in attempted)
        metrics[f"accuracy_attempted{suffix}"] = correct / len(attempted) if attempted else None
        metrics[f"attempt_rate{suffix}"] = len(attempted) / len(idx) if idx else None
        metrics[f"accuracy_all{suffix}"] = correct / len(idx) if idx else None
    metrics["n"] = len(items)
    return metrics


def evaluate_qa(
    checkpoint: str | Path,
    qa_file: str | Path | Sequence[str | Path],
    *,
    scorer: str = "loglik",
    limit: int | None = None,
    shots: int | None = None,
    max_new_tokens: int | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    protocol: str | None = None,
    prompt_file: str | Path | None = None,
    temperature: float | None = None,
    stop: Sequence[str] = (),
    seed: int = 0,
    tokenizer: str | Path | None = None,
    predictions: str | Path | None = None,
) -> tuple[dict[str, Any], Path]:
    """Score a checkpoint on a QuALITY file; write ``{"qa": {...}}`` JSON and predictions
    (``predictions``, default: beside the results as ``.predictions.json``).

    ``protocol`` (see :mod:`synthlm.evaluate.qa_protocols`) governs the generative scorer:
    ``entigraph`` is the paper's, ``synthlm`` ours; ``prompt_file`` is a template of the user's.
    """
    from synthlm.evaluate.checkpoint import load_checkpoint, refuse_encoder_decoder
    from synthlm.evaluate.qa_protocols import (
        build_protocol,
        check_items,
        score_generate,
        title_split,
    )
    from synthlm.fileio import atomic_write_json

    if scorer not in SCORERS:
        raise UserError(f"--qa-scorer {scorer!r}: choose one of {', '.join(SCORERS)}")
    protocol = build_protocol(
        protocol or "synthlm",
        prompt_file=None if prompt_file is None else Path(prompt_file),
        shots=shots,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        stop=stop,
    )
    files = [qa_file] if isinstance(qa_file, (str, Path)) else list(qa_file)
    items = read_qa(files)[:limit]
    check_items(protocol, items, ", ".join(str(f) for f in files))
    refuse_encoder_decoder(
        checkpoint, "synthlm eval --qa", "options are scored as continuations of the question"
    )
    ckpt = load_checkpoint(checkpoint, device=device, dtype=dtype, tokenizer=tokenizer, quiet=True)
    torch_device = next(ckpt.model.parameters()).device
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if scorer in ("loglik", "both"):
        details["loglik"] = score_loglik(ckpt.model, ckpt.tokenizer, items, torch_device)
        results["loglik"] = loglik_metrics(items, details["loglik"])
    if scorer in ("cot", "both"):
        details["cot"] = score_generate(
            ckpt.model, ckpt.tokenizer, items, torch_device, protocol, seed=seed
        )
        split = title_split(items) if protocol.split_by_title else None
        results["cot"] = {"protocol": protocol.name, **cot_metrics(items, details["cot"], split)}
    path = Path(out) if out else default_output(checkpoint)
    atomic_write_json(path, {"qa": results})
    records = [
        {"question": it.question, "answer": it.answer, **{k: v[i] for k, v in details.items()}}
        for i, it in enumerate(items)
    ]
    target = Path(predictions) if predictions else path.with_name(path.stem + ".predictions.json")
    atomic_write_json(target, records)
    return {
        "qa": results,
        "checkpoint": str(checkpoint),
        "file": ", ".join(str(f) for f in files),
        "predictions": str(target),
    }, path


def default_output(checkpoint: str | Path) -> Path:
    """RUN/eval/qa.json."""
    from synthlm.evaluate.checkpoint import run_dir_of

    return run_dir_of(checkpoint) / "eval" / "qa.json"


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)
