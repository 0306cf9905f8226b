"""Evaluation of encoder-decoder runs: objective losses (mode pt) or generated pairs (mode ft).

* mode pt: each natural eval store is read as the perplexity evaluator reads it (documents in
  order, EOS-joined, ``max_tokens`` raw tokens cut into the objective's raw windows), corrupted
  by the run's objective (masks are keyed by content, so every evaluation sees the same
  examples), and scored teacher-forced: ``loss`` (the objective's weighted token mean) plus
  each token group's ``<group>_loss`` / ``<group>_accuracy`` (DEPTH: reconstruction, sentence).
* mode ft: ``finetune.valid`` gives ``loss`` (teacher-forced, averaged as the run averaged its
  training loss: per token, or per batch with ``loss_average: micro_batch``) and the metrics of the generated
  outputs (:mod:`synthlm.finetune.predict`), on the first ``max_eval_examples`` labelled pairs;
  with ``finetune.eval_protocol: teacher_forced`` the metrics of the teacher-forced argmax
  instead (the DEPTH code's protocol), from the same forward pass as the loss.

Metrics are named ``eval/<set>/<metric>`` like every synthlm evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.data.mixture import EvalSetConfig, Sample
from synthlm.data.store import TokenStore


def evaluate_seq2seq(
    plan: Any, model: Any, device: Any, *, step: int, progress: bool = False
) -> dict[str, float]:
    """Every eval set's metrics at the evaluation of ``step`` (which keys its draws with
    ``train.eval_draws: per_evaluation``)."""
    from synthlm.evaluate import eval_mode

    batch_size = plan.config.train.eval_batch
    results: dict[str, float] = {}
    with eval_mode(model, device, plan.config.seed):
        if plan.finetune is not None:
            pairs = drawn_pairs(plan, plan.finetune.valid, step)
            results.update(
                evaluate_pairs(plan, pairs, model, device, batch_size, progress=progress)
            )
        else:
            objective = drawn_objective(plan, step)
            for eval_set in plan.config.data.eval:
                metrics = objective_metrics(plan, objective, model, eval_set, device, batch_size)
                results.update({f"eval/{eval_set.name}/{k}": v for k, v in metrics.items()})
    return results


def drawn_objective(plan: Any, step: int) -> Any:
    """The run's objective, its masks keyed anew for this evaluation if the run says so."""
    if plan.config.train.eval_draws != "per_evaluation":
        return plan.objective
    from synthlm.objectives.t5_noise import evaluation_seed

    return plan.objective.reseeded(evaluation_seed(plan.config.seed, step))


def drawn_pairs(plan: Any, pairs: Any, step: int) -> Any:
    """The pairs with this evaluation's draws, if the run draws at every evaluation."""
    if plan.config.train.eval_draws != "per_evaluation":
        return pairs
    from synthlm.finetune.draws import drawn_for_evaluation

    return drawn_for_evaluation(pairs, plan.config.seed, step)


# ---------------------------------------------------------------------------------------------
# mode pt: the objective's loss on natural stores


