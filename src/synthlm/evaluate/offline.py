"""``synthlm eval``: evaluate a saved checkpoint outside training and write the results as JSON.

Eval sets come from ``--data`` paths (a store prefix is natural, a dir with ``manifest.json`` is
synthetic) or, without any, from the checkpoint's own ``data.eval`` config. Results go to
``--out`` or ``RUN/eval/<checkpoint>.json`` (e.g. ``RUN/eval/step-1000.json``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthlm import __version__
from synthlm.data.mixture import EvalSetConfig
from synthlm.data.store import normalize_prefix, store_exists
from synthlm.errors import UserError
from synthlm.evaluate.synthetic_details import Details
from synthlm.synth.manifest import is_synthetic_dataset

DEFAULT_BATCH_SIZE = 8  # windows / examples per forward pass of `synthlm eval`
DEFAULT_MAX_PREDICTIONS = 100  # decoded predictions kept per synthetic set


def detect_kind(path: Path) -> str:
    """``synthetic`` for a dataset dir (manifest.json), ``natural`` for a store prefix."""
    if is_synthetic_dataset(path):
        return "synthetic"
    if store_exists(normalize_prefix(path)):
        return "natural"
    raise UserError(
        f"--data {path}: neither a token store (PREFIX.bin + PREFIX.idx) nor a synthetic "
        f"dataset dir (with manifest.json)"
    )


def unique_name(path: Path, taken: set[str]) -> str:
    base = normalize_prefix(path).name or "data"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def given_limits(**limits: int | None) -> dict[str, int]:
    """The command line's eval-set limits that were given (max_tokens, max_examples, ...)."""
    return {k: v for k, v in limits.items() if v is not None}


def eval_sets_from_paths(paths: Sequence[str | Path], **limits: int | None) -> list[EvalSetConfig]:
    """One eval set per path, named after it (deduplicated), kind detected from the files;
    ``limits``: max_tokens, max_examples, max_documents (None: the set's default)."""
    taken: set[str] = set()
    sets = []
    limits = given_limits(**limits)
    for raw in paths:
        path = Path(raw)
        kind = detect_kind(path)
        sets.append(
            EvalSetConfig(
                name=unique_name(path, taken),
                path=normalize_prefix(path) if kind == "natural" else path,
                kind=kind,
                **limits,
            )
        )
    return sets


def configured_eval_sets(config: dict[str, Any], **limits: int | None) -> list[EvalSetConfig]:
    """The checkpoint config's ``data.eval`` sets, with the command line's limits applied."""
    from synthlm.config import validate

    raw = (config.get("data") or {}).get("eval") or []
    sets = [
        validate(EvalSetConfig, item, source=f"checkpoint config.yaml data.eval.{i}")
        for i, item in enumerate(raw)
    ]
    return [s.model_copy(update=given_limits(**limits)) for s in sets]


def check_configured_paths(sets: Sequence[EvalSetConfig], checkpoint: Path) -> None:
    """The run's eval sets must be found from here: their paths are as the training config
    wrote them, often relative to the directory the run was launched from, so a missing one is
    named with where it came from and the two ways out."""
    for i, item in enumerate(sets):
        found = item.path.is_dir() if item.kind == "synthetic" else store_exists(item.path)
        if not found:
            raise UserError(
                f"{checkpoint / 'config.yaml'} data.eval.{i} ({item.name}): {item.path} is not "
                f"found from {Path.cwd()}; the run's paths are as its config wrote them (a "
                "relative one is relative to where training was launched): run synthlm eval "
                "from there, or pass --data PATH"
            )


def default_output(checkpoint: str | Path) -> Path:
    from synthlm.evaluate.checkpoint import run_dir_of

    return run_dir_of(checkpoint) / "eval" / f"{Path(checkpoint).resolve().name}.json"


def default_seq_len(ckpt) -> int:
    """The training seq_len when recorded, else the model's context (at most 1024)."""
    from synthlm.inference.sampling import context_limit

    return ckpt.seq_len or min(context_limit(ckpt.model) or 512, 1024)


def check_set_tokenizers(sets: Sequence[Any], tokenizer_dir: str | Path, *, from_cli: bool) -> None:
    """Natural stores must hold the ids of the tokenizer the checkpoint is scored with (its own,
    or ``--tokenizer``); see :mod:`synthlm.data.provenance`."""
    from synthlm.data.provenance import check_store_tokenizer
    from synthlm.tokenizers import load_tokenizer

    natural = [
        (i, item) for i, item in enumerate(sets) if item.kind == "natural" and item.path is not None
    ]
    if not natural:
        return
    tokenizer = load_tokenizer(tokenizer_dir)
    fix = (
        "Tokenize the text with the checkpoint's tokenizer (synthlm tokenize ... --tokenizer CKPT)"
    )
    for i, item in natural:
        where = f"--data {item.path}" if from_cli else f"data.eval.{i} ({item.name})"
        check_store_tokenizer(item.path, tokenizer, where, fix)


