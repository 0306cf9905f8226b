"""Render chat conversations to token ids with a per-token "assistant" mask, for SFT.

Why character spans instead of ``apply_chat_template(return_assistant_tokens_mask=True)``:
that flag only works with templates that carry ``{% generation %}`` markers, which most
shipped templates lack. Instead we render the conversation prefix by prefix: the text added
when message ``i`` is appended is that message's span (templates are prefix-stable in
practice, and we check it). The full text is tokenized once with offsets, and a token belongs
to the assistant when its characters fall inside an assistant span. This works with any
template and any fast tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from synthlm.errors import UserError

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer

ROLES = ("system", "user", "assistant")

# Used for tokenizers without a chat template. Plain-text role markers, so it works with any
# vocabulary (a trained BPE need not know special chat tokens); the eos token closes each turn
# so generation stops after the assistant's answer.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def ensure_chat_template(tokenizer: HFTokenizer) -> Any:
    """Give an HF tokenizer the built-in template when it has none (returns the tokenizer)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def validate_messages(messages: Any, where: str) -> list[dict[str, str]]:
    """Check the ``messages`` field of one record; the error names the record."""
    if not isinstance(messages, list) or not messages:
        raise UserError(
            f"{where}: 'messages' must be a non-empty list of {{role, content}} objects"
        )
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise UserError(
                f"{where}: messages[{i}] must have role in {ROLES} and a string content, "
                f"got {message!r}"
            )
    if not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: the conversation has no assistant message to train on")
    return messages


def _render(
    tokenizer: HFTokenizer, messages: Sequence[dict[str, str]], prompt: bool = False
) -> str:
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=prompt
    )


def assistant_spans(
    tokenizer: HFTokenizer, messages: Sequence[dict[str, str]]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans of assistant answers in it.

    An answer's span starts after the generation prompt (the assistant header the template
    adds at inference time), so training covers exactly what the model must generate: the
    answer and its end-of-turn tokens.
    """
    text, spans, previous = "", [], ""
    for i, message in enumerate(messages):
        text = _render(tokenizer, messages[: i + 1])
        if not text.startswith(previous):
            raise UserError(
                "the chat template is not prefix-stable (rendering more messages changed "
                "earlier text); use objective.train_on=all or another template"
            )
        if message["role"] == "assistant":
            header = _render(tokenizer, messages[:i], prompt=True) if i else ""
            start = len(header) if header and text.startswith(header) else len(previous)
            spans.append((start, len(text)))
        previous = text
    return text, spans


def render_conversation(
    tokenizer: HFTokenizer, messages: Sequence[dict[str, str]]
) -> tuple[list[int], list[int]]:
    """Token ids of the whole conversation and a 0/1 mask marking assistant tokens."""
    ensure_chat_template(tokenizer)
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = []
    for start, end in encoded["offset_mapping"]:
        inside = any(a <= start and end <= b for a, b in spans) and end > start
        mask.append(1 if inside else 0)
    return list(encoded["input_ids"]), mask


def trained_template(config: dict[str, Any]) -> str | None:
    """The ``chat_template`` recorded by the first chat store among the run's training sources."""
    from synthlm.data.store import meta_path, normalize_prefix

    for source in (config.get("data") or {}).get("sources") or []:
        if (
            not isinstance(source, dict)
            or source.get("kind", "natural") != "natural"
            or not source.get("path")
        ):
            continue
        meta = meta_path(normalize_prefix(source["path"]))
        if not meta.is_file():
            continue
        try:
            template = json.loads(meta.read_text(encoding="utf-8")).get("chat_template")
        except (ValueError, AttributeError):
            continue  # an unreadable record is not a template; the default still works
        if isinstance(template, str) and template:
            return template
    return None
