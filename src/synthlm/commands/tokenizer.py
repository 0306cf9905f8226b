"""``synthlm tokenizer train|convert|info``: make, repair and look at tokenizers."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from synthlm.commands.tokenize import greedy_options

tokenizer_app = typer.Typer(help="Train, convert and inspect tokenizers.", no_args_is_help=True)


@tokenizer_app.command("train", cls=greedy_options("--input", "-i", "--keys", "-k"))
def train(
    inputs: list[str] = typer.Option(
        None,
        "--input",
        "-i",
        help="Training files, globs or dirs (any `synthlm tokenize` format); not needed "
        "for --kind byte.",
    ),
    kind: str = typer.Option(
        "bpe",
        "--kind",
        help="bpe (byte-level BPE), unigram (HF; not repeatable: two runs differ), "
        "sentencepiece, or byte.",
    ),
    vocab_size: int = typer.Option(
        None,
        "--vocab-size",
        help="Total ids, specials and extra tokens included (not used by --kind byte).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Directory to write the tokenizer into; loads with AutoTokenizer and synthlm.",
    ),
    extra_tokens: int = typer.Option(
        0,
        "--extra-tokens",
        help="Reserve this many <extra_id_N> ids at the end (sentinels, meta-language ids).",
    ),
    keys: list[str] = typer.Option(
        ["text"], "--keys", "-k", help="Fields holding the text in JSON/columnar inputs."
    ),
    txt_mode: str = typer.Option(
        "file", "--txt-mode", help="For .txt inputs: one document per 'file' or per 'line'."
    ),
    max_docs: int = typer.Option(
        None, "--max-docs", min=0, help="Train on at most this many input records."
    ),
    min_frequency: int = typer.Option(
        None, "--min-frequency", min=0, help="bpe: least count for a merge (default 2)."
    ),
    sp_model_type: str = typer.Option(
        None,
        "--sp-model-type",
        help="sentencepiece: bpe (Llama; the default) or unigram (T5; the default with "
        "--sp-defaults library).",
    ),
    sp_defaults: str = typer.Option(
        "synthlm",
        "--sp-defaults",
        help="sentencepiece: start from synthlm's Llama 2 recipe (byte fallback, digits split, "
        "no normalization) or from the 'library' defaults (unigram, nmt_nfkc, ...), as "
        "spm.SentencePieceTrainer.train has them.",
    ),
    sp_options: list[str] = typer.Option(
        None,
        "--sp-option",
        help="sentencepiece: KEY=VALUE, any SentencePiece trainer option (e.g. "
        "normalization_rule_name=nmt_nfkc, byte_fallback=false); repeat for more. Checked "
        "before training and recorded in synthlm_tokenizer.json.",
    ),
    seed: int = typer.Option(
        None,
        "--seed",
        help="sentencepiece: picks the sample of input_sentence_size sentences when the corpus "
        "has more (default 0): the same seed, the same model. Recorded in "
        "synthlm_tokenizer.json.",
    ),
    bos_token: str = typer.Option("<s>", "--bos-token", help="Beginning-of-sequence token (id 1)."),
    eos_token: str = typer.Option(
        "</s>", "--eos-token", help="End-of-document token (id 2); always present."
    ),
    pad_token: str = typer.Option("<pad>", "--pad-token", help="Padding token (id 3)."),
    unk_token: str = typer.Option("<unk>", "--unk-token", help="Unknown token (id 0)."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace a tokenizer already saved in --out (other files there are kept).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No training progress output."),
    verbose: bool = typer.Option(
        False, "--verbose", help="Let SentencePiece print its own training log (long)."
    ),
) -> None:
    """Train a tokenizer: ids 0-3 are <unk> <s> </s> <pad>, extra tokens take the last ids."""
    from synthlm.errors import UserError
    from synthlm.fileio import check_output
    from synthlm.tokenizers import train_tokenizer

    if not inputs and kind != "byte":
        raise UserError(f"--input is required for --kind {kind}")
    if inputs and kind == "byte":
        raise UserError(
            "--kind byte learns nothing from text (its ids are the 256 bytes); drop --input"
        )
    check_output(out, kind="dir")  # before training, not after it
    tokens = {"unk": unk_token, "bos": bos_token, "eos": eos_token, "pad": pad_token}
    tok = train_tokenizer(
        inputs or [],
        kind,
        vocab_size,
        out,
        extra_tokens=extra_tokens,
        special_tokens=tokens,
        keys=keys,
        txt_mode=txt_mode,
        max_docs=max_docs,
        min_frequency=min_frequency,
        sp_model_type=sp_model_type,
        sp_defaults=sp_defaults,
        sp_options=sp_options or (),
        seed=seed,
        overwrite=overwrite,
        quiet=quiet,
        verbose=verbose,
    )
    typer.echo(
        f"wrote {out}: {tok.kind}, {tok.vocab_size} ids, specials {tok.special_ids()}, "
        f"{len(tok.extra_ids)} extra tokens"
    )


@tokenizer_app.command("convert")
def convert(
    spec: str = typer.Argument(
        ...,
        help="Any tokenizer synthlm loads: dir, tokenizer.json, vocab.json, .model, "
        "'byte', hub name.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Directory to write (AutoTokenizer- and synthlm-loadable)."
    ),
    add_pad: bool = typer.Option(
        False,
        "--add-pad",
        help="Add a <pad> token at the end if the tokenizer has none (e.g. Llama 2's "
        "SentencePiece).",
    ),
    extra_tokens: int = typer.Option(
        0, "--extra-tokens", help="Append this many more <extra_id_N> tokens at the end."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace a tokenizer already saved in --out (other files there are kept).",
    ),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Allow custom tokenizer code from a hub repo."
    ),
) -> None:
    """Save a tokenizer as a dir every tool loads, optionally adding pad / extra tokens."""
    from synthlm.errors import UserError
    from synthlm.tokenizers import load_tokenizer

    if extra_tokens < 0:
        raise UserError(f"--extra-tokens must be >= 0, got {extra_tokens}")
    from synthlm.fileio import check_output

    check_output(out, kind="dir")
    tok = load_tokenizer(spec, trust_remote_code=trust_remote_code)
    if add_pad or extra_tokens:
        tok = tok.extend(pad=add_pad, extra_tokens=extra_tokens)
    tok.save(out, overwrite=overwrite, provenance={"converted_from": spec})
    typer.echo(
        f"wrote {out}: {tok.kind}, {tok.vocab_size} ids, specials {tok.special_ids()}, "
        f"{len(tok.extra_ids)} extra tokens"
    )


@tokenizer_app.command("info")
def info(
    spec: str = typer.Argument(..., help="Tokenizer to describe."),
    text: str = typer.Option(
        None, "--encode", help="Also encode this text and show the ids and their round trip."
    ),
) -> None:
    """Print kind, vocabulary size, special ids and extra-token range as JSON."""
    from synthlm.tokenizers import load_tokenizer

    tok = load_tokenizer(spec)
    report = {**tok.describe(), "special_ids": tok.special_ids()}
    if tok.extra_ids:
        report["extra_id_range"] = [tok.extra_ids[0], tok.extra_ids[-1]]
    if text is not None:
        ids = tok.encode(text)
        report["encoded"] = {
            "ids": ids,
            "decoded": tok.decode(ids),
            "lossless": tok.decode(ids) == text,
        }
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(tokenizer_app, name="tokenizer")