def check_set_layouts(sets: Sequence[Any], checkpoint: Path, *, from_cli: bool) -> None:
    """Synthetic sets must use the id layout of a synthetic source the checkpoint trained on
    (:mod:`synthlm.data.synthetic_layouts`); a checkpoint without the record gets a note."""
    from synthlm.data.synthetic_layouts import check_layout, recorded_layouts
    from synthlm.evaluate.checkpoint import read_info

    synthetic = [(i, s) for i, s in enumerate(sets) if s.kind == "synthetic" and s.path]
    if not synthetic:
        return
    trained = recorded_layouts(read_info(checkpoint))
    for i, item in synthetic:
        where = f"--data {item.path}" if from_cli else f"data.eval.{i} ({item.name})"
        check_layout(item.path, trained, where, str(checkpoint))


def check_window(model: Any, seq_len: int) -> None:
    """A window longer than the model's positions would index past its position table (or
    score positions it never trained on): refused, as chat and training refuse it."""
    from synthlm.inference.sampling import context_limit

    limit = context_limit(model)
    if limit is not None and seq_len > limit:
        raise UserError(
            f"--seq-len {seq_len} exceeds the model's {limit} positions; use at most {limit}"
        )


def default_batch_size(config: dict[str, Any], loss_average: str) -> int:
    """8, or for a run that averaged its loss per batch the eval batch size it trained with:
    a per-batch mean over other batches would be another number."""
    train = config.get("train") or {}
    if loss_average == "micro_batch":
        return int(train.get("eval_batch_size") or train.get("batch_size") or DEFAULT_BATCH_SIZE)
    return DEFAULT_BATCH_SIZE


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: Sequence[str | Path] = (),
    *,
    out: str | Path | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    max_examples: int | None = None,
    max_documents: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    seed: int = 0,
    tokenizer: str | Path | None = None,
    quiet: bool = False,
    predictions: str | Path | None = None,
    max_predictions: int | None = None,
    document_mask: bool | None = None,
) -> tuple[dict[str, Any], Path]:
    """Evaluate ``checkpoint`` on ``data`` (or its configured eval sets); returns (report, path).

    Decoder-only models only: natural-store loss/perplexity is next-token prediction over token
    windows and synthetic accuracy is prompt -> completion, neither of which an encoder-decoder
    trained on span corruption (or text-to-text pairs) defines. Its meaningful scores are its own
    objective's (reconstruction loss/accuracy, task metrics), which ``synthlm train CONFIG
    eval_only=true`` computes, so a seq2seq checkpoint is refused here before any loading.

    Synthetic sets also get per-domain and per-answer-length tables (``report["synthetic"]``)
    and up to ``max_predictions`` (default 100) decoded predictions per set, written as JSONL to
    ``predictions`` (default: the results path with ``.predictions.jsonl``). A predictions file
    at that default path that this run does not write belongs to an earlier result and is
    removed with the new results, so the pair on disk always agrees.

    Natural text is scored as the checkpoint trained (its objective's targets and loss masks,
    ``data.packing``, ``data.document_mask``; see :func:`scoring_objective`);
    ``document_mask`` overrides whether natural documents are scored one by one (None: as
    trained).
    """
    from synthlm.evaluate import evaluate_model
    from synthlm.evaluate.checkpoint import (
        check_checkpoint_dir,
        load_checkpoint,
        read_training_config,
        refuse_encoder_decoder,
        scoring_objective,
        trained_loss_average,
    )
    from synthlm.fileio import atomic_write_json

    check_checkpoint_dir(Path(checkpoint))
    if predictions is not None and Path(predictions).is_dir():
        raise UserError(f"--predictions {predictions}: is a directory; give a file path (.jsonl)")
    refuse_encoder_decoder(
        checkpoint,
        "synthlm eval (--data and configured eval sets)",
        "it scores next-token perplexity and prompt completions",
    )
    if data:
        sets = eval_sets_from_paths(
            data, max_tokens=max_tokens, max_examples=max_examples, max_documents=max_documents
        )
    else:
        sets = configured_eval_sets(
            read_training_config(Path(checkpoint)),
            max_tokens=max_tokens,
            max_examples=max_examples,
            max_documents=max_documents,
        )
        check_configured_paths(sets, Path(checkpoint))
    if not sets:
        raise UserError(
            f"{checkpoint}: nothing to evaluate; pass --data PREFIX_OR_DIR (the "
            f"checkpoint's config has no data.eval sets)"
        )
    check_predictions_wanted(sets, predictions=predictions, max_predictions=max_predictions)
    mask_flag = "--document-mask" if document_mask else "--no-document-mask"
    check_set_kind_options(
        sets,
        {
            "--max-examples": max_examples,
            "--max-documents": max_documents,
            mask_flag: document_mask,
        },
    )
    check_set_tokenizers(sets, tokenizer or checkpoint, from_cli=bool(data))
    check_set_layouts(sets, Path(checkpoint), from_cli=bool(data))
    ckpt = load_checkpoint(checkpoint, device=device, dtype=dtype, tokenizer=tokenizer, quiet=quiet)
    scoring = scoring_objective(Path(checkpoint), ckpt.config, document_mask)
    loss_average = trained_loss_average(Path(checkpoint), ckpt.config)
    batch_size = batch_size or default_batch_size(ckpt.config, loss_average)
    length = seq_len or default_seq_len(ckpt)
    check_window(ckpt.model, length)
    started = time.perf_counter()
    details = Details(
        max_predictions=DEFAULT_MAX_PREDICTIONS if max_predictions is None else max_predictions
    )
    metrics = evaluate_model(
        ckpt.model,
        sets,
        layout=ckpt.layout,
        tokenizer=ckpt.tokenizer,
        seq_len=length,
        batch_size=batch_size,
        device=next(ckpt.model.parameters()).device,
        seed=seed,
        progress=not quiet,
        details=details,
        objective=scoring.objective,
        packing=scoring.packing,
        natural_masked=scoring.natural_masked,
        loss_average=loss_average,
        shared_boundary=scoring.shared_boundary,
    )
    report = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "metrics": metrics,
        "eval_sets": [s.model_dump(mode="json") for s in sets],
        "seq_len": length,
        "objective": scoring.objective.name,
        "natural_document_mask": scoring.natural_masked,
        "packing": scoring.packing,
        "shared_boundary": scoring.shared_boundary,
        "loss_average": loss_average,
        "batch_size": batch_size,
        "seed": seed,
        # what scored it: a bf16 result is another measurement than an fp32 one
        "dtype": str(next(ckpt.model.parameters()).dtype).removeprefix("torch."),
        "device": str(next(ckpt.model.parameters()).device),
        "layout": ckpt.layout.to_dict(),
        "seconds": round(time.perf_counter() - started, 3),
        "synthlm_version": __version__,
    }
    path = Path(out) if out else default_output(checkpoint)
    if details.tables:
        report["synthetic"] = write_details(details, path, predictions)
    atomic_write_json(path, report)
    remove_stale_predictions(path, report)
    return report, path


