"""Render chat conversations to token ids with a per-token "assistant" mask, for SFT.

Why character spans instead of ``apply_chat_template(return_assistant_tokens_mask=True)``:
that flag only works with templates that carry ``{% generation %}`` markers, which most
shipped templates lack. Instead the whole conversation is rendered once, as the model will
see it, and each assistant message is located in that text, in order:

- its span starts where the generation prompt ends (the assistant header the template adds at
  inference time, rendered for the conversation up to that message), so the model learns
  everything it must write after that prompt (a Qwen3 ``<think></think>`` block included);
  when the generation prompt is not a prefix of the rendered turn (nemotron_3_nano prompts
  ``<think>\n`` but renders ``<think></think>``), the span starts at the message's own text:
  the header is never a target;
- it ends after the template's end of turn (``<|im_end|>\n``, ``</s>\n``): what the template
  writes after the message when the conversation ends there, as far as the rendered
  conversation writes it too (Phi-3 adds EOS only after the last turn).

Rendering once accepts templates whose earlier text changes as the conversation grows (Qwen3
drops earlier reasoning, Phi-3 appends EOS to a finished conversation, gpt-oss closes the last
turn with ``<|return|>``). The text is tokenized once with offsets, and a token is a target
when its characters fall inside an assistant span. This works with any fast tokenizer.
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
    """The rendered conversation and the character spans of its assistant turns (see the
    module docstring): from the end of the generation prompt, or from the message's own text
    when the prompt is not a prefix of the turn, through the template's end of turn."""
    text = _render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    cursor = 0  # everything before it belongs to earlier messages
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            span = _assistant_span(tokenizer, messages, i, text, cursor)
            spans.append(span)
            cursor = span[1]
        else:
            cursor = _past(text, message["content"], cursor)
    return text, spans


def _past(text: str, content: str, cursor: int) -> int:
    """Where a non-assistant message's text ends (the cursor stays when the template rewrote
    it: a system prompt merged into the first user turn still comes before the answer)."""
    if not content.strip():
        return cursor
    at = text.find(content, cursor)
    return at + len(content) if at >= 0 else cursor


def _assistant_span(
    tokenizer: HFTokenizer,
    messages: Sequence[dict[str, str]],
    i: int,
    text: str,
    cursor: int,
) -> tuple[int, int]:
    prompt = _generation_prompt(tokenizer, messages[:i])
    after_prompt = prompt is not None and len(prompt) >= cursor and text.startswith(prompt)
    search = len(prompt) if after_prompt else max(cursor, _common_prefix(prompt or "", text))
    found = _find_answer(text, messages[i]["content"], search)
    if found is None:
        raise UserError(
            f"the chat template does not write assistant message {i + 1}'s text as given (it "
            "drops or rewrites it), so its tokens cannot be told from the template's; give the "
            "text as the template writes it, or use a template that writes messages verbatim "
            "(a chat_template.jinja in the tokenizer dir replaces the tokenizer's own)"
        )
    start, end = found
    return (search if after_prompt else start), _turn_end(
        tokenizer, messages[: i + 1], prompt, text, end
    )


def _turn_end(
    tokenizer: HFTokenizer,
    upto: Sequence[dict[str, str]],
    prompt: str | None,
    text: str,
    end: int,
) -> int:
    """Where an answer's turn ends in ``text``: past the template's closing as far as the
    conversation writes it too, or, for templates that close a turn only by opening the next
    (GLM: ``<|user|>``), past that marker, which is what the model must learn to stop with."""
    closing = _closing(tokenizer, upto, prompt)
    matched = _common_prefix(closing, text[end:])
    if matched < len(closing):  # the template closes this turn differently mid-conversation
        matched = _last_boundary(tokenizer, closing, matched)
    end += matched
    if closing.strip():
        return end
    marker = end_of_turn(tokenizer)
    gap = len(text[end:]) - len(text[end:].lstrip())
    if marker and text.startswith(marker, end + gap):
        return end + gap + len(marker)
    return end


def _generation_prompt(tokenizer: HFTokenizer, before: Sequence[dict[str, str]]) -> str | None:
    """The conversation before an answer, with the generation prompt: what the model is given
    when it writes that answer (None when the template cannot render it, e.g. no user yet)."""
    from jinja2 import TemplateError

    if not before:
        return None
    try:
        return _render(tokenizer, before, prompt=True)
    except TemplateError:
        return None


def _answer_forms(content: str) -> list[str]:
    """An assistant message's text as given, then as templates commonly rewrite it: stripped,
    and without the reasoning before ``</think>`` (Qwen3 and DeepSeek-R1 drop it from earlier
    turns)."""
    return list(dict.fromkeys([content, content.strip(), content.split("</think>")[-1].strip()]))


def _find_answer(text: str, content: str, search: int) -> tuple[int, int] | None:
    """(start, end) of an assistant message's text at or after ``search``."""
    for form in _answer_forms(content):
        at = text.find(form, search)
        if at >= 0:
            return at, at + len(form)
    return None


def _closing(
    tokenizer: HFTokenizer, upto: Sequence[dict[str, str]], prompt: str | None = None
) -> str:
    """What the template writes after the last message's text when the conversation ends with
    it (``<|im_end|>\n``; Phi-3 adds EOS): the end of turn the model must learn to write.
    ``prompt``, the generation prompt before it, places an empty message."""
    rendered = _render(tokenizer, upto)
    for form in _answer_forms(upto[-1]["content"]):
        if not form:
            return rendered[len(prompt) :] if prompt and rendered.startswith(prompt) else ""
        at = rendered.rfind(form)
        if at >= 0:
            return rendered[at + len(form) :]
    return ""


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _last_boundary(tokenizer: HFTokenizer, closing: str, limit: int) -> int:
    """The longest part of ``closing`` up to ``limit`` characters that ends on a whole piece: a
    special token or a line break. Phi-3 ends its last turn ``<|end|>\n<|endoftext|>`` and the
    others ``<|end|>\n<|user|>``; the shared ``<|`` of the next header is not the answer's."""
    specials = {*getattr(tokenizer, "all_special_tokens", []), *tokenizer.get_added_vocab()}
    specials.discard("")
    best = 0
    for end in range(1, limit + 1):
        piece = closing[:end]
        if closing[end - 1].isspace() or any(piece.endswith(t) for t in specials):
            best = end
    return best


def end_of_turn(tokenizer: HFTokenizer) -> str | None:
    """The marker that ends an assistant turn in the tokenizer's chat template (``<|im_end|>``,
    ``<|eot_id|>``, ``</s>``): the first line of what the template writes after a reply, else
    the text that opens the next user turn. A chat stops there, as training taught the model
    (None: the template writes nothing between turns)."""
    probe = "synthlm probe reply"
    user = {"role": "user", "content": "synthlm probe message"}
    reply = {"role": "assistant", "content": probe}
    closing = _closing(tokenizer, [user, reply]).strip()
    if closing:
        return closing.splitlines()[0].strip() or None
    follow = {"role": "user", "content": "synthlm probe follow-up"}
    rendered = _render(tokenizer, [user, reply, follow])
    between = rendered[rendered.rfind(probe) + len(probe) : rendered.rfind(follow["content"])]
    return between.strip().splitlines()[0].strip() if between.strip() else None


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
