"""``synthlm eval CKPT``: evaluate a checkpoint on natural stores and synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_command(
    checkpoint: Path = typer.Argument(
        ..., help="HF model dir: RUN/final or RUN/checkpoints/step-N."
    ),
    data: list[Path] = typer.Option(
        None,
        "--data",
        "-d",
        help="Store prefix (natural) or synthetic dataset dir; repeatable. Default: the "
        "checkpoint's data.eval sets.",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Results JSON (default: RUN/eval/<checkpoint>.json)."
    ),
    seq_len: int = typer.Option(
        None, "--seq-len", min=2, help="Window length (default: the training seq_len)."
    ),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        "-b",
        min=1,
        help="Windows / examples per forward pass (default 8; a run trained with "
        "train.loss_average=micro_batch: its eval batch size, which its per-batch loss "
        "mean depends on).",
    ),
    max_tokens: str = typer.Option(
        None,
        "--max-tokens",
        help="Tokens evaluated per set, e.g. 200K (default: each configured set's "
        "data.eval max_tokens; --data sets: 200K).",
    ),
    max_examples: int = typer.Option(
        None,
        "--max-examples",
        min=0,
        help="Synthetic examples generated for accuracy (default: each configured set's "
        "data.eval max_examples; --data sets: 100).",
    ),
    max_documents: int = typer.Option(
        None,
        "--max-documents",
        min=1,
        help="Natural sets: read no further than the first N documents (default: the "
        "config's, else max-tokens alone).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    dtype: str = typer.Option(
        "auto", "--dtype", help="auto (as saved), float32, bfloat16 or float16."
    ),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", "-t", help="Tokenizer dir (default: the checkpoint's)."
    ),
    seed: int = typer.Option(
        None,
        "--seed",
        help="Seed of the evaluation's private RNG stream (default 0). With --lm-eval: the "
        "harness's four seeds at once, as lm_eval --seed N (default: its 0,1234,1234,1234).",
    ),
    qa: list[Path] = typer.Option(
        None,
        "--qa",
        help="QuALITY-format json/jsonl: closed-book multiple-choice QA instead of "
        "--data; repeat to score several files as one set (QuALITY train + dev).",
    ),
    qa_scorer: str = typer.Option(
        None,
        "--qa-scorer",
        help="loglik (option log-likelihood), cot (few-shot chain of thought) or both "
        "(default: loglik).",
    ),
    qa_limit: int = typer.Option(
        None, "--qa-limit", min=1, help="Evaluate only the first N questions."
    ),
    qa_shots: int = typer.Option(
        None,
        "--qa-shots",
        min=0,
        help="Few-shot examples in the synthlm chain-of-thought prompt (default 2).",
    ),
    qa_max_new_tokens: int = typer.Option(
        None,
        "--qa-max-new-tokens",
        min=1,
        help="Generation budget per chain-of-thought answer (default 256; the entigraph "
        "protocol fixes 300).",
    ),
    qa_protocol: str = typer.Option(
        None,
        "--qa-protocol",
        help="Chain-of-thought protocol: synthlm (2 shots, greedy) or entigraph (the "
        "paper's: 5 shots, title/author/year, temperature 0.1, stop at 'Answer: X.', "
        "val/test split by title).",
    ),
    qa_prompt: Path = typer.Option(
        None,
        "--qa-prompt",
        help="Your own chain-of-thought prompt: a text file with $title $author $year "
        "$question $choices ($$ for a literal $).",
    ),
    qa_temperature: float = typer.Option(
        None,
        "--qa-temperature",
        min=0.0,
        help="Sampling temperature for synthlm / --qa-prompt (default 0: greedy).",
    ),
    qa_stop: list[str] = typer.Option(
        None, "--qa-stop", help="Stop string for synthlm / --qa-prompt generation (repeatable)."
    ),
    lm_eval: str = typer.Option(
        None,
        "--lm-eval",
        help="lm-evaluation-harness tasks, comma-separated (e.g. hellaswag,arc_easy), "
        "instead of --data; needs the eval extra (pip install 'synthlm\\[eval]').",
    ),
    limit: int = typer.Option(
        None, "--limit", min=1, help="--lm-eval: examples per task (default: all of them)."
    ),
    num_fewshot: int = typer.Option(
        None,
        "--num-fewshot",
        min=0,
        help="--lm-eval: few-shot examples (default: each task's own).",
    ),
    lm_eval_include: list[Path] = typer.Option(
        None,
        "--lm-eval-include",
        help="--lm-eval: a folder of local task YAMLs (repeatable); searched before the "
        "built-in tasks.",
    ),
    document_mask: bool = typer.Option(
        None,
        "--document-mask/--no-document-mask",
        help="Natural sets: score each document on its own (its own attention and positions, "
        "its first token not a target), as data.document_mask trains. Default: as the "
        "checkpoint trained.",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    predictions: Path = typer.Option(
        None,
        "--predictions",
        help="Synthetic sets: JSONL of decoded predictions (domain, prompt, answer, predicted, "
        "correct, ids); default: the results path with .predictions.jsonl (a file left there "
        "by an earlier run is removed, so results and predictions agree). --qa: every "
        "question's scores (default: the results path with .predictions.json).",
    ),
    max_predictions: int = typer.Option(
        None,
        "--max-predictions",
        min=0,
        help="Synthetic sets: predictions written per set, at most (default 100; 0: no "
        "predictions file).",
    ),
) -> None:
    """Loss, perplexity, bits per byte (natural), exact-match accuracy (synthetic), QA accuracy or
    lm-eval benchmark scores, as JSON (lm-eval: RUN/eval/lm_eval.json, which synthlm report shows)."""
    from synthlm.commands._eval_options import (
        QA,
        check_lm_eval_options,
        check_options_apply,
        check_predictions_path,
        check_qa_alone,
        check_qa_options,
        evaluation_of,
    )
    from synthlm.config import parse_count
    from synthlm.errors import UserError
    from synthlm.evaluate.offline import DEFAULT_BATCH_SIZE, evaluate_checkpoint
    from synthlm.filecheck import check_checkpoint_files
    from synthlm.fileio import check_output

    evaluation = evaluation_of(lm_eval, qa)
    results = out or default_results(checkpoint, evaluation)
    check_output(results)  # before any model is loaded or window scored
    if predictions is not None:
        check_output(predictions)
        check_predictions_path(predictions, results)
    check_checkpoint_files(checkpoint)
    check_lm_eval_options(
        lm_eval, limit=limit, num_fewshot=num_fewshot, include=lm_eval_include, data=data, qa=qa
    )
    check_qa_alone(data, qa)
    qa_options = {
        "--qa-scorer": qa_scorer,
        "--qa-limit": qa_limit,
        "--qa-shots": qa_shots,
        "--qa-max-new-tokens": qa_max_new_tokens,
        "--qa-protocol": qa_protocol,
        "--qa-prompt": qa_prompt,
        "--qa-temperature": qa_temperature,
        "--qa-stop": qa_stop,
    }
    mask_flag = "--document-mask" if document_mask else "--no-document-mask"
    check_options_apply(
        evaluation,
        {
            "--seq-len": seq_len,
            "--batch-size": batch_size,
            "--max-tokens": max_tokens,
            "--max-examples": max_examples,
            "--max-documents": max_documents,
            mask_flag: document_mask,
            "--predictions": predictions,
            "--max-predictions": max_predictions,
            "--seed": seed,
            **qa_options,
        },
    )
    if evaluation == QA:
        check_qa_options(qa_scorer or "loglik", qa_options)
    if lm_eval is not None:
        from synthlm.evaluate.lm_eval_bridge import evaluate_checkpoint_lm_eval, split_tasks

        scores, path = evaluate_checkpoint_lm_eval(
            checkpoint,
            split_tasks(lm_eval),
            include=lm_eval_include or [],
            limit=limit,
            num_fewshot=num_fewshot,
            out=out,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
            max_length=seq_len,
            device=device,
            dtype=dtype,
            tokenizer=tokenizer,
            seed=seed,
            quiet=quiet,
        )
        for task, row in scores.items():
            for metric, value in row.items():
                typer.echo(f"{task + '/' + metric:40s} {value:.6g}")
        typer.echo(f"wrote {path}")
        return

    if qa:
        from synthlm.evaluate.qa import dumps, evaluate_qa

        report, path = evaluate_qa(
            checkpoint,
            qa,
            scorer=qa_scorer or "loglik",
            limit=qa_limit,
            shots=qa_shots,
            max_new_tokens=qa_max_new_tokens,
            out=out,
            device=device,
            dtype=dtype,
            protocol=qa_protocol,
            prompt_file=qa_prompt,
            temperature=qa_temperature,
            stop=qa_stop or (),
            seed=0 if seed is None else seed,
            tokenizer=tokenizer,
            predictions=predictions,
        )
        typer.echo(dumps(report["qa"]))
        typer.echo(f"wrote {path}")
        typer.echo(f"wrote {report['predictions']}")
        return

    try:
        tokens = None if max_tokens is None else parse_count(max_tokens)
    except ValueError as exc:
        raise UserError(f"--max-tokens: {exc}") from None
    if tokens is not None and tokens < 2:
        raise UserError(
            f"--max-tokens: {max_tokens}: at least 2 (one token alone has nothing to predict)"
        )
    report, path = evaluate_checkpoint(  # batch_size None: as the run trained (default_batch_size)
        checkpoint,
        data or [],
        out=out,
        seq_len=seq_len,
        batch_size=batch_size,
        max_tokens=tokens,
        max_examples=max_examples,
        max_documents=max_documents,
        device=device,
        dtype=dtype,
        seed=0 if seed is None else seed,
        tokenizer=tokenizer,
        quiet=quiet,
        predictions=predictions,
        max_predictions=max_predictions,
        document_mask=document_mask,
    )
    natural = any(s["kind"] == "natural" for s in report["eval_sets"])
    if report["natural_document_mask"] and natural:
        how = "as the checkpoint trained" if document_mask is None else "--document-mask"
        typer.echo(f"natural sets scored one document at a time (document_mask, {how})")
    for key, value in report["metrics"].items():
        typer.echo(f"{key:40s} {value:.6g}")
    typer.echo(f"wrote {path}")
    tables = report.get("synthetic", {}).values()
    for written in sorted({t["predictions"] for t in tables if "predictions" in t}):
        typer.echo(f"wrote {written}")


def default_results(checkpoint: Path, evaluation: str) -> Path:
    """Where the results of ``evaluation`` go when -o is not given."""
    from synthlm.commands._eval_options import LM_EVAL, QA

    if evaluation == LM_EVAL:
        from synthlm.evaluate.lm_eval_bridge import default_output
    elif evaluation == QA:
        from synthlm.evaluate.qa import default_output
    else:
        from synthlm.evaluate.offline import default_output
    return default_output(checkpoint)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
