"""``synthlm synth list|preview|generate|verify|export``: procedural synthetic data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from synthlm.synth.verify import VerifyReport

synth_app = typer.Typer(
    help="Procedural synthetic data: spec -> verified token stores.", no_args_is_help=True
)

SPEC_HELP = (
    "Spec file (YAML/JSON), a Seqthetic flat JSON config, or a generated dataset's manifest.json."
)
OVERRIDES_HELP = "Dotted overrides such as domains.0.weight=2 or splits.train=0.8."


@synth_app.command("list")
def list_domains(
    as_json: bool = typer.Option(False, "--json", help="Print the catalogue as JSON."),
) -> None:
    """Every domain with its parameters, defaults and a one-line description."""
    from synthlm.synth.catalog import common_params, describe_domains

    domains = describe_domains()
    if as_json:
        typer.echo(json.dumps({"common": common_params(), "domains": domains}, indent=2))
        return
    typer.echo("Every domain takes `type` (below) and:")
    for p in common_params():
        typer.echo(f"    {p['name']:<16} = {json.dumps(p['default']):<28} {p['description']}")
    for d in domains:
        kind = "task" if d["task"] else "language"
        typer.echo(f"\n{d['name']}  [{d['family']}, {kind}]  {d['description']}")
        if d["reference"]:
            typer.echo(f"    reproduces: {d['reference']}")
        for p in d["params"]:
            typer.echo(f"    {p['name']:<16} = {json.dumps(p['default']):<28} {p['description']}")


@synth_app.command("preview")
def preview(
    spec: Path = typer.Argument(..., help=SPEC_HELP),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    count: int = typer.Option(3, "-n", "--count", min=1, help="Examples per domain."),
    domain: str = typer.Option(None, "--domain", "-d", help="Only this domain (by name)."),
    ids: bool = typer.Option(False, "--ids", help="Show raw token ids instead of symbolic names."),
    seed: int = typer.Option(None, "--seed", help="Seed (default: the spec's, else 0)."),
    width: int = typer.Option(40, min=1, help="Tokens shown per part before eliding."),
) -> None:
    """Show the first sequences of each domain, with promoter / input / marker / output apart."""
    from rich.console import Console

    from synthlm.synth.preview import preview_examples, render
    from synthlm.synth.spec import load_spec

    loaded = load_spec(
        spec, overrides or [], seed=seed, num_tokens=None if _has_tokens(spec) else 1
    )
    examples, domains = preview_examples(loaded, count, domain)
    console = Console(highlight=False, soft_wrap=True)
    for line in render(examples, domains, symbols=not ids, width=width):
        console.print(line)


def _has_tokens(spec: Path) -> bool:
    """Preview does not need a token budget; supply a dummy one when the spec has none."""
    from synthlm.config import load_yaml

    raw = load_yaml(spec)
    return any(k in raw for k in ("num_tokens", "num_token", "spec"))


@synth_app.command("generate")
def generate(
    spec: Path = typer.Argument(..., help=SPEC_HELP),
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset directory."),
    tokens: str = typer.Option(
        None,
        "--tokens",
        "--num-token",
        "--num_token",
        help="Token budget, e.g. 20K, 5M (overrides num_tokens).",
    ),
    seed: int = typer.Option(None, "--seed", help="Seed, any int (overrides the spec's)."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Worker processes (output is identical for any count)."
    ),
    dedup_splits: bool = typer.Option(
        False, "--dedup-splits", help="Drop valid/test sequences that also occur in train."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing non-empty --out directory."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Generate train/valid/test token stores with loss masks, manifest.json and a dataset card."""
    from synthlm.synth.build import build_dataset as run
    from synthlm.synth.spec import load_spec

    loaded = load_spec(spec, overrides or [], num_tokens=tokens, seed=seed)
    if loaded.seed is None and not quiet:
        typer.echo(
            "note: no seed given; a fresh one is drawn and recorded in manifest.json", err=True
        )
    manifest = run(
        loaded, out, workers=workers, dedup_splits=dedup_splits, overwrite=overwrite, quiet=quiet
    )
    if quiet:
        return
    typer.echo(
        f"wrote {out}: {manifest['num_tokens']:,} tokens "
        f"({manifest['num_tokens_requested']:,} requested), seed {manifest['seed']}, "
        f"vocab_size {manifest['layout']['vocab_size']}"
    )
    for split, info in manifest["splits"].items():
        if info.get("absent"):
            typer.echo(
                f"  {split:<5} absent: no sequences, so no store was written (see manifest.json)"
            )
            continue
        overlap = sum(d["overlap_with_train"] for d in info["domains"].values())
        removed = sum(d["removed"] for d in info["domains"].values())
        extra = (
            f", overlap with train {overlap}" + (f" (removed {removed})" if removed else "")
            if split != "train"
            else ""
        )
        typer.echo(
            f"  {split:<5} {info['sequences']:>9,} sequences {info['tokens']:>12,} tokens{extra}"
        )


