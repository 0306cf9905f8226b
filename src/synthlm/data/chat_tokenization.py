"""``synthlm tokenize --chat``: conversations -> one token store whose loss mask marks the assistant.

Each record holds ``{"messages": [{"role", "content"}, ...]}`` (the field is ``--keys``, default
``messages``). It is rendered with the tokenizer's chat template, or synthlm's plain default for
tokenizers without one (:mod:`synthlm.text.chat_format`), and stored with a uint8 mask that is 1
on what the model must write after each generation prompt: the assistant's text, anything the
template puts between the prompt and it (Qwen3's ``<think></think>``), and the template's end of
turn (``<|im_end|>\n``, ``</s>\n``: the marker and the line break the template writes after
it), so ``objective: sft`` trains on nothing else and the model learns where a reply ends.

Everything but the per-chunk work is the plain pipeline's (:mod:`synthlm.data.tokenization`, the pool in
:mod:`synthlm.data.encoding`): the same
record ranges (``--max-docs``, ``--shard``), the ordered process pool (bytes never depend on
``--workers``), the ``file:line`` bad-record reports under ``--on-error``, and the atomic writer.
This path is not the hot path (instruction sets are thousands of conversations, not billions of
tokens), so it renders one conversation at a time: once whole, plus once per assistant message
for its generation prompt and its end of turn. A conversation whose answers the template does
not write as given is a bad record that says so (no mask can tell its tokens apart).

Every conversation ends with EOS (added, with mask 0, unless the template already ends with it):
packed samples then separate conversations the way pretraining separates documents, and the
store records ``append_eod`` so the mixture adds no second, trained EOS. The template used is
recorded in ``PREFIX.json`` (``chat_template``); training saves it beside every checkpoint's
tokenizer (``chat_template.jinja``), and ``synthlm chat`` prompts the model with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthlm.data.encoding import ChunkResult, Options
from synthlm.data.readers import BadRecord, Chunk, Source
from synthlm.data.readers import _records as parse_records  # the pipeline's own JSON-lines parser
from synthlm.data.store import dtype_for_vocab
from synthlm.errors import UserError
from synthlm.text.chat_format import DEFAULT_CHAT_TEMPLATE, render_conversation, validate_messages
from synthlm.tokenizers import BaseTokenizer

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer

CHAT_KEY = "messages"
CHAT_FORMATS = ("jsonl", "json", "parquet", "csv", "hf")


def prepare_chat(
    tok: BaseTokenizer, spec: str | Path | BaseTokenizer, options: Options, sources: list[Source]
) -> ChatSetup:
    """Check chat-mode options and inputs, and build the HF tokenizer with its template."""
    if len(options.keys) != 1:
        raise UserError(
            f"--chat reads conversations from one field; got --keys {' '.join(options.keys)}"
        )
    if options.prepend_bos:
        raise UserError(
            "--prepend-bos: with --chat the chat template decides where BOS goes; drop "
            "--prepend-bos"
        )
    if tok.eos_id is None:
        raise UserError(
            f"--chat: the tokenizer {tok.path} has no eos token; conversations must end with one"
        )
    bad = next((s for s in sources if s.format not in CHAT_FORMATS), None)
    if bad is not None:
        raise UserError(
            f"{bad.path}: --chat needs records with a {options.keys[0]!r} list "
            f"({', '.join(CHAT_FORMATS)} inputs), not .{bad.format}"
        )
    hf = chat_tokenizer(tok, spec)
    return ChatSetup(
        hf,
        {
            "source": "synthlm tokenize --chat",
            "chat": True,
            "chat_template": hf.chat_template,
            "loss_mask": "assistant",
            "append_eod": True,
        },
    )


def chat_tokenizer(tok: BaseTokenizer, spec: str | Path | BaseTokenizer) -> Any:
    """The tokenizer as a transformers fast tokenizer (offsets are needed for the masks), carrying
    the template saved beside it when there is one, else the built-in default."""
    from synthlm.tokenizers import to_hf

    hf = to_hf(
        tok
    )  # synthlm's own save drops templates, so read the one saved beside the tokenizer
    directory = Path(str(spec)) if not isinstance(spec, BaseTokenizer) else None
    template = (
        saved_chat_template(directory) if directory is not None and directory.is_dir() else None
    )
    hf.chat_template = template or DEFAULT_CHAT_TEMPLATE
    return hf


def saved_chat_template(directory: Path) -> str | None:
    """The chat template an HF tokenizer dir holds: ``chat_template.jinja`` (transformers >= 4.43)
    or ``tokenizer_config.json``'s ``chat_template`` (a string, or named templates: ``default``)."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = directory / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    except (ValueError, AttributeError):
        raise UserError(f"{config}: not a JSON object; cannot read its chat_template") from None
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template else None


