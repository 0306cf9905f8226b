"""``synthlm chat --jsonl``: a scripted chat as JSON lines, one record out per record in.

Plain piped chat reads one message per line and prints each reply followed by a newline, which
is enough for a person reading along but not for a program: a message cannot hold a newline
(or be blank), and a reply that holds one cannot be told from two replies. Here every input
line is a JSON string (the message) or an object with a string ``content``, so a message may
hold any text, and every message gets exactly one JSON object on stdout:

- ``{"reply": TEXT, "prompt_tokens": N, "dropped_turns": K}`` (``K`` oldest turns were
  dropped to fit the context), or
- ``{"reply": null, "error": WHY}`` when the message cannot fit the context at all;

``/reset`` (as the message) answers ``{"reset": true}``; ``/exit`` ends the session. Blank
input lines are not records and are skipped; a line that is not a message stops the session
with exit 2, naming the line, after the replies already written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from synthlm.errors import UserError
from synthlm.inference.chat import (
    EXIT_COMMANDS,
    RESET_COMMAND,
    ChatSession,
    ContextOverflow,
)


def read_json_messages(lines: Iterable[str]) -> Iterator[str]:
    """The message of each non-blank line; a line that holds none is an error naming it."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        yield message_of(line, number)


def message_of(line: str, number: int) -> str:
    where = f"stdin line {number}"
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{where}: not JSON ({exc.msg}); --jsonl reads one message per line, as a JSON "
            f'string ("hello") or object ({{"content": "hello"}})'
        ) from None
    content = record.get("content") if isinstance(record, dict) else record
    if not isinstance(content, str):
        raise UserError(
            f'{where}: expected a JSON string or an object with a string "content", '
            f"got {line.strip()[:80]}"
        )
    if not content.strip():
        raise UserError(f"{where}: the message is empty")
    return content


def run_jsonl_session(
    session: ChatSession,
    messages: Iterable[str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Answer each message with one JSON record on ``out``; returns the replies given."""
    import torch

    torch.manual_seed(session.sampling.seed)  # as run_session: a scripted chat replays exactly
    replies = 0
    for message in messages:
        command = message.strip()
        if command in EXIT_COMMANDS:
            break
        if command == RESET_COMMAND:
            session.conversation.reset()
            record: dict[str, Any] = {"reset": True}
        else:
            record = answer_record(session, message, err)
            replies += record["reply"] is not None
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return replies


def answer_record(session: ChatSession, message: str, err: TextIO) -> dict[str, Any]:
    try:
        prompt = session.conversation.prompt(message)
    except ContextOverflow as exc:
        return {"reply": None, "error": f"not sent: {exc}"}
    reply = session.answer(message, prompt, lambda _text: None, err)
    return {"reply": reply, "prompt_tokens": len(prompt.ids), "dropped_turns": prompt.dropped}
