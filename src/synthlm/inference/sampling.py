"""Text generation from a checkpoint: unconditional, from a prompt file, or interactively.

Decoding is transformers' ``generate`` (KV cache, logits processors, stop strings) on batches
of left-padded prompts; this module only decides the inputs and turns raw token rows into
records. Why left padding: every row's last prompt token then sits at the same position, so one
batched ``generate`` call serves prompts of different lengths (transformers derives position
ids from the attention mask, so a padded row decodes exactly as it would alone).

Unconditional samples start from EOS: synthlm joins training documents with EOS, so "just after
EOS" is exactly where a new document begins in training (synthlm tokenizers never add BOS to
text). Tokenizers that do start every text with BOS (Llama-style HF models) start from BOS.

Encoder-decoder models (T5): the prompt is the encoder's input (right-padded by the tokenizer,
with an attention mask; the encoder sees every position at once, so the padding side does not
matter) and the completion is what the decoder writes from its start token, which is the whole
output row minus that start token (it never contains the prompt). Special tokens other than
EOS/padding are kept in the text, because a span-corruption model answers in sentinels
(``<extra_id_0> ... <extra_id_1> ...``) that say which gap each span fills.

Reproducibility: with ``temperature=0`` decoding is greedy and deterministic; otherwise each
sample draws from its own random stream, a function of the seed, the prompt's number and the
sample's (:mod:`synthlm.inference.row_sampling`), so it does not depend on the batch size.

Decoding settings come from the command's flags only. transformers fills every setting a
``generate`` call leaves unset from the checkpoint's ``generation_config.json``, so a Hub
checkpoint's ``num_beams`` or ``min_new_tokens`` would silently change the output (and beams
multiply the rows the per-row sampler expects). While generating, the model's generation
config is replaced by one that keeps only what synthlm's own checkpoints put there on purpose:
the special token ids and the suppressed reserved ids (:data:`KEPT_GENERATION_SETTINGS`); the
commands say once which other settings the checkpoint sets and are not used.
"""

from __future__ import annotations

import codecs
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from synthlm.config import Section
from synthlm.errors import UserError