class ChatChunkEncoder:
    """Chunk of conversation records -> ids and assistant masks (runs in worker processes)."""

    def __init__(self, tokenizer: HFTokenizer, options: Options) -> None:
        self.tokenizer = tokenizer
        self.key = options.keys[0]
        self.eos = int(tokenizer.eos_token_id)
        self.dtype = dtype_for_vocab(len(tokenizer))
        self._fix = None
        if options.ftfy:
            import ftfy

            self._fix = ftfy.fix_text

    def __call__(self, chunk: Chunk) -> ChunkResult:
        ids: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        bad: list[str] = []
        nbytes = 0
        values = self._values(chunk)
        for i, value in values:
            try:
                messages = self._messages(value, chunk.where(i))
                doc, mask, text_bytes = self._render(messages)
            except (BadRecord, UserError) as exc:
                where = chunk.where(i, exc.line) if isinstance(exc, BadRecord) else ""
                bad.append(f"{where}: {exc}" if where else str(exc))
                continue
            ids.append(doc)
            masks.append(mask)
            nbytes += text_bytes
        return self._result(chunk, ids, masks, bad, nbytes, blank=len(chunk) - len(values))

    def _values(self, chunk: Chunk) -> list[tuple[int, Any]]:
        """(record index, value of the conversation field or a BadRecord), blank lines dropped."""
        if chunk.kind == "columns":
            return list(enumerate(chunk.payload[self.key]))
        out: list[tuple[int, Any]] = []
        for i, record in enumerate(parse_records(chunk)):
            if record is None and chunk.kind == "jsonl":
                continue  # a blank line between records is not a record
            out.append((i, record if isinstance(record, BadRecord) else self._field(record)))
        return out

    def _field(self, record: Any) -> Any:
        if not isinstance(record, dict):
            return BadRecord(f"expected a JSON object, found {type(record).__name__}")
        if self.key not in record:
            present = ", ".join(map(str, list(record)[:10])) or "none"
            return BadRecord(f"missing key {self.key!r} (keys present: {present})")
        return record[self.key]

    def _messages(self, value: Any, where: str) -> list[dict[str, str]]:
        if isinstance(value, BadRecord):
            raise value
        if isinstance(value, str):  # csv / string columns hold the list as JSON text
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise BadRecord(
                    f"{self.key!r} is a string but not a JSON list of messages ({exc})"
                ) from None
        messages = validate_messages(value, where)
        if self._fix is not None:
            messages = [{**m, "content": self._fix(m["content"])} for m in messages]
        return messages

    def _render(self, messages: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray, int]:
        from jinja2 import TemplateError

        try:
            ids, mask = render_conversation(self.tokenizer, messages)
            text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        except TemplateError as exc:  # e.g. templates that demand alternating user/assistant turns
            raise BadRecord(f"the chat template rejected this conversation: {exc}") from None
        except UserError as exc:  # no mask can cover it: named by file and line, as others are
            raise BadRecord(str(exc)) from None
        if not ids or ids[-1] != self.eos:
            ids, mask = [*ids, self.eos], [*mask, 0]
        return (
            np.asarray(ids, dtype=self.dtype),
            np.asarray(mask, dtype=np.uint8),
            len(text.encode("utf-8", "ignore")),
        )

    def _result(
        self,
        chunk: Chunk,
        ids: list[np.ndarray],
        masks: list[np.ndarray],
        bad: list[str],
        nbytes: int,
        blank: int,
    ) -> ChunkResult:
        sizes = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=self.dtype)
        mask = np.concatenate(masks) if masks else np.zeros(0, dtype=np.uint8)
        return ChunkResult(
            {self.key: (flat, sizes)},
            len(chunk),
            {self.key: 0},
            bad,
            chunk.nbytes,
            {self.key: nbytes},
            masks={self.key: mask},
            blank=blank,
        )


@dataclass
class ChatSetup:
    """What the shared pipeline needs in chat mode: the per-chunk work, the tokenizer it runs
    with (built once, inherited by the workers), and the provenance added to ``PREFIX.json``."""

    tokenizer: HFTokenizer  # transformers fast tokenizer with a chat template
    metadata: dict[str, Any] = field(default_factory=dict)
    encoder: type = ChatChunkEncoder