@synth_app.command("verify")
def verify(
    directory: Path = typer.Argument(
        ..., help="Dataset directory written by synthlm synth generate."
    ),
    split: list[str] = typer.Option(
        None, "--split", help="Only these splits (repeatable; default all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run every domain's verify over the stored sequences; print the pass rate per domain."""
    from synthlm.progress import progress_bar
    from synthlm.synth import load_synthetic
    from synthlm.synth.verify import verify_dataset

    dataset = load_synthetic(directory)
    splits = _verify_splits(dataset.manifest["splits"], split, directory)
    total = sum(dataset.manifest["splits"][s]["tokens"] for s in splits)
    with progress_bar(
        total=total, unit="tok", unit_scale=True, desc="synth verify", disable=quiet, leave=False
    ) as bar:
        report = verify_dataset(dataset, splits, progress=bar)
    if as_json:
        typer.echo(json.dumps(_report_json(report), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _verify_splits(recorded: dict, requested: list[str] | None, directory: Path) -> tuple[str, ...]:
    """The splits to verify: the present ones by default; a requested split that is unknown or
    absent is an error (its stores do not exist, so "all verify" would claim nothing)."""
    from synthlm.errors import UserError
    from synthlm.synth.spec import SPLITS

    present = [s for s in SPLITS if not recorded.get(s, {}).get("absent")]
    for name in requested or []:
        if name not in SPLITS:
            raise UserError(f"--split {name!r}: choose from {', '.join(SPLITS)}")
        if name not in present:
            raise UserError(
                f"--split {name!r}: {directory} has no {name} split (its manifest marks it "
                f"absent: no sequences); choose from {', '.join(present) or 'none'}"
            )
    return tuple(dict.fromkeys(requested or present))


def _report_json(report: VerifyReport) -> dict:
    """``--json``: the report, with rate null for a domain absent from a split."""
    return {
        "ok": report.ok,
        "checked": report.checked,
        "problems": report.problems,
        "unchecked_domains": report.unchecked_domains(),
        "splits": {
            s: {n: {**vars(r), "rate": r.rate} for n, r in d.items()}
            for s, d in report.splits.items()
        },
    }


def _checked_eod(eod: int, tok) -> int:
    """An --eod the tokenizer reads as text (``e``, ``the``) would end every exported document
    with a word; the end-of-document id must be one of its special or reserved ids."""
    from synthlm.errors import UserError

    specials = {i: role for role, i in tok.special_ids().items()}
    if eod in specials or eod in tok.extra_ids or eod >= tok.vocab_size:
        return eod  # past the vocabulary: a new id, checked against the synthetic ids later
    named = ", ".join(f"{role} {i}" for i, role in sorted(specials.items())) or "none"
    raise UserError(
        f"--eod {eod}: an ordinary token of the tokenizer {tok.path} "
        f"({tok.decode([eod])!r}), so every document would end with text; give one of its "
        f"special ids ({named}) or leave --eod out for its eos"
    )


@synth_app.command("export")
def export(
    directory: Path = typer.Argument(
        ..., help="Dataset directory written by synthlm synth generate."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output directory (SPLIT_text_document / SPLIT_label_document stores).",
    ),
    tokenizer: str = typer.Option(
        None,
        "--tokenizer",
        help="The target model's tokenizer: --offset defaults to (and must be at least) its "
        "vocab size, --eod to its eos id.",
    ),
    offset: int = typer.Option(
        None,
        "--offset",
        help="Added to every synthetic id (the first id past the natural vocabulary).",
    ),
    eod: int = typer.Option(None, "--eod", help="End-of-document id appended after each document."),
    vocab_size: int = typer.Option(
        None,
        "--vocab-size",
        help="The target model's vocabulary size (checked; default: just enough).",
    ),
    split: list[str] = typer.Option(
        None, "--split", help="Only these splits (repeatable; default all)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier export in --out."
    ),
) -> None:
    """Write the stores in a model's global id space with EOD, for Megatron-LM and GPT-NeoX."""
    from synthlm.errors import UserError
    from synthlm.synth.export import export_synthetic

    natural_vocab = None
    if tokenizer is not None:
        from synthlm.tokenizers import load_tokenizer

        tok = load_tokenizer(tokenizer)
        natural_vocab = tok.vocab_size  # synthetic ids must start past the tokenizer's
        offset = natural_vocab if offset is None else offset
        eod = tok.eos_id if eod is None else _checked_eod(eod, tok)
    if offset is None or eod is None:
        raise UserError("synth export: give --tokenizer, or both --offset and --eod")
    summary = export_synthetic(
        directory,
        out,
        offset=offset,
        eod=eod,
        vocab_size=vocab_size,
        splits=split or None,
        overwrite=overwrite,
        natural_vocab=natural_vocab,
    )
    lo, hi = summary["global_id_range"]
    typer.echo(
        f"wrote {out}: synthetic ids {lo}..{hi - 1}, eod {eod}, vocab_size {summary['vocab_size']}"
    )
    for name, info in summary["splits"].items():
        typer.echo(
            f"  {name:<5} {info['documents']:>9,} documents {info['tokens']:>12,} tokens  "
            f"{out / name}_text_document"
        )


def _print_report(report: VerifyReport) -> None:
    for split, domains in report.splits.items():
        typer.echo(f"{split}:")
        for name, r in domains.items():
            masks = f", {r.bad_masks} bad masks" if r.bad_masks else ""
            rate = "    n/a (none in this split)" if r.rate is None else f"{100 * r.rate:6.2f}%"
            typer.echo(f"  {name:<22} {r.passed:>8,}/{r.checked:<8,} {rate}{masks}")
            if r.first_failure:
                typer.echo(f"      first failure: {r.first_failure}")
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    for name in report.unchecked_domains():
        typer.echo(f"note: {name} has no sequence in the verified splits; nothing was checked")
    typer.echo(_verdict(report))


def _verdict(report: VerifyReport) -> str:
    """The last line; a verify that checked nothing says so rather than claiming a pass."""
    if report.ok:
        return f"all sequences verify ({report.checked:,} checked)"
    if not report.checked:
        return "VERIFY FAILED: no sequence was checked"
    return "VERIFY FAILED"


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")
