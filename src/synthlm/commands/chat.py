"""``synthlm chat CKPT``: talk to a checkpoint in the terminal (or through a pipe)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

HELP = (
    "Chat with a checkpoint: multi-turn memory, streamed replies, sampling as in `synthlm "
    "generate`.\n\n"
    "Type a message and press Enter; /reset forgets the conversation, /exit (or end of input) "
    "quits. A reply ends at EOS or at the chat template's end of turn (e.g. <|im_end|>); "
    "decoding takes the flags only, not the checkpoint's generation_config.json. "
    "When the conversation outgrows the context, the oldest turns are dropped with a "
    "notice. With stdin not a terminal, each input line is one message and stdout gets only "
    "the replies, each ended by a newline (notices go to stderr); --jsonl makes that a "
    "protocol for programs: JSON messages in, one JSON record out per message."
)


def chat_command(
    checkpoint: Path = typer.Argument(
        ..., help="HF model dir: RUN/final or RUN/checkpoints/step-N."
    ),
    system: str = typer.Option(
        None, "--system", "-s", help="System prompt, kept at the start of every prompt."
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
        None,
        "--max-new-tokens",
        "-n",
        min=1,
        help="Tokens per reply at most (default: 256, or half the context when that is less).",
    ),
    stop: list[str] = typer.Option(
        None,
        "--stop",
        help="Stop string (repeatable, escapes like \\n allowed); the reply is cut before it.",
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (one stream for the whole session)."),
    max_context: int = typer.Option(
        None,
        "--max-context",
        min=2,
        help="Tokens of prompt + reply (default: the training seq_len, else the model's "
        "positions).",
    ),
    chat_template: Path = typer.Option(
        None,
        "--chat-template",
        help="Jinja chat template file (default: the tokenizer's, the training data's, or "
        "synthlm's).",
    ),
    show_prompt: bool = typer.Option(
        False, "--show-prompt", help="Print each rendered prompt to stderr before the reply."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    dtype: str = typer.Option(
        "auto", "--dtype", help="auto (as saved), float32, bfloat16 or float16."
    ),
    tokenizer: Path = typer.Option(
        None, "--tokenizer", "-t", help="Tokenizer dir (default: the checkpoint's)."
    ),
    jsonl: bool = typer.Option(
        False,
        "--jsonl",
        help='Scripted chat: each stdin line a JSON string or {"content": ...} (any text, '
        'newlines included); each message answered by one JSON line {"reply", '
        '"prompt_tokens", "dropped_turns"} on stdout.',
    ),
) -> None:
    from synthlm.filecheck import check_checkpoint_files

    check_checkpoint_files(checkpoint)  # a truncated copy is named before torch loads anything
    from synthlm.inference.chat import (
        DEFAULT_REPLY_TOKENS,
        open_session,
        read_messages,
        run_session,
    )
    from synthlm.inference.sampling import sampling_from_cli

    sampling = sampling_from_cli(
        "synthlm chat",
        stop,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        max_new_tokens=max_new_tokens or DEFAULT_REPLY_TOKENS,
        seed=seed,
    )
    interactive = sys.stdin.isatty() and not jsonl
    session = open_session(
        checkpoint,
        sampling,
        system=system,
        max_context=max_context,
        reply_fits_context=max_new_tokens is None,
        chat_template=chat_template,
        show_prompt=show_prompt,
        device=device,
        dtype=dtype,
        tokenizer=tokenizer,
        quiet=not interactive,
    )
    if interactive:
        typer.echo("chat: /reset forgets the conversation, /exit quits", err=True)
    if jsonl:
        from synthlm.inference.chat_jsonl import read_json_messages, run_jsonl_session

        run_jsonl_session(session, read_json_messages(sys.stdin))
        return
    run_session(session, read_messages(sys.stdin, interactive))


def register(app: typer.Typer) -> None:
    app.command("chat", help=HELP)(chat_command)
