"""``synthlm chat CKPT``: a terminal conversation with a checkpoint, streamed, with memory.

Every turn re-renders the whole conversation (system prompt, earlier turns, the new message)
with the chat template the model was tuned with and generates the reply with transformers'
``generate`` (KV cache, sampling as in ``synthlm generate``), streaming the text as it decodes.
Prompts are rendered exactly as ``synthlm tokenize --chat`` rendered the training data (template
text, then the tokenizer without added special tokens), so the model sees the format it learned.

Which template: ``--chat-template FILE``, else the checkpoint tokenizer's own (synthlm saves the
template of a chat run's stores as ``chat_template.jinja`` in every checkpoint), else the one
recorded in the training stores (``PREFIX.json``; checkpoints written before that), else
synthlm's default (:mod:`synthlm.text.chat_format`).

A reply ends where the template ends an assistant turn (``<|im_end|>``, ``<|eot_id|>``,
``</s>``, derived by rendering a probe conversation), which is what training on chat stores
taught the model to write: as a stop token when the marker is one token, else as a stop
string. Nothing past it is shown or kept in the history. EOS and the checkpoint's own
``eos_token_id`` list stop a reply too.

Decoding takes its settings from the flags only, as ``synthlm generate`` does
(:func:`synthlm.inference.sampling.own_decoding`).

The context is a budget: prompt + ``max_new_tokens`` must fit ``max_context`` (default: the
training ``seq_len``, else the model's positions). When it does not, the oldest whole turns
(user message + reply) are dropped, with a notice; the system prompt always stays.

Replies go to stdout and everything else (notices, ``--show-prompt``) to stderr, so a scripted
session (stdin not a terminal) yields just the replies, each ended by a newline.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from synthlm.errors import UserError
from synthlm.inference.sampling import (
    CHAT_FLAGS,
    SamplingConfig,
    context_limit,
    generation_kwargs,
    own_decoding,
    special_ids,
    unused_settings_note,
)

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer

EXIT_COMMANDS = frozenset({"/exit", "/quit"})
RESET_COMMAND = "/reset"
DEFAULT_CONTEXT = 2048  # models whose config names no position limit
DEFAULT_REPLY_TOKENS = 256  # reply budget unless the context is shorter (see open_session)


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user said and what the model answered."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and how many of the oldest turns were dropped to fit it."""

    text: str
    ids: list[int]
    dropped: int


class ContextOverflow(UserError):
    """The new message alone (with the system prompt and the reply budget) exceeds the context."""


@dataclass
class Conversation:
    """The history of one chat; renders prompts that fit ``max_context`` tokens.

    ``reserve`` tokens are kept free for the reply (``max_new_tokens``).
    """

    tokenizer: HFTokenizer
    max_context: int
    reserve: int
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def messages(self, user: str, turns: Sequence[Turn] | None = None) -> list[dict[str, str]]:
        history = self.turns if turns is None else turns
        out = [{"role": "system", "content": self.system}] if self.system else []
        for turn in history:
            out += [
                {"role": "user", "content": turn.user},
                {"role": "assistant", "content": turn.assistant},
            ]
        return [*out, {"role": "user", "content": user}]

    def render(self, user: str, turns: Sequence[Turn] | None = None) -> tuple[str, list[int]]:
        """Template text (with the generation prompt) and its ids, as training tokenized them."""
        text = self.tokenizer.apply_chat_template(
            self.messages(user, turns), tokenize=False, add_generation_prompt=True
        )
        return text, list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, user: str) -> Prompt:
        """The prompt for ``user``'s message; forgets the oldest turns when they do not fit."""
        budget = self.max_context - self.reserve
        for dropped in range(len(self.turns) + 1):
            text, ids = self.render(user, self.turns[dropped:])
            if len(ids) <= budget:
                del self.turns[:dropped]
                return Prompt(text, ids, dropped)
        raise ContextOverflow(
            f"this message needs {len(ids)} prompt tokens, more than the {budget} left in the "
            f"{self.max_context}-token context after reserving {self.reserve} for the reply; "
            "shorten it, the --system prompt or --max-new-tokens, or raise --max-context"
        )

    def add(self, user: str, reply: str) -> None:
        self.turns.append(Turn(user, reply))

    def reset(self) -> None:
        self.turns.clear()


