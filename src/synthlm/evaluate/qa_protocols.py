"""Generation protocols for closed-book multiple-choice QA: prompt, sampling, stop, parsing.

A protocol fixes everything that changes a QA number besides the model, so that a reported
accuracy names one experiment:

* ``entigraph``: the QuALITY protocol of Synthetic Continued Pretraining (Yang et al. 2024).
  The five few-shot examples (``qa_prompts/entigraph_quality_cot.txt``) are the paper's,
  verbatim, from ``utils/prompt_utils.py`` of github.com/ZitongYang/Synthetic_Continued_Pretraining
  (Apache-2.0); the question layout, sampling (temperature 0.1, 300 new tokens, stop at
  ``Answer: X.`` + newline), answer parsing and the val/test article split follow
  ``tasks/quality.py`` and ``inference/llama.py`` of that repository.
* ``synthlm``: this package's own short chain-of-thought prompt, greedy.
* ``template``: a prompt file of the user's (``--qa-prompt``), for any other protocol.

The tokenizer adds BOS as it does for the model (``add_special_tokens=True``), as a vLLM or
plain ``generate`` call on the original's side does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from synthlm.errors import UserError
from synthlm.evaluate.qa import LETTERS, QAItem, cot_prompt, parse_choice

PROTOCOLS = ("synthlm", "entigraph")
TEMPLATE_FIELDS = ("title", "author", "year", "question", "choices")


@dataclass(frozen=True)
class Protocol:
    name: str
    prompt: Callable[[QAItem], str]
    parse: Callable[[str, int], int | None]
    temperature: float = 0.0  # 0: greedy
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()  # generation ends at the first of these
    samples: int = 1  # draws until one ends on a stop string (``require_stop``)
    require_stop: bool = False  # only a reply that ends on a stop string is an attempt
    split_by_title: bool = False  # report the paper's val (first 20%) / test (last 80%) articles


# -- the paper's protocol ------------------------------------------------------------------


def entigraph_fewshot() -> str:
    path = resources.files("synthlm.evaluate") / "qa_prompts" / "entigraph_quality_cot.txt"
    return path.read_text(encoding="utf-8")


def format_name(name: str) -> str:
    """ "Last, First" -> "First Last", as the paper's prompts print authors."""
    parts = name.split(",")
    return f"{parts[1].strip()} {parts[0].strip()}" if len(parts) == 2 else name.strip()


def choices_block(options: Sequence[str]) -> str:
    return "".join(f"{LETTERS[i]}. {option}\n" for i, option in enumerate(options))


def entigraph_question(item: QAItem) -> str:
    """One question as the paper asks it: title, author and year in context, then the choices."""
    context = (
        f'In the context of "{item.title}", written by {format_name(item.author)} in {item.year},'
    )
    question = item.question[:1].lower() + item.question[1:]
    return (
        f"### Question\n{context} {question} There is only one correct choice.\n"
        f"### Choices\n{choices_block(item.options)}"
        "### Thought Process and Answer\nThought process:"
    )


def answer_stops(letters: str = "ABCD") -> tuple[str, ...]:
    """``Answer: X.`` + newline for every ordered selection of 1-4 letters (the paper's stops)."""
    import itertools

    return tuple(
        f"Answer: {''.join(p)}.\n"
        for r in range(1, len(letters) + 1)
        for p in itertools.permutations(letters, r)
    )


def parse_second_last(text: str, num_options: int = 4) -> int | None:
    """The letter just before the final ``.`` of ``Answer: X.``, the paper's parser."""
    stripped = text.rstrip("\n")
    letter = stripped[-2] if len(stripped) >= 2 else ""
    return LETTERS.index(letter) if letter and letter in LETTERS[:num_options] else None


def entigraph_protocol() -> Protocol:
    fewshot = entigraph_fewshot()
    return Protocol(
        name="entigraph",
        prompt=lambda item: fewshot + entigraph_question(item),
        parse=parse_second_last,
        temperature=0.1,
        max_new_tokens=300,
        stop=answer_stops(),
        samples=8,
        require_stop=True,
        split_by_title=True,
    )


# -- user templates --------------------------------------------------------------------------


def template_protocol(
    path: Path, *, temperature: float, max_new_tokens: int, stop: Sequence[str]
) -> Protocol:
    """``--qa-prompt FILE``: a string.Template over $title $author $year $question $choices."""
    if not path.is_file():
        raise UserError(f"--qa-prompt {path}: file not found")
    template = Template(path.read_text(encoding="utf-8"))
    unknown = sorted(
        {
            m.group("named") or m.group("braced")
            for m in template.pattern.finditer(template.template)
        }
        - set(TEMPLATE_FIELDS)
        - {None}
    )
    if unknown:
        allowed = ", ".join("$" + f for f in TEMPLATE_FIELDS)
        raise UserError(
            f"--qa-prompt {path}: unknown placeholder(s) "
            f"{', '.join('$' + u for u in unknown)}; allowed: {allowed}"
        )

    def render(item: QAItem) -> str:
        return template.safe_substitute(
            title=item.title,
            author=format_name(item.author),
            year=item.year,
            question=item.question,
            choices=choices_block(item.options),
        )

    return Protocol(
        name=f"template:{path.name}",
        prompt=render,
        parse=parse_choice,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        stop=tuple(stop),
    )