def eval_windows(
    store: TokenStore,
    eos_id: int,
    window: int,
    max_tokens: int,
    max_documents: int | None = None,
) -> Iterator[Sample]:
    """Consecutive raw windows of the EOS-joined documents, in order, ``max_tokens`` at most
    (always at least one window when the store holds that many tokens), from the first
    ``max_documents`` documents (None: all)."""
    from synthlm.evaluate.perplexity import joins_with_eos

    count = max(max_tokens // window, 1)
    add_eos = joins_with_eos(store, eos_id)
    tokens: list[np.ndarray] = []
    segments: list[np.ndarray] = []
    held = 0
    documents = len(store) if max_documents is None else min(max_documents, len(store))
    for index in range(documents):
        doc = np.asarray(store.document(index), dtype=np.int64)
        if add_eos:
            doc = np.append(doc, eos_id)
        tokens.append(doc)
        segments.append(np.full(len(doc), index, dtype=np.int32))
        held += len(doc)
        if held >= count * window:
            break
    stream, owners = np.concatenate(tokens), np.concatenate(segments)
    for k in range(min(count, len(stream) // window)):
        part = slice(k * window, (k + 1) * window)
        yield Sample(
            stream[part], np.ones(window, dtype=np.uint8), owners[part] - owners[part][0], 0
        )


def objective_metrics(
    plan: Any,
    objective: Any,
    model: Any,
    eval_set: EvalSetConfig,
    device: Any,
    batch_size: int,
) -> dict[str, float]:
    """The objective's loss (per token, or per batch as the run averaged its training loss),
    plus its per-group losses and accuracies (per token)."""
    import torch

    from synthlm.evaluate.loss import loss_total
    from synthlm.evaluate.perplexity import held_out_samples
    from synthlm.objectives.span_corruption import summarize_metrics

    window = objective.window_length(plan.seq_len)
    store = TokenStore(eval_set.path, check_ids=False)
    if plan.config.data.packing:
        samples = list(
            eval_windows(
                store, objective.eos_id, window, eval_set.max_tokens, eval_set.max_documents
            )
        )
    else:  # one document per example, read as training reads them (the DEPTH paper's runs)
        samples = list(
            held_out_samples(
                store,
                seq_len=window,
                eos_id=objective.eos_id,
                max_tokens=eval_set.max_tokens,
                packing=False,
                max_documents=eval_set.max_documents,
            )
        )
    total = loss_total(plan.config.train.loss_average)
    groups: dict[str, float] = {}
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch = {k: v.to(device) for k, v in objective.collate(chunk).items()}
        out = objective.forward(model, batch)
        rows = out.rows[0] if out.rows is not None else out.loss
        total.add(float(rows.double().sum()), int(out.targets), len(chunk))
        for key, value in out.metric_sums.items():
            groups[key] = groups.get(key, 0.0) + float(torch.as_tensor(value).double())
    metrics = {"loss": total.mean, "tokens": float(total.tokens)}
    metrics.update(summarize_metrics(groups))
    return metrics


# ---------------------------------------------------------------------------------------------
# mode ft: generated outputs scored


def generation_settings(plan: Any, batch_size: int, kind: str) -> Any:
    from synthlm.finetune.predict import GenerationSettings, vocab_end

    cfg = plan.finetune.config
    return GenerationSettings(
        batch_size,
        cfg.max_new_tokens or cfg.max_target_length,
        cfg.num_beams,
        plan.objective.eos_id,
        plan.objective.pad_id,
        vocab_end(kind, plan.layout),
    )


def evaluate_pairs(
    plan: Any, pairs: Any, model: Any, device: Any, batch_size: int, *, progress: bool
) -> dict[str, float]:
    import dataclasses

    from synthlm.evaluate import unwrap
    from synthlm.evaluate.loss import loss_total
    from synthlm.finetune.predict import generate, score, teacher_forced, vocab_end

    labelled = pairs.labelled[: plan.finetune.config.max_eval_examples]
    scored = dataclasses.replace(pairs, pairs=labelled)
    protocol = plan.finetune.config.eval_protocol
    # one teacher-forced pass gives the loss (averaged as the run trained) and, for that
    # protocol, the outputs; generation is a second pass
    total, outputs = teacher_forced(
        plan.objective,
        model,
        labelled,
        device,
        batch_size,
        vocab_end(pairs.kind, plan.layout),
        loss_total(plan.config.train.loss_average),
    )
    if protocol == "generate":
        outputs = generate(
            unwrap(model),
            labelled,
            generation_settings(plan, batch_size, pairs.kind),
            device,
            progress=progress,
        )
    metrics = {"loss": total.mean}
    metrics.update(score(scored, outputs, plan.tokenizer, plan.layout, protocol=protocol))
    return {f"eval/{pairs.name}/{k}": v for k, v in metrics.items()}


def write_predictions(
    plan: Any, model: Any, device: Any, path: Path, *, step: int, write: bool, progress: bool
) -> None:
    """``predict_only``: generate for finetune.test (else valid) and write one record per pair
    (drawn as an evaluation at ``step`` would draw them)."""
    from synthlm.evaluate import eval_mode, unwrap
    from synthlm.finetune.predict import generate, prediction_records, write_jsonl

    pairs = drawn_pairs(plan, plan.finetune.predict_set, step)
    batch_size = plan.config.train.eval_batch
    with eval_mode(model, device, plan.config.seed):
        outputs = generate(
            unwrap(model),
            pairs.pairs,
            generation_settings(plan, batch_size, pairs.kind),
            device,
            progress=progress and write,
        )
    if write:
        write_jsonl(path, prediction_records(pairs, outputs, plan.tokenizer, plan.layout))