# ---------------------------------------------------------------------------------------------
# Choosing the template and the context


def resolve_template(
    tokenizer: HFTokenizer, config: dict[str, Any], override: str | None = None
) -> str:
    """The template to prompt with (see the module docstring for the order)."""
    from synthlm.text.chat_format import DEFAULT_CHAT_TEMPLATE, trained_template

    return (
        override
        or getattr(tokenizer, "chat_template", None)
        or trained_template(config)
        or DEFAULT_CHAT_TEMPLATE
    )


def read_template(path: Path) -> str:
    """The template text, refused when empty or not valid Jinja (an empty override would
    otherwise fall through to another template without a word)."""
    import jinja2

    if not Path(path).is_file():
        raise UserError(f"--chat-template {path}: no such file (expected a Jinja chat template)")
    text = Path(path).read_text(encoding="utf-8")
    if not text.strip():
        raise UserError(f"--chat-template {path}: the file is empty (expected a Jinja template)")
    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"--chat-template {path}: not a valid Jinja template: {exc}") from None
    return text


def check_template_renders(tokenizer: Any, where: str, system: str | None = None) -> None:
    """Render a one-message conversation (with the system prompt, when there is one) before
    the chat starts: a template that fails on a plain user message (an undefined name) or
    refuses a system prompt (Gemma: "System role not supported") fails here, named, not
    mid-chat with a traceback."""
    import jinja2

    user = [{"role": "user", "content": "hi"}]
    try:
        tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    except jinja2.TemplateError as exc:
        raise UserError(f"{where}: the chat template fails on a user message: {exc}") from None
    if not system:
        return
    try:
        tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, *user],
            tokenize=False,
            add_generation_prompt=True,
        )
    except jinja2.TemplateError as exc:
        raise UserError(
            f"{where}: the chat template refuses the --system prompt: {exc}; drop --system, "
            "or give a template that takes a system prompt (--chat-template FILE)"
        ) from None


def context_size(
    model: Any, seq_len: int | None, requested: int | None, max_new_tokens: int
) -> int:
    """Tokens a prompt plus its reply may span; fails fast when the reply alone cannot fit."""
    limit = context_limit(model)
    if requested is not None and limit is not None and requested > limit:
        raise UserError(f"--max-context {requested} exceeds the model's {limit} positions")
    size = requested or seq_len or limit or DEFAULT_CONTEXT
    if limit is not None:
        size = min(size, limit)
    if max_new_tokens >= size:
        raise UserError(
            f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in a "
            f"{size}-token context; lower it or raise --max-context"
        )
    return size


# ---------------------------------------------------------------------------------------------
# Generating one reply, streamed


class StopFilter:
    """Streams text but cuts it before the first stop string, holding back any tail that could
    still grow into one (so a stop string is never printed, even split across tokens)."""

    def __init__(self, stops: Sequence[str], write: Callable[[str], None]) -> None:
        self.stops = list(stops)
        self.write = write
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.pending = ""
        self.text = ""  # everything emitted
        self.stopped = False

    def feed(self, text: str, final: bool = False) -> None:
        if self.stopped:
            return
        self.pending += text
        cuts = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if cuts:
            self._emit(self.pending[: min(cuts)])
            self.stopped, self.pending = True, ""
            return
        keep = 0 if final else self.hold
        ready = self.pending[: len(self.pending) - keep] if keep else self.pending
        self.pending = self.pending[len(ready) :]
        self._emit(ready)

    def _emit(self, text: str) -> None:
        if text:
            self.text += text
            self.write(text)


def make_streamer(tokenizer: HFTokenizer, sink: StopFilter) -> Any:
    """transformers' TextStreamer (word-by-word decoding, prompt skipped), writing into ``sink``."""
    from transformers import TextStreamer

    class Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            sink.feed(text, final=stream_end)

    return Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


@dataclass(frozen=True)
class TurnEnd:
    """The template's end-of-turn marker (None: the template writes none) and its token id when
    it is one token; a marker of several tokens stops generation as a stop string."""

    text: str | None
    token_id: int | None = None

    @classmethod
    def of(cls, tokenizer: HFTokenizer) -> TurnEnd:
        from synthlm.text.chat_format import end_of_turn

        marker = end_of_turn(tokenizer)
        if not marker:
            return cls(None)
        ids = tokenizer(marker, add_special_tokens=False)["input_ids"]
        return cls(marker, int(ids[0]) if len(ids) == 1 else None)

    def stops(self, stops: Sequence[str]) -> list[str]:
        """Stop strings for the shown text: the user's and the marker (cut from the text
        whether or not generation stopped on its id)."""
        extra = [self.text] if self.text and self.text not in stops else []
        return [*stops, *extra]