class SamplingConfig(Section):
    """How to pick each next token (one field per ``synthlm generate`` flag)."""

    temperature: float = Field(1.0, ge=0, description="0 = greedy decoding; higher = more random.")
    top_k: int = Field(0, ge=0, description="Sample among the k most likely tokens (0 = no limit).")
    top_p: float = Field(
        1.0, gt=0, le=1, description="Nucleus sampling: smallest set with this probability mass."
    )
    repetition_penalty: float = Field(
        1.0, gt=0, description="> 1 discourages repeating tokens already present."
    )
    max_new_tokens: int = Field(128, gt=0, description="Tokens generated per sample at most.")
    num_samples: int = Field(1, gt=0, description="Samples per prompt.")
    stop: list[str] = Field(
        default_factory=list, description="Stop strings: text is cut before the first one."
    )
    seed: int = Field(
        0,
        description="Seeds the sampler: each sample draws from its own stream, a function of "
        "the seed, the prompt's number and the sample's, whatever the batch size.",
    )

    @field_validator("num_samples")
    @classmethod
    def _sampling_for_many(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and info.data.get("temperature") == 0:
            raise ValueError(
                "more than one sample per prompt needs sampling: greedy decoding "
                "(temperature 0) gives one answer"
            )
        return value

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Completion:
    """One generated sample: the record written to ``-o out.jsonl``."""

    prompt: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finished: bool  # hit EOS or a stop string (False: ran out of max_new_tokens)
    seconds: float  # wall time of the batched generate call that produced it
    sample: int  # index among the num_samples samples of this prompt

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Prompts


def decode_escapes(text: str) -> str:
    r"""Turn ``\n``, ``\t`` and friends typed on a command line into the characters."""
    return codecs.decode(text.encode("utf-8"), "unicode_escape").encode("latin-1").decode("utf-8")


def sampling_from_cli(command: str, stop: Sequence[str] | None, **options: Any) -> SamplingConfig:
    """A command's sampling options, validated as one section (an error names ``command``);
    stop strings typed with escapes (``\\n``) become the characters."""
    from synthlm.config import validate

    stops = [decode_escapes(s) for s in stop or []]
    # errors name the flag as typed (--top-p 2), not the field (top_p)
    origins = {(key,): f"--{key.replace('_', '-')} {value}" for key, value in options.items()}
    return validate(SamplingConfig, {**options, "stop": stops}, origins, source=command)


def read_prompts(path: str | Path, prompt_end: str = "\n") -> list[str]:
    """Prompts of a text file: one per line, or separated by ``prompt_end``; blanks dropped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: prompt file not found")
    if not prompt_end:
        raise UserError("--prompt-end must not be empty")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: prompt file is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    prompts = [
        p.strip("\r\n") if prompt_end == "\n" else p.strip("\n") for p in text.split(prompt_end)
    ]
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise UserError(
            f"{path}: prompt file holds no prompts (separator {prompt_end!r}); write one "
            f"prompt per line"
        )
    return prompts


# ---------------------------------------------------------------------------------------------
# Batched generation


def left_pad(rows: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask) tensors with every row right-aligned."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row):
            ids[i, width - len(row) :] = torch.as_tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def special_ids(tokenizer) -> tuple[int, int]:
    """(eos, pad) for an HF tokenizer or a synthlm one; pad falls back to eos."""
    eos = getattr(tokenizer, "eos_id", None)
    if eos is None:
        eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise UserError(
            "the tokenizer has no end-of-sequence token; synthlm needs one to end documents"
        )
    pad = getattr(tokenizer, "pad_id", None)
    if pad is None:
        pad = getattr(tokenizer, "pad_token_id", None)
    return int(eos), int(eos if pad is None else pad)


def start_ids(tokenizer) -> list[int]:
    """Context of an unconditional sample: BOS when the tokenizer starts text with it, else EOS."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos]:
        return [int(bos)]
    return [special_ids(tokenizer)[0]]


def encode_prompts(
    tokenizer, prompts: Sequence[str], *, text_as_text: bool = True
) -> list[list[int]]:
    """Prompt ids with the tokenizer's BOS rule. ``text_as_text`` (decoder-only models): as
    the training stores were encoded, a literal ``<unk>`` or ``</s>`` in a prompt is its
    characters, as ``synthlm tokenize`` wrote it in the documents the model learned from, not
    the special id. An encoder-decoder's prompt is parsed instead: its ``<extra_id_N>`` are
    the sentinels that span corruption asks it to fill."""
    rows = tokenizer(list(prompts), add_special_tokens=True, split_special_tokens=text_as_text)
    return [list(r) if len(r) else start_ids(tokenizer) for r in rows["input_ids"]]


def is_seq2seq(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def context_limit(model) -> int | None:
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_lengths(model, rows: Sequence[Sequence[int]], sampling: SamplingConfig) -> None:
    """Fail before generating when a prompt plus its continuation cannot fit the model."""
    limit = context_limit(model)
    if limit is None:
        return
    if is_seq2seq(model):  # encoder input and decoder output are separate sequences
        check_seq2seq_lengths(rows, sampling, limit)
        return
    for i, row in enumerate(rows):
        if len(row) + sampling.max_new_tokens > limit:
            raise UserError(
                f"prompt {i + 1} has {len(row)} tokens; with --max-new-tokens "
                f"{sampling.max_new_tokens} "
                f"that exceeds the model's context of {limit} tokens (shorten it or lower "
                f"--max-new-tokens)"
            )


def check_seq2seq_lengths(
    rows: Sequence[Sequence[int]], sampling: SamplingConfig, limit: int
) -> None:
    if sampling.max_new_tokens > limit:
        raise UserError(
            f"--max-new-tokens {sampling.max_new_tokens} exceeds the model's decoder "
            f"context of {limit} tokens"
        )
    for i, row in enumerate(rows):
        if len(row) > limit:
            raise UserError(
                f"prompt {i + 1} has {len(row)} tokens, more than the model's encoder "
                f"context of {limit} tokens (shorten it)"
            )


# What a checkpoint's generation config may contribute: token ids, and the reserved ids that
# synthlm's training saves as suppressed (train/checkpoint.py reserved_ids_suppressed).
KEPT_GENERATION_SETTINGS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "decoder_start_token_id",
    "suppress_tokens",
)
# Saved alongside but not decoding settings: bookkeeping, outputs and caching.
_NOT_DECODING = frozenset(
    {
        "_from_model_config",
        "_commit_hash",
        "transformers_version",
        "use_cache",
        "cache_implementation",
        "output_attentions",
        "output_hidden_states",
        "output_scores",
        "output_logits",
        "return_dict_in_generate",
    }
)
# The flag that sets the same thing, for the note about unused checkpoint settings.
SETTING_FLAGS = {
    "do_sample": "--temperature (0 = greedy)",
    "temperature": "--temperature",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "repetition_penalty": "--repetition-penalty",
    "max_new_tokens": "--max-new-tokens",
    "stop_strings": "--stop",
    "num_return_sequences": "--num-samples",
}


# The decoding flags synthlm chat takes; synthlm generate takes these and --num-samples.
CHAT_FLAGS = (
    "--temperature",
    "--top-k",
    "--top-p",
    "--repetition-penalty",
    "--max-new-tokens",
    "--stop",
)
GENERATE_FLAGS = (*CHAT_FLAGS, "--num-samples")


def own_generation_config(config: Any) -> Any:
    """A fresh generation config holding only :data:`KEPT_GENERATION_SETTINGS` of ``config``."""
    from transformers import GenerationConfig

    kept = {key: getattr(config, key, None) for key in KEPT_GENERATION_SETTINGS}
    return GenerationConfig(**{key: value for key, value in kept.items() if value is not None})


@contextlib.contextmanager
def own_decoding(model: Any) -> Iterator[None]:
    """While generating: the model's generation config holds nothing but the kept settings, so
    the settings a ``generate`` call leaves unset take transformers' defaults, not the
    checkpoint's (see the module docstring)."""
    saved = getattr(model, "generation_config", None)
    if saved is None:
        yield
        return
    model.generation_config = own_generation_config(saved)
    try:
        yield
    finally:
        model.generation_config = saved


def unused_generation_settings(model: Any) -> dict[str, Any]:
    """The decoding settings the checkpoint's generation config sets to something other than
    transformers' defaults, which synthlm does not use."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return {}
    defaults = config._get_default_generation_params()
    return {
        key: value
        for key, value in config.to_diff_dict().items()
        if key not in KEPT_GENERATION_SETTINGS
        and key not in _NOT_DECODING
        and value is not None
        and defaults.get(key, None) != value
    }


def unused_settings_note(model: Any, checkpoint: Any, flags: Sequence[str]) -> str | None:
    """One line naming the checkpoint's unused decoding settings and the flag for each that has
    one (``flags``: those the command takes), or None when there are none."""
    unused = unused_generation_settings(model)
    if not unused:
        return None
    listed = ", ".join(f"{key}={value!r}" for key, value in unused.items())
    mapped = {key: _flag_for(key, flags) for key in unused}
    how = [f"{key}: {flag}" for key, flag in mapped.items() if flag]
    without = [key for key, flag in mapped.items() if not flag]
    if without:
        how.append(f"{', '.join(without)}: no synthlm flag")
    return (
        f"note: {checkpoint}/generation_config.json sets {listed}; synthlm decodes with its "
        f"own flags only, so these are not used ({'; '.join(how)})"
    )


def _flag_for(key: str, flags: Sequence[str]) -> str | None:
    flag = SETTING_FLAGS.get(key)
    return flag if flag is not None and flag.split()[0] in flags else None


def generation_kwargs(
    tokenizer,
    sampling: SamplingConfig,
    suppress_ids: Sequence[int] = (),
    row_seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Arguments for ``model.generate``. Settings left out take transformers' defaults only
    inside :func:`own_decoding`; outside it, the model's generation config fills them.

    With ``row_seeds`` (one per row of an input already repeated ``num_samples`` times) each
    row samples from its own generator (:mod:`synthlm.inference.row_sampling`); without them
    transformers samples the batch from torch's global stream.
    """
    eos, pad = special_ids(tokenizer)
    kwargs: dict[str, Any] = {
        "max_new_tokens": sampling.max_new_tokens,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "repetition_penalty": sampling.repetition_penalty,
        "num_return_sequences": sampling.num_samples,
        "do_sample": not sampling.greedy,
    }
    if not sampling.greedy and row_seeds is not None:
        from synthlm.inference.row_sampling import row_sampler

        processor = row_sampler(row_seeds, sampling.temperature, sampling.top_k, sampling.top_p)
        kwargs.update(do_sample=False, num_return_sequences=1, logits_processor=[processor])
    elif not sampling.greedy:
        kwargs.update(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
    if sampling.stop:
        kwargs.update(stop_strings=list(sampling.stop), tokenizer=tokenizer)
    # Explicit even when empty: a trained checkpoint's generation_config suppresses the meta ids,
    # which synthetic-task generation must be free to write.
    kwargs["suppress_tokens"] = list(suppress_ids) or None
    return kwargs


def finish_row(
    tokenizer,
    new_tokens: list[int],
    sampling: SamplingConfig,
    skip_special: bool = True,
    context: Sequence[int] = (),
) -> tuple[str, int, bool]:
    """(text, completion tokens, finished) of one generated row after ``context`` (its prompt).

    The row ends at the first EOS, as transformers ends a sequence: a padding token the model
    writes before it is part of the row (decoding drops it as a special token, as transformers'
    ``decode(skip_special_tokens=True)`` does). A stop string ends generation on the token that
    completes it, also one that starts in the prompt (transformers matches the end of the whole
    sequence), so the row is cut after that token (the rest of a stopped row is padding) and
    its text before the stop string (nothing, when the stop string starts in the prompt).
    """
    eos, _ = special_ids(tokenizer)
    body = new_tokens[: new_tokens.index(eos)] if eos in new_tokens else list(new_tokens)
    hit_eos = len(body) < len(new_tokens)
    stopped = stop_cut(tokenizer, context, body, sampling.stop, skip_special)
    if stopped is not None:
        text, count = stopped
        return text, count, True
    text = decode_continuation(tokenizer, context, body, skip_special)
    return text, len(body) + (1 if hit_eos else 0), hit_eos


def stop_cut(
    tokenizer,
    context: Sequence[int],
    body: list[int],
    stops: Sequence[str],
    skip_special: bool = True,
) -> tuple[str, int] | None:
    """(text before the first stop string, tokens up to the one completing it), or None when
    the row writes no stop string. A stop string counts when it ends in the continuation: it
    may start in the prompt."""
    if not stops or not body:
        return None

    def decode(count: int) -> str:
        return tokenizer.decode([*context, *body[:count]], skip_special_tokens=skip_special)

    before = tokenizer.decode(list(context), skip_special_tokens=skip_special) if context else ""
    if first_stop(decode(len(body)), stops, len(before)) is None:
        return None
    low, high = 1, len(body)  # the text only grows, so the first hit is found by bisection
    while low < high:
        middle = (low + high) // 2
        if first_stop(decode(middle), stops, len(before)) is None:
            low = middle + 1
        else:
            high = middle
    whole = decode(low)
    text = decode_continuation(tokenizer, context, body[:low], skip_special)
    if whole.startswith(before):
        at = first_stop(whole, stops, len(before))
        return text[: max(0, (at or 0) - len(before))], low
    at = first_stop(text, stops, 0)
    return text[: at or 0], low


def first_stop(text: str, stops: Sequence[str], boundary: int) -> int | None:
    """Where the first stop string that ends past ``boundary`` starts in ``text``, or None."""
    found = [
        at
        for at in (text.find(stop, max(0, boundary - len(stop) + 1)) for stop in stops)
        if at >= 0
    ]
    return min(found) if found else None


def decode_continuation(
    tokenizer, context: Sequence[int], body: list[int], skip_special: bool = True
) -> str:
    """The text ``body`` adds after ``context``. Decoded alone, a continuation loses what its
    first piece owes to the context: SentencePiece's ``▁I`` after ``Citizen:`` is " I", but
    "I" at the start of a text. So it is decoded with its context, minus the context's text
    (as transformers' TextStreamer does), unless that is not a prefix (a character split
    across the boundary), where the body alone is the best text there is."""
    alone = tokenizer.decode(body, skip_special_tokens=skip_special)
    if not context or not body:
        return alone
    before = tokenizer.decode(list(context), skip_special_tokens=skip_special)
    whole = tokenizer.decode([*context, *body], skip_special_tokens=skip_special)
    return whole[len(before) :] if whole.startswith(before) else alone


def timed_generate(model, ids, mask, kwargs: dict[str, Any]) -> tuple[Any, float]:
    """``model.generate`` on one padded batch, on the model's device, and the seconds it took
    (what the throughput figures of generate and eval divide by)."""
    import torch

    device = next(model.parameters()).device
    started = time.perf_counter()
    with torch.no_grad(), own_decoding(model):
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
    return out, time.perf_counter() - started


def seeded_rows(
    rows: Sequence[Sequence[int]], sampling: SamplingConfig, first_index: int
) -> tuple[Sequence[Sequence[int]], list[int] | None]:
    """For sampling: each prompt's row repeated ``num_samples`` times (as
    ``num_return_sequences`` would) and one seed per row, a function of (seed, prompt number,
    sample number), so no completion depends on the batch it was generated in. Greedy decoding
    needs neither."""
    if sampling.greedy:
        return rows, None
    from synthlm.inference.row_sampling import row_seeds

    indices = range(first_index, first_index + len(rows))
    repeated = [row for row in rows for _ in range(sampling.num_samples)]
    return repeated, row_seeds(sampling.seed, indices, sampling.num_samples)


def generate_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    rows: Sequence[Sequence[int]],
    sampling: SamplingConfig,
    suppress_ids: Sequence[int] = (),
    first_index: int = 0,
) -> list[Completion]:
    """Generate ``num_samples`` completions for each prompt of one batch (prompt ``first_index``
    of the whole list first: its rows' seeds, see :func:`seeded_rows`)."""
    _, pad = special_ids(tokenizer)
    seq2seq = is_seq2seq(model)
    rows, seeds = seeded_rows(rows, sampling, first_index)
    if seq2seq:
        padded = tokenizer.pad(
            {"input_ids": [list(r) for r in rows]},
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids, mask = padded["input_ids"], padded["attention_mask"]
    else:
        ids, mask = left_pad(rows, pad)
    out, seconds = timed_generate(
        model, ids, mask, generation_kwargs(tokenizer, sampling, suppress_ids, seeds)
    )
    out = out[
        :, 1 if seq2seq else ids.shape[1] :
    ].tolist()  # drop the decoder start token / the prompt
    completions = []
    for j, row in enumerate(out):
        prompt_index, sample = divmod(j, sampling.num_samples)
        context = () if seq2seq else rows[j]  # an encoder-decoder's output starts a new text
        text, count, finished = finish_row(
            tokenizer, row, sampling, skip_special=not seq2seq, context=context
        )
        completions.append(
            Completion(
                prompts[prompt_index],
                text,
                len(rows[j]),
                count,
                finished,
                seconds,
                sample,
            )
        )
    return completions


def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[str] | None,
    sampling: SamplingConfig,
    *,
    batch_size: int = 8,
    progress: bool = False,
    suppress_ids: Sequence[int] = (),
) -> Iterator[Completion]:
    """Completions of ``prompts`` in order (``None``: unconditional samples), batch by batch.

    ``suppress_ids`` are never generated: ``synthlm generate`` passes the ids past the natural
    vocabulary (meta-language and padding rows), which are not text and decode to nothing.
    """
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    texts = [""] if prompts is None else list(prompts)
    rows = (
        [start_ids(tokenizer)]
        if prompts is None
        else encode_prompts(tokenizer, texts, text_as_text=not is_seq2seq(model))
    )
    check_lengths(model, rows, sampling)
    per_batch = max(1, batch_size // sampling.num_samples)
    torch.manual_seed(sampling.seed)
    starts = range(0, len(rows), per_batch)
    for start in tqdm(
        starts, desc="generate", unit="batch", disable=not progress or len(starts) < 2
    ):
        yield from generate_batch(
            model,
            tokenizer,
            texts[start : start + per_batch],
            rows[start : start + per_batch],
            sampling,
            suppress_ids,
            first_index=start,
        )


def write_completions(completions: Iterator[Completion], out: str | Path) -> int:
    """Write records as JSONL, atomically (the file appears only when every record is in)."""
    import json

    from synthlm.fileio import atomic_path

    count = 0
    with atomic_path(out) as temp, open(temp, "w", encoding="utf-8") as handle:
        for completion in completions:
            handle.write(json.dumps(completion.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Interactive


EXIT_WORDS = frozenset({"/exit", "/quit"})


def interactive(
    model,
    tokenizer,
    sampling: SamplingConfig,
    *,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    suppress_ids: Sequence[int] = (),
) -> int:
    """Read a prompt, print its completion, repeat until EOF or ``/exit``; returns prompts served."""
    served = 0
    while True:
        try:
            prompt = read("prompt> ")
        except EOFError:
            return served
        if prompt.strip() in EXIT_WORDS:
            return served
        if not prompt.strip():
            continue
        for completion in generate_texts(
            model, tokenizer, [prompt], sampling, suppress_ids=suppress_ids
        ):
            write(completion.text if is_seq2seq(model) else prompt + completion.text)
        served += 1
