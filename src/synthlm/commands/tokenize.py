"""``synthlm tokenize INPUTS... --tokenizer T --out PREFIX``: inputs -> token stores, one per key."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.core import TyperCommand


def greedy_options(*names: str) -> type[TyperCommand]:
    """A command class where each option in ``names`` takes every value up to the next option.

    Click gives an option one value per occurrence, but users write ``--keys text title`` (GPT-NeoX)
    and ``--input corpus/*.txt`` (the shell expands the glob into many words). The words after such
    an option are rewritten to ``--keys text --keys title`` before Click parses them; a value may
    also be comma-separated (``--keys text,title``).
    """

    class GreedyCommand(TyperCommand):
        def parse_args(self, ctx, args: list[str]) -> list[str]:
            return super().parse_args(ctx, _expand_greedy(args, names))

    return GreedyCommand


def _expand_greedy(args: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg == "--":
            current = None
            out.append(arg)
        elif arg.startswith("-") and len(arg) > 1:
            current = arg if arg in names else None
            if current is None:
                out.append(arg)
        elif current is not None:
            values = [part.strip() for part in arg.split(",") if part.strip()]
            for value in values or [""]:  # an empty --keys "" stays, to be refused by name
                out += [current, value]
        else:
            out.append(arg)
    return out


def tokenize_command(
    inputs: list[str] = typer.Argument(
        ...,
        help="Files, globs or dirs (.jsonl[.gz|.zst], .json, .parquet, .csv, .txt), a "
        "saved datasets dir, or hf:NAME.",
    ),
    tokenizer: str = typer.Option(
        ...,
        "--tokenizer",
        "-t",
        help="Tokenizer dir, tokenizer.json, vocab.json (+ merges.txt), SentencePiece "
        ".model, 'byte', or a hub name.",
    ),
    out: str = typer.Option(  # a str: Path would drop the trailing "/" of a directory
        ..., "--out", "-o", help="Output prefix: writes OUT_{key}_document.bin/.idx/.json per key."
    ),
    keys: list[str] = typer.Option(
        None,
        "--keys",
        "-k",
        help="Fields to tokenize, each into its own store: --keys text title (default: "
        "text; with --chat: messages).",
    ),
    append_eod: bool = typer.Option(
        False, "--append-eod", help="End every document with the eos (end-of-document) token."
    ),
    prepend_bos: bool = typer.Option(
        False, "--prepend-bos", help="Start every document with the bos token."
    ),
    keep_empty: bool = typer.Option(
        False,
        "--keep-empty",
        help="Keep empty documents, in place, as documents of just their bos and/or eos instead "
        "of skipping them (Rocket trains on every row); needs --prepend-bos and/or --append-eod. "
        "Empty: the text is '' or encodes to no tokens (whitespace-only text does with "
        "SentencePiece); whitespace is not stripped.",
    ),
    ftfy: bool = typer.Option(
        False, "--ftfy", help="Repair mojibake and broken Unicode with ftfy before encoding."
    ),
    txt_mode: str = typer.Option(
        "file",
        "--txt-mode",
        help="For .txt inputs: 'file' (one document per file) or 'line' (one per line).",
    ),
    on_error: str = typer.Option(
        "skip",
        "--on-error",
        help="Bad records (invalid JSON, missing key, non-UTF-8): 'skip' and count them, "
        "or 'fail'.",
    ),
    max_docs: int = typer.Option(
        None, "--max-docs", help="Read at most this many input records (before sharding)."
    ),
    shard: int = typer.Option(
        0, "--shard", help="Process only slice I of the input (0-based), e.g. $SLURM_ARRAY_TASK_ID."
    ),
    num_shards: int = typer.Option(
        1, "--num-shards", help="Number of slices; `synthlm data merge` joins them in order."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-w",
        help="Encoding processes (default: all CPUs). Never changes the output bytes.",
    ),
    split: str = typer.Option(
        None, "--split", help="Split of a datasets dir or hub dataset (default: train)."
    ),
    hf_config: str = typer.Option(None, "--hf-config", help="Config name of a hub dataset."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output stores."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Exit successfully when every output store already exists."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary line."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's statistics as JSON."),
    chat: bool = typer.Option(
        False,
        "--chat",
        help='Records are {"messages": [{role, content}, ...]}: render with the '
        "tokenizer's chat template (or a built-in default) into one store whose loss "
        "mask marks the assistant's tokens (for objective: sft); every conversation "
        "ends with EOS.",
    ),
) -> None:
    """Tokenize documents into Megatron token stores, in parallel, byte-identical for any --workers."""
    from synthlm.data.tokenization import tokenize

    check_dataset_options(inputs, split=split, hf_config=hf_config)
    if skip_existing and overwrite:
        from synthlm.errors import UserError

        raise UserError(
            "--skip-existing keeps existing stores, --overwrite replaces them: choose one"
        )
    stats = tokenize(
        inputs,
        tokenizer,
        out,
        keys=keys,
        append_eod=append_eod,
        prepend_bos=prepend_bos,
        keep_empty=keep_empty,
        ftfy=ftfy,
        txt_mode=txt_mode,
        on_error=on_error,
        max_docs=max_docs,
        shard=shard,
        num_shards=num_shards,
        workers=workers,
        split=split,
        hf_config=hf_config,
        overwrite=overwrite,
        skip_existing=skip_existing,
        quiet=quiet,
        chat=chat,
    )
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
    elif stats.get("skipped"):
        typer.echo(f"all outputs exist, skipped: {', '.join(stats['outputs'].values())}", err=True)
    elif not quiet:
        _summary(stats)


def _summary(stats: dict) -> None:
    fate = "kept" if stats["keep_empty"] else "skipped"
    for key, prefix in stats["outputs"].items():
        typer.echo(
            f"wrote {prefix}: {stats['documents'][key]:,} documents, "
            f"{stats['tokens'][key]:,} tokens, {stats['empty'][key]:,} empty {fate}"
        )
    typer.echo(
        f"{stats['records']:,} records in {stats['seconds']:.1f}s "
        f"({stats['tokens_per_s']:,.0f} tokens/s, "
        f"{stats['mb_per_s']:.1f} MB/s); {stats['bad_records']:,} bad records skipped"
        + (f", {stats['blank_lines']:,} blank lines" if stats["blank_lines"] else "")
    )
    for example in stats["bad_examples"][:5]:
        typer.echo(f"  bad: {example}", err=True)


def register(app: typer.Typer) -> None:
    app.command("tokenize", cls=greedy_options("--keys", "-k"))(tokenize_command)


def check_dataset_options(inputs: list[str], *, split: str | None, hf_config: str | None) -> None:
    """--split picks a split of a datasets dir or hub dataset and --hf-config a hub dataset's
    config: given for files alone, they would change nothing while the run said nothing."""
    from synthlm.data.readers import HUB_PREFIX
    from synthlm.errors import UserError

    hub = any(str(i).startswith(HUB_PREFIX) for i in inputs)
    saved = any(Path(i).is_dir() for i in inputs)
    if hf_config is not None and not hub:
        raise UserError("--hf-config: only for a hub dataset input (hf:NAME)")
    if split is not None and not (hub or saved):
        raise UserError(
            "--split: only for a saved datasets dir or a hub dataset (hf:NAME); files are "
            "read whole"
        )