def check_turn_end(tokenizer: HFTokenizer, where: str) -> TurnEnd:
    """The template's end of turn, found before the chat starts (a template that cannot render
    a user message and a reply fails here, named)."""
    import jinja2

    try:
        return TurnEnd.of(tokenizer)
    except jinja2.TemplateError as exc:
        raise UserError(
            f"{where}: the chat template fails on a user message and a reply: {exc}"
        ) from None


def end_ids(tokenizer: HFTokenizer, model: Any) -> list[int]:
    """EOS plus the model's own end-of-turn ids (chat models often end turns with another token)."""
    ids = [special_ids(tokenizer)[0]]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for extra in configured if isinstance(configured, list) else [configured]:
        if isinstance(extra, int) and extra not in ids:
            ids.append(extra)
    return ids


def stream_reply(
    model: Any,
    tokenizer: HFTokenizer,
    ids: list[int],
    sampling: SamplingConfig,
    write: Callable[[str], None],
    suppress_ids: Sequence[int] = (),
    turn_end: TurnEnd | None = None,
) -> str:
    """Generate and stream the reply to ``ids``, ending at EOS, a stop string or the
    template's end of turn; returns the text shown (cut before any of them)."""
    import torch

    turn_end = turn_end or TurnEnd(None)
    stops = turn_end.stops(sampling.stop)
    sink = StopFilter(stops, write)
    stop_on_text = turn_end.token_id is None and stops != sampling.stop
    decoding = sampling.model_copy(update={"stop": stops}) if stop_on_text else sampling
    kwargs = generation_kwargs(tokenizer, decoding, suppress_ids)
    eos = end_ids(tokenizer, model)
    if turn_end.token_id is not None and turn_end.token_id not in eos:
        eos.append(turn_end.token_id)
    kwargs["eos_token_id"] = eos
    device = next(model.parameters()).device
    inputs = torch.tensor([ids], dtype=torch.long, device=device)
    with torch.no_grad(), own_decoding(model):
        model.generate(
            input_ids=inputs,
            attention_mask=torch.ones_like(inputs),
            streamer=make_streamer(tokenizer, sink),
            **kwargs,
        )
    return sink.text


# ---------------------------------------------------------------------------------------------
# The session loop


@dataclass
class ChatSession:
    """A model, its tokenizer (with the template set) and a conversation."""

    model: Any
    tokenizer: HFTokenizer
    conversation: Conversation
    sampling: SamplingConfig
    suppress_ids: Sequence[int] = ()
    show_prompt: bool = False
    turn_end: TurnEnd | None = None  # None: derived from the tokenizer's template

    def __post_init__(self) -> None:
        if self.turn_end is None:
            self.turn_end = TurnEnd.of(self.tokenizer)

    def respond(self, user: str, out: TextIO, err: TextIO) -> str | None:
        """Answer one message (streamed to ``out``); None when it cannot fit the context."""
        try:
            prompt = self.conversation.prompt(user)
        except ContextOverflow as exc:
            err.write(f"[not sent: {exc}]\n")
            return None
        if prompt.dropped:
            err.write(
                f"[context full: dropped the {_turns(prompt.dropped)} to fit "
                f"{self.conversation.max_context} tokens]\n"
            )
        err.flush()
        reply = self.answer(user, prompt, _writer(out), err)
        out.write("\n")
        out.flush()
        return reply

    def answer(self, user: str, prompt: Prompt, write: Callable[[str], None], err: TextIO) -> str:
        """Generate the reply to ``prompt`` (``user``'s message rendered), passing its text to
        ``write`` as it decodes, and keep the exchange in the history."""
        if self.show_prompt:
            err.write(f"[prompt: {len(prompt.ids)} tokens]\n{prompt.text}\n[end of prompt]\n")
            err.flush()
        reply = stream_reply(
            self.model,
            self.tokenizer,
            prompt.ids,
            self.sampling,
            write,
            self.suppress_ids,
            self.turn_end,
        )
        self.conversation.add(user, reply.strip())
        return reply


