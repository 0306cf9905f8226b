"""``synthlm generate CKPT``: sample text unconditionally, from a prompt file, or interactively."""

from __future__ import annotations

from pathlib import Path

import typer


def generate_command(
    checkpoint: Path = typer.Argument(
        ..., help="HF model dir: RUN/final or RUN/checkpoints/step-N."
    ),
    input_file: Path = typer.Option(
        None, "--input", "-i", help="Prompt file: one prompt per line (or see --prompt-end)."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write JSONL records here instead of printing text."
    ),
    prompt: list[str] = typer.Option(
        None, "--prompt", "-p", help="A prompt given inline; repeatable."
    ),
    prompt_end: str = typer.Option(
        None,
        "--prompt-end",
        help="Separator between prompts in --input (escapes like \\n allowed; default: a newline).",
    ),
    interactive_mode: bool = typer.Option(
        False, "--interactive", help="Read prompts from the terminal until EOF or /exit."
    ),
    temperature: float = typer.Option(1.0, "--temperature", help="0 = greedy (deterministic)."),
    top_k: int = typer.Option(
        0, "--top-k", help="Sample among the k most likely tokens (0 = off)."
    ),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (1 = off)."),
    repetition_penalty: float = typer.Option(
        1.0, "--repetition-penalty", help="> 1 discourages repeats."
    ),
    max_new_tokens: int = typer.Option(
        128, "--max-new-tokens", "-n", help="Tokens generated per sample at most."
    ),
    num_samples: int = typer.Option(
        1, "--num-samples", help="Samples per prompt (needs temperature > 0 when > 1)."
    ),
    stop: list[str] = typer.Option(
        None,
        "--stop",
        help="Stop string (repeatable, escapes like \\n allowed); the text is cut before it.",
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Sampling seed: each sample has its own stream (seed, prompt number, sample number), so "
        "samples do not depend on --batch-size.",
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", "-b", min=1, help="Sequences generated together."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    dtype: str = typer.Option(
        "auto", "--dtype", help="auto (as saved), float32, bfloat16 or float16."
    ),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", "-t", help="Tokenizer dir (default: the checkpoint's)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    synthetic: Path = typer.Option(
        None,
        "--synthetic",
        help="Synthetic dataset dir: prompts are its symbols (e.g. 'P.copy0 87 62 <ans>') or "
        "local ids, shifted by the checkpoint's meta offset; continuations print in symbols.",
    ),
) -> None:
    """Generate text with a KV cache, batched; records carry prompt, text, token counts, finished, seconds."""
    from synthlm.filecheck import check_checkpoint_files
    from synthlm.fileio import check_output

    if output is not None:
        check_output(output, what="--output")  # before torch is even imported
    check_checkpoint_files(checkpoint)
    from synthlm.errors import UserError
    from synthlm.evaluate.checkpoint import check_checkpoint_dir, load_checkpoint
    from synthlm.inference.sampling import (
        decode_escapes,
        generate_texts,
        interactive,
        read_prompts,
        sampling_from_cli,
        write_completions,
    )

    if sum([input_file is not None, bool(prompt), interactive_mode]) > 1:
        raise UserError("choose one of --input, --prompt and --interactive")
    if prompt_end is not None and input_file is None:
        raise UserError("--prompt-end: only splits a prompt file; use it with --input FILE")
    if interactive_mode and output is not None:
        raise UserError(
            "--interactive prints to the terminal; use --output with --input, --prompt or "
            "unconditional sampling"
        )
    sampling = sampling_from_cli(
        "synthlm generate",
        stop,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        max_new_tokens=max_new_tokens,
        num_samples=num_samples,
        seed=seed,
    )
    check_checkpoint_dir(checkpoint)
    prompts = (
        read_prompts(input_file, decode_escapes("\\n" if prompt_end is None else prompt_end))
        if input_file is not None
        else (list(prompt) if prompt else None)
    )
    if synthetic is not None:
        check_synthetic_options(
            checkpoint, synthetic, interactive=interactive_mode, stop=stop, prompts=prompts
        )
    ckpt = load_checkpoint(checkpoint, device=device, dtype=dtype, tokenizer=tokenizer, quiet=quiet)
    say_unused_settings(ckpt.model, checkpoint)
    if synthetic is not None:
        run_synthetic(ckpt, synthetic, prompts, sampling, batch_size=batch_size, output=output)
        return
    not_text = range(
        ckpt.layout.natural_size, ckpt.layout.model_vocab_size
    )  # meta-language and padding ids
    if interactive_mode:
        interactive(ckpt.model, ckpt.tokenizer, sampling, suppress_ids=not_text)
        return
    completions = generate_texts(
        ckpt.model,
        ckpt.tokenizer,
        prompts,
        sampling,
        batch_size=batch_size,
        progress=not quiet,
        suppress_ids=not_text,
    )
    if output is not None:
        say_written(write_completions(completions, output), output)
        return
    for completion in completions:
        # a seq2seq answer is not a continuation of its prompt: print it alone
        typer.echo(completion.text if ckpt.seq2seq else completion.prompt + completion.text)
        if completion.finished and not completion.text:  # else it reads as a missing answer
            typer.echo(
                "(empty completion: the end of text or a --stop string came first)", err=True
            )
        typer.echo("-" * 40)


def check_synthetic_options(
    checkpoint: Path, synthetic: Path, *, interactive: bool, stop, prompts: list[str] | None
) -> None:
    """--synthetic continues prompts written in a dataset's symbols: only the flags that fit it,
    and every prompt must read as the dataset's symbols (checked before the model loads)."""
    from synthlm.errors import UserError
    from synthlm.evaluate.checkpoint import refuse_encoder_decoder
    from synthlm.synth.manifest import is_synthetic_dataset

    if not is_synthetic_dataset(synthetic):
        raise UserError(
            f"--synthetic {synthetic}: not a synthetic dataset dir (no manifest.json); "
            "make one with `synthlm synth generate`"
        )
    if interactive or stop or not prompts:
        raise UserError(
            "--synthetic needs --prompt or --input (symbol prompts) and takes neither "
            "--interactive nor --stop"
        )
    refuse_encoder_decoder(
        checkpoint, "synthlm generate --synthetic", "it continues prompts of shifted synthetic ids"
    )
    from synthlm.data.synthetic_layouts import check_layout, recorded_layouts
    from synthlm.evaluate.checkpoint import read_info
    from synthlm.inference.synthetic_ids import SymbolTable

    trained = recorded_layouts(read_info(Path(checkpoint)))
    check_layout(synthetic, trained, f"--synthetic {synthetic}", str(checkpoint))

    table = SymbolTable.from_dataset(synthetic, meta_offset=0, eos_id=-1)
    for i, text in enumerate(prompts):
        table.encode(text, what=f"prompt {i + 1}")


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
        say_written(write_completions(completions, output), output)
        return
    for completion in completions:
        typer.echo(f"{completion.prompt} | {completion.text}")


def say_unused_settings(model, checkpoint: Path) -> None:
    """Name, once on stderr, the decoding settings of the checkpoint's generation_config.json
    that synthlm does not use (it decodes with its flags only), and the flags to set instead."""
    from synthlm.inference.sampling import GENERATE_FLAGS, unused_settings_note

    note = unused_settings_note(model, checkpoint, GENERATE_FLAGS)
    if note:
        typer.echo(note, err=True)


def say_written(count: int, output: Path) -> None:
    """One line for both kinds of prompts, on stdout like every other command's ``wrote`` line
    (with --output, stdout carries no samples, so scripts can read it)."""
    typer.echo(f"wrote {count} sample{'' if count == 1 else 's'} to {output}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