def default_predictions(results: Path) -> Path:
    return results.with_suffix(".predictions.jsonl")


def check_predictions_wanted(
    sets: Sequence[Any], *, predictions: str | Path | None, max_predictions: int | None
) -> None:
    """Predictions are decoded from synthetic sets only; asked for without one, none would be
    written, and the command would end as if they had been."""
    if any(item.kind == "synthetic" for item in sets):
        return
    given = [
        flag
        for flag, value in (("--predictions", predictions), ("--max-predictions", max_predictions))
        if value is not None
    ]
    if given:
        raise UserError(
            f"{', '.join(given)}: predictions are written for synthetic sets only, and these "
            f"eval sets are natural ({', '.join(item.name for item in sets)}); drop the flag"
        )


#: eval-set options that only one kind of set reads
SET_KIND_OPTIONS = {
    "--max-examples": "synthetic",
    "--max-documents": "natural",
    "--document-mask": "natural",
    "--no-document-mask": "natural",
}


def check_set_kind_options(sets: Sequence[Any], options: dict[str, Any]) -> None:
    """A limit or masking flag read only by one kind of set, given when no set is of that kind,
    would change nothing while the results record it (and a report would then call equal runs
    incomparable): refused, as an option the evaluation does not read is."""
    kinds = {item.kind for item in sets}
    unread = [
        (flag, kind)
        for flag, kind in SET_KIND_OPTIONS.items()
        if options.get(flag) is not None and kind not in kinds
    ]
    if unread:
        flags = ", ".join(flag for flag, _ in unread)
        needed = " or ".join(sorted({kind for _, kind in unread}))
        raise UserError(
            f"{flags}: read by {needed} eval sets only, and none of these is "
            f"({', '.join(f'{item.name}: {item.kind}' for item in sets)}); drop the flag"
        )


def remove_stale_predictions(results: Path, report: dict[str, Any]) -> None:
    """Remove the default predictions file when this run did not write it: it was an earlier
    run's, and beside these results it would pass for theirs."""
    stale = default_predictions(results)
    tables = report.get("synthetic", {}).values()
    written = {Path(t["predictions"]).resolve() for t in tables if "predictions" in t}
    if stale.resolve() not in written and stale.exists():
        stale.unlink()


def write_details(details, results: Path, predictions: str | Path | None) -> dict[str, Any]:
    """The synthetic tables for the results file; the predictions JSONL written beside it."""
    from synthlm.evaluate.synthetic_details import write_predictions

    tables: dict[str, Any] = {name: dict(table) for name, table in details.tables.items()}
    if details.predictions:
        target = Path(predictions) if predictions else default_predictions(results)
        write_predictions(details.records(), target)
        for name in details.predictions:
            tables[name]["predictions"] = str(target)
    return tables