def build_protocol(
    name: str,
    *,
    prompt_file: Path | None = None,
    shots: int = 2,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    stop: Sequence[str] = (),
) -> Protocol:
    """The protocol the flags ask for; the paper's is fixed (its settings are not flags)."""
    if name not in PROTOCOLS:
        raise UserError(f"--qa-protocol {name!r}: choose one of {', '.join(PROTOCOLS)}")
    if prompt_file is not None:
        if name != "synthlm":
            raise UserError(
                "--qa-prompt replaces the protocol's prompt: use it without --qa-protocol entigraph"
            )
        return template_protocol(
            prompt_file,
            temperature=temperature or 0.0,
            max_new_tokens=max_new_tokens or 256,
            stop=stop,
        )
    if name == "entigraph":
        given = [
            f
            for f, v in (("--qa-temperature", temperature), ("--qa-stop", list(stop) or None))
            if v is not None
        ]
        if given:
            raise UserError(
                f"{', '.join(given)}: the entigraph protocol fixes its own sampling; drop the flag"
            )
        protocol = entigraph_protocol()
        if max_new_tokens is not None:
            raise UserError(
                "--qa-max-new-tokens: the entigraph protocol generates at most 300 "
                "tokens; drop the flag"
            )
        return protocol
    return Protocol(
        name="synthlm",
        prompt=lambda item: cot_prompt(item, shots),
        parse=parse_choice,
        temperature=temperature or 0.0,
        max_new_tokens=max_new_tokens or 256,
        stop=tuple(stop) or ("\nStory:",),  # the model may go on to invent the next question
    )


# -- generation ------------------------------------------------------------------------------


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to and including the earliest stop string, and whether one was found."""
    ends = [text.find(s) + len(s) for s in stops if s in text]
    return (text[: min(ends)], True) if ends else (text, False)


def generation_config(protocol: Protocol, tokenizer: Any) -> Any:
    """Explicit settings, so the checkpoint's own generation_config (top_p, top_k...) is not mixed in."""
    from transformers import GenerationConfig

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = (
        {"do_sample": True, "temperature": protocol.temperature, "top_k": 0, "top_p": 1.0}
        if protocol.temperature > 0
        else {"do_sample": False}
    )
    return GenerationConfig(
        max_new_tokens=protocol.max_new_tokens,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        stop_strings=list(protocol.stop) or None,
        **sampling,
    )


def score_generate(
    model: Any,
    tokenizer: Any,
    items: Sequence[QAItem],
    device: Any,
    protocol: Protocol,
    *,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One prediction per question: the first draw that counts as an attempt, if any.

    The paper draws 8 samples and keeps the first that ends on an answer string; drawing one at
    a time and stopping at the first such draw gives that same sample, with fewer generations.
    """
    import torch

    torch.manual_seed(seed)
    config = generation_config(protocol, tokenizer)
    predictions = []
    for item in items:
        encoded = tokenizer(protocol.prompt(item), return_tensors="pt", add_special_tokens=True).to(
            device
        )
        text, draws, stopped = "", 0, False
        while draws < protocol.samples:
            draws += 1
            with torch.no_grad():
                output = model.generate(**encoded, generation_config=config, tokenizer=tokenizer)
            text = tokenizer.decode(
                output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True
            )
            text, stopped = cut_at_stop(text, protocol.stop)
            if stopped or not protocol.require_stop:
                break
        attempted = stopped or not protocol.require_stop
        pred = protocol.parse(text, len(item.options)) if attempted else None
        prompt_tokens = int(encoded["input_ids"].shape[1])
        predictions.append(
            {"pred": pred, "generation": text, "draws": draws, "prompt_tokens": prompt_tokens}
        )
    return predictions


def check_items(protocol: Protocol, items: Sequence[QAItem], qa_file: str) -> None:
    """The paper's prompt prints title, author and year: refuse questions lacking them."""
    if protocol.name != "entigraph":
        return
    for name in ("title", "author", "year"):
        lacking = sorted(
            {it.title or "(untitled)" for it in items if not str(getattr(it, name)).strip()}
        )
        if lacking:
            raise UserError(
                f"--qa {qa_file}: --qa-protocol entigraph prints each article's {name}; "
                f"missing for {', '.join(lacking[:5])}"
            )


def title_split(items: Sequence[QAItem]) -> dict[str, list[int]]:
    """The paper's split: articles sorted by title, first int(0.2 n) val, the rest test."""
    articles: list[tuple[str, str]] = []
    for item in sorted(items, key=lambda it: it.title):
        key = (item.title, item.author)
        if key not in articles:
            articles.append(key)
    val = set(articles[: int(0.2 * len(articles))])
    return {
        "val": [i for i, it in enumerate(items) if (it.title, it.author) in val],
        "test": [i for i, it in enumerate(items) if (it.title, it.author) not in val],
    }
