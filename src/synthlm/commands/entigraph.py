"""``synthlm entigraph``: build an EntiGraph synthetic corpus from a few documents.

Thin by design: flags become an :class:`~synthlm.entigraph.settings.EntiGraphConfig` (whose
field descriptions are the help texts), then :func:`~synthlm.entigraph.run_entigraph` does the
work. Importing this module stays cheap: the pipeline is imported when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

HELP = (
    "Have an LLM write a synthetic corpus about a few documents (EntiGraph).\n\n"
    "Per document: a summary and its entities, then analyses of entity pairs and triples. "
    "Resumable: rerun the same command after a crash, Ctrl-C or budget stop and only the "
    "missing requests are sent. Writes OUT/generations.jsonl (the durable log), "
    "OUT/corpus.jsonl (for `synthlm tokenize`) and OUT/manifest.json.\n\n"
    "Exit status: 0 when done or stopped by a budget, 1 if some requests failed for good "
    "(rerun to retry them), 2 on bad input."
)


def _help(field: str) -> str:
    from synthlm.entigraph.settings import EntiGraphConfig

    return EntiGraphConfig.model_fields[field].description or ""


def entigraph(
    docs: list[Path] = typer.Option(None, "--docs", help=_help("docs")),
    out: Path = typer.Option(None, "--out", "-o", help=_help("out")),
    model: str = typer.Option(None, "--model", "-m", help=_help("model")),
    backend: str = typer.Option("openai", "--backend", help=_help("backend")),
    base_url: str = typer.Option(None, "--base-url", help=_help("base_url")),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help=_help("api_key_env")),
    device: str = typer.Option("auto", "--device", help=_help("device")),
    fmt: str = typer.Option("auto", "--format", help="Documents format: auto, jsonl or quality."),
    id_field: str = typer.Option("id", "--id-field", help=_help("id_field")),
    text_field: str = typer.Option("text", "--text-field", help=_help("text_field")),
    title_field: str = typer.Option("title", "--title-field", help=_help("title_field")),
    author_field: str = typer.Option("author", "--author-field", help=_help("author_field")),
    year_field: str = typer.Option("year", "--year-field", help=_help("year_field")),
    prompts: Path = typer.Option(None, "--prompts", help=_help("prompts")),
    write_prompts: Path = typer.Option(
        None,
        "--write-prompts",
        help="Copy the shipped prompt set to this directory (to edit, then pass with "
        "--prompts) and exit.",
    ),
    seed: int = typer.Option(0, "--seed", help=_help("seed")),
    max_pairs: int = typer.Option(None, "--max-pairs", help=_help("max_pairs")),
    max_triples: int = typer.Option(None, "--max-triples", help=_help("max_triples")),
    max_tokens: int = typer.Option(None, "--max-tokens", help=_help("max_tokens")),
    json_mode: bool = typer.Option(True, "--json-mode/--no-json-mode", help=_help("json_mode")),
    temperature: float = typer.Option(1.0, "--temperature", help=_help("temperature")),
    concurrency: int = typer.Option(8, "--concurrency", "-j", help=_help("concurrency")),
    timeout: float = typer.Option(120.0, "--timeout", help=_help("timeout")),
    max_attempts: int = typer.Option(6, "--max-attempts", help=_help("max_attempts")),
    retry_base: float = typer.Option(1.0, "--retry-base", help=_help("retry_base")),
    retry_max: float = typer.Option(60.0, "--retry-max", help=_help("retry_max")),
    json_attempts: int = typer.Option(3, "--json-attempts", help=_help("json_attempts")),
    price_in: float = typer.Option(None, "--price-in", help=_help("price_in")),
    price_out: float = typer.Option(None, "--price-out", help=_help("price_out")),
    max_cost: float = typer.Option(None, "--max-cost", help=_help("max_cost")),
    max_requests: int = typer.Option(None, "--max-requests", help=_help("max_requests")),
    dry_run: bool = typer.Option(False, "--dry-run", help=_help("dry_run")),
    assumed_entities: int = typer.Option(20, "--assumed-entities", help=_help("assumed_entities")),
    allow_mixed: bool = typer.Option(False, "--allow-mixed", help=_help("allow_mixed")),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=_help("quiet")),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report (or the dry-run estimate) as JSON."
    ),
) -> None:
    from synthlm.config import validate
    from synthlm.entigraph import EntiGraphConfig, run_entigraph, write_default_prompts
    from synthlm.entigraph.pipeline import RunInterrupted
    from synthlm.errors import UserError

    if write_prompts is not None:
        written = write_default_prompts(write_prompts)
        typer.echo(
            f"wrote {len(written)} prompt files to {write_prompts}; edit them, then pass "
            f"--prompts {write_prompts}"
        )
        return
    missing = [
        flag
        for flag, value in (("--docs", docs or None), ("--out", out), ("--model", model))
        if value is None
    ]
    if missing:
        raise UserError(f"missing {', '.join(missing)} (see synthlm entigraph --help)")
    from synthlm.fileio import check_output

    check_output(out, kind="dir")
    values = dict(locals())
    tree = {k: v for k, v in values.items() if k in EntiGraphConfig.model_fields and v is not None}
    tree["format"] = fmt
    flags = {(name,): f"--{name.replace('_', '-')}" for name in tree}  # errors name the flag
    cfg = validate(EntiGraphConfig, tree, flags, source="command line")
    try:
        report = run_entigraph(cfg)
    except RunInterrupted as exc:  # second Ctrl-C: say what was kept, exit like an interrupt
        typer.echo(_render(exc.report, as_json), err=True)
        _notes(exc.report)
        raise typer.Exit(130) from None
    typer.echo(_render(report, as_json))
    _notes(report)
    if report.interrupted:
        raise typer.Exit(130)
    if report.failed:
        raise typer.Exit(1)


def _notes(report: Any) -> None:
    """Say on stderr what the corpus holds beyond this command's settings.

    Why: the corpus is built from the whole log, so after a rerun with fewer --docs or smaller
    --max-pairs / --max-triples it still holds the earlier texts while the manifest records the
    narrower settings; without a word, that reads as a corpus larger than the flags explain.
    """
    if report.estimate is not None or not report.other_settings_texts:
        return
    plural = {"summary": "summaries", "pair": "pairs", "triple": "triples"}
    parts = ", ".join(
        f"{count} {kind if count == 1 else plural.get(kind, kind)}"
        for kind, count in report.other_settings.items()
        if count
    )
    typer.echo(
        f"note: {report.out / 'corpus.jsonl'} holds {report.other_settings_texts} texts that "
        f"these settings do not ask for ({parts}): earlier runs in {report.out} made them with "
        f"other --docs, --max-pairs, --max-triples or --seed. The corpus keeps every completed "
        f"record of generations.jsonl; manifest.json counts these under "
        f"corpus_from_other_settings.",
        err=True,
    )


def _render(report: Any, as_json: bool) -> str:
    from synthlm.entigraph.costs import format_cost

    if report.estimate is not None:
        if as_json:
            return json.dumps(report.estimate.to_dict(), indent=2)
        return "dry run: nothing was sent\n" + report.estimate.table()
    if as_json:
        return json.dumps(_report_dict(report), indent=2)
    lines = [
        f"entigraph: {report.completed} new records, {report.failed} failed, "
        f"{report.retries} retries ({report.transient_retries} after server errors, "
        f"{report.reasks} for unusable replies) -> {report.out}",
        f"this run: {report.usage.requests:,} requests, {report.usage.prompt_tokens:,} "
        f"prompt + {report.usage.completion_tokens:,} output tokens, cost "
        f"{format_cost(report.cost)}",
        f"all runs: {report.total_usage.requests:,} requests, "
        f"{report.total_usage.tokens:,} tokens, cost {format_cost(report.total_cost)}",
        f"corpus: {report.out / 'corpus.jsonl'} ({report.corpus_lines} texts)",
    ]
    if report.stop_reason:
        lines.append(f"stopped: {report.stop_reason}")
    lines.extend(f"failed: {failure}" for failure in report.failures)
    if report.still_failing:
        lines.append(
            f"still failing: {report.still_failing} requests listed in "
            f"{report.out / 'failures.jsonl'}; a rerun asks them again"
        )
    if report.pending:
        lines.append(
            f"pending: {report.pending} requests known to be left; rerun the same command to resume"
        )
    else:
        lines.append("complete: every request is done")
    return "\n".join(lines)


def _report_dict(report: Any) -> dict[str, Any]:
    return {
        "out": str(report.out),
        "completed": report.completed,
        "failed": report.failed,
        "retries": report.retries,
        "transient_retries": report.transient_retries,
        "reasks": report.reasks,
        "still_failing": report.still_failing,
        "pending": report.pending,
        "complete": report.complete,
        "corpus_lines": report.corpus_lines,
        "corpus_from_other_settings": {
            "texts": report.other_settings_texts,
            **report.other_settings,
        },
        "usage": report.usage.to_dict(),
        "cost": report.cost,
        "total_usage": report.total_usage.to_dict(),
        "total_cost": report.total_cost,
        "stop_reason": report.stop_reason,
        "failures": report.failures,
    }


def register(app: typer.Typer) -> None:
    app.command("entigraph", help=HELP)(entigraph)
