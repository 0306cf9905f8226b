"""The ``--synthetic`` branch of ``synthlm generate``: symbol prompts in, symbol continuations out."""

from __future__ import annotations

from pathlib import Path

import typer


def run_synthetic(
    ckpt, dataset: Path, prompts: list[str], sampling, *, batch_size: int, output: Path | None
) -> None:
    """Print ``PROMPT | CONTINUATION`` per sample, or write JSONL records to ``output``."""
    from synthlm.inference.sampling import special_ids, write_completions
    from synthlm.inference.synthetic_generate import generate_synthetic
    from synthlm.inference.synthetic_ids import SymbolTable, check_fits

    check_fits(dataset, ckpt.layout)
    eos, _ = special_ids(ckpt.tokenizer)
    table = SymbolTable.from_dataset(dataset, meta_offset=ckpt.layout.meta_offset, eos_id=eos)
    completions = generate_synthetic(
        ckpt.model, ckpt.tokenizer, table, prompts, sampling, batch_size=batch_size
    )
    if output is not None:
        count = write_completions(completions, output)
        typer.echo(f"wrote {count} samples to {output}", err=True)
        return
    for completion in completions:
        typer.echo(f"{completion.prompt} | {completion.text}")
