"""``synthlm data inspect|merge|split``: look into, join and split token stores."""

from __future__ import annotations

import json
from pathlib import Path

import typer

data_app = typer.Typer(help="Inspect, merge and split token stores.", no_args_is_help=True)


@data_app.command("inspect")
def inspect_store(
    prefix: Path = typer.Argument(
        ..., help="Store prefix (PREFIX.bin/.idx), or a synthetic dataset dir."
    ),
    sample: int = typer.Option(
        None, "--sample", "-n", min=0, help="How many documents to decode and print (default 2)."
    ),
    tokenizer: str = typer.Option(
        None,
        "--tokenizer",
        "-t",
        help="Tokenizer to decode with (default: the one recorded in PREFIX.json); one that "
        "did not write the store is refused.",
    ),
    max_chars: int = typer.Option(
        None,
        "--max-chars",
        min=0,
        help="Characters of each decoded sample to show (default 300).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON only."),
) -> None:
    """Print documents, tokens, dtype, length percentiles, and decode a sample."""
    from synthlm.data.summary import inspect_report

    if as_json:
        given = [f for f, v in (("--sample", sample), ("--max-chars", max_chars)) if v is not None]
        if given:
            from synthlm.errors import UserError

            raise UserError(f"{', '.join(given)}: --json prints statistics only, no samples")
    report = inspect_report(
        prefix,
        sample=2 if sample is None else sample,
        tokenizer=tokenizer,
        max_chars=300 if max_chars is None else max_chars,
    )
    if as_json:
        typer.echo(json.dumps(report["stats"], indent=2))
        return
    typer.echo(report["text"])


@data_app.command("merge")
def merge(
    prefixes: list[Path] = typer.Argument(..., help="Input store prefixes, joined in this order."),
    out: Path = typer.Option(..., "--out", "-o", help="Output store prefix."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing store at --out."
    ),
) -> None:
    """Join stores into one (documents kept intact, in order)."""
    from synthlm.data.store import merge_stores
    from synthlm.fileio import check_output

    check_output(out)
    merged = merge_stores(prefixes, out, overwrite=overwrite)
    typer.echo(
        f"wrote {merged.prefix}: {len(merged):,} documents, {merged.num_tokens:,} tokens "
        f"({merged.dtype.name})"
    )


@data_app.command("split")
def split(
    prefix: Path = typer.Argument(..., help="Input store prefix (PREFIX.bin/.idx)."),
    valid_fraction: float = typer.Option(
        ..., "--valid-fraction", help="Share of documents held out, e.g. 0.05."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Output prefix (default: the input's); writes OUT_train and OUT_valid.",
    ),
    seed: int = typer.Option(0, help="Chooses the held-out documents (same seed, same split)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing OUT_train / OUT_valid stores."
    ),
) -> None:
    """Hold out whole documents as a validation store (OUT_valid) and keep the rest (OUT_train)."""
    from synthlm.data.split import split_store

    parts = split_store(prefix, valid_fraction, out=out, seed=seed, overwrite=overwrite)
    for name, store in parts.items():
        typer.echo(
            f"wrote {store.prefix} ({name}): {len(store):,} documents, {store.num_tokens:,} tokens"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