def _turns(count: int) -> str:
    return "oldest turn" if count == 1 else f"{count} oldest turns"


def _writer(out: TextIO) -> Callable[[str], None]:
    def write(text: str) -> None:
        out.write(text)
        out.flush()

    return write


def read_messages(stdin: TextIO, interactive: bool, prompt: str = "you> ") -> Iterator[str]:
    """Lines typed at a terminal (with a prompt and line editing) or read from a pipe."""
    if not interactive:
        for line in stdin:
            yield line.rstrip("\r\n")
        return
    with contextlib.suppress(
        ImportError
    ):  # arrow keys and history in input(), where readline exists
        import readline  # noqa: F401
    while True:
        try:
            yield input(prompt)
        except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt: leave quietly
            return


def run_session(
    session: ChatSession, lines: Iterable[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Serve messages until ``/exit`` or the end of input; returns the replies given."""
    import torch

    torch.manual_seed(
        session.sampling.seed
    )  # one seed per session: a scripted chat replays exactly
    replies = 0
    for line in lines:
        message = line.strip()
        if not message:
            continue
        if message in EXIT_COMMANDS:
            break
        if message == RESET_COMMAND:
            session.conversation.reset()
            err.write("[history cleared]\n")
            continue
        if message.startswith("/") and " " not in message:
            err.write(f"[unknown command {message}; commands: {RESET_COMMAND}, /exit]\n")
            continue
        try:
            replies += session.respond(message, out, err) is not None
        except KeyboardInterrupt:  # Ctrl-C while a reply streams: drop that turn, keep chatting
            out.write("\n")
            err.write("[reply interrupted; not kept in the history]\n")
    return replies


def open_session(
    checkpoint: str | Path,
    sampling: SamplingConfig,
    *,
    system: str | None = None,
    max_context: int | None = None,
    reply_fits_context: bool = False,
    chat_template: Path | None = None,
    show_prompt: bool = False,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | Path | None = None,
    quiet: bool = False,
) -> ChatSession:
    """Load a checkpoint and set up a conversation with it; every input is checked first.

    Decoder-only by design: the conversation is one growing text the model continues, which an
    encoder-decoder (T5) does not do, so a seq2seq checkpoint is refused before loading.

    ``reply_fits_context``: the reply budget was not chosen by the user, so it shrinks to half
    the context when the context is short (a model trained at seq_len 64 still chats with the
    defaults); a budget the user chose that leaves no room for a prompt is an error.
    """
    from synthlm.evaluate.checkpoint import (
        check_checkpoint_dir,
        load_checkpoint,
        refuse_encoder_decoder,
    )

    check_checkpoint_dir(Path(checkpoint))
    refuse_encoder_decoder(
        checkpoint, "synthlm chat", "a chat is one growing conversation the model continues"
    )
    override = read_template(chat_template) if chat_template is not None else None
    ckpt = load_checkpoint(checkpoint, device=device, dtype=dtype, tokenizer=tokenizer, quiet=quiet)
    ckpt.tokenizer.chat_template = resolve_template(ckpt.tokenizer, ckpt.config, override)
    where = f"--chat-template {chat_template}" if override else "chat"
    check_template_renders(ckpt.tokenizer, where, system)
    turn_end = check_turn_end(ckpt.tokenizer, where)
    note = unused_settings_note(ckpt.model, checkpoint, CHAT_FLAGS)
    if note:
        sys.stderr.write(note + "\n")
    if show_prompt and turn_end.text:
        sys.stderr.write(f"[replies end at {turn_end.text!r}, the chat template's end of turn]\n")
    reply = 1 if reply_fits_context else sampling.max_new_tokens
    context = context_size(ckpt.model, ckpt.seq_len, max_context, reply)
    if reply_fits_context:
        fitted = max(1, min(sampling.max_new_tokens, context // 2))
        sampling = sampling.model_copy(update={"max_new_tokens": fitted})
    conversation = Conversation(ckpt.tokenizer, context, sampling.max_new_tokens, system or None)
    not_text = range(
        ckpt.layout.natural_size, ckpt.layout.model_vocab_size
    )  # meta-language and padding ids
    return ChatSession(
        ckpt.model, ckpt.tokenizer, conversation, sampling, not_text, show_prompt, turn_end
    )
