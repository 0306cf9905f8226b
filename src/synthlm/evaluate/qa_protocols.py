"""Generation protocols for closed-book multiple-choice QA: prompt, sampling, stop, parsing.

A protocol fixes everything that changes a QA number besides the model, so that a reported
accuracy names one experiment:

* ``entigraph``: the QuALITY protocol of Synthetic Continued Pretraining (Yang et al. 2024).
  The five few-shot examples (``qa_prompts/entigraph_quality_cot.txt``) are the paper's,
  verbatim, from ``utils/prompt_utils.py`` of github.com/ZitongYang/Synthetic_Continued_Pretraining
  (Apache-2.0); the question layout, sampling (8 samples at temperature 0.1, 300 new tokens,
  stop at ``Answer: X.`` + newline), the choice among the samples (the one of highest
  cumulative log-probability that ends on an answer: :func:`pick_attempt`), answer parsing and
  the val/test article split follow ``tasks/quality.py``, ``inference/llama.py`` and
  ``notebooks/nb_qa_eval.ipynb`` of that repository.
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
from synthlm.evaluate.qa import FEW_SHOT, LETTERS, QAItem, cot_prompt, parse_choice

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
    # samples drawn per question; the prediction is the attempt with the highest cumulative
    # log-probability of its generated tokens (see :func:`pick_attempt`)
    samples: int = 1
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
    shots: int | None = None,
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
        if shots is not None:
            raise UserError(
                "--qa-shots: --qa-prompt is the whole prompt (put your examples in the file); "
                "drop the flag"
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
            for f, v in (
                ("--qa-shots", shots),
                ("--qa-temperature", temperature),
                ("--qa-stop", list(stop) or None),
            )
            if v is not None
        ]
        if given:
            raise UserError(
                f"{', '.join(given)}: the entigraph protocol fixes its own shots and sampling; "
                "drop the flag"
            )
        protocol = entigraph_protocol()
        if max_new_tokens is not None:
            raise UserError(
                "--qa-max-new-tokens: the entigraph protocol generates at most 300 "
                "tokens; drop the flag"
            )
        return protocol
    if shots is not None and not 0 <= shots <= len(FEW_SHOT):
        raise UserError(f"--qa-shots {shots}: choose 0 to {len(FEW_SHOT)}")
    return Protocol(
        name="synthlm",
        prompt=lambda item: cot_prompt(item, 2 if shots is None else shots),
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
    """Explicit settings, so the checkpoint's own generation_config (top_p, top_k...) is not mixed in.

    All of a question's samples are drawn in one call, with the processed scores (the
    temperature-scaled logits each token was sampled from) kept to rank them.
    """
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
        num_return_sequences=protocol.samples,
        output_scores=True,
        return_dict_in_generate=True,
        **sampling,
    )


@dataclass(frozen=True)
class Sample:
    """One generated reply: its text (cut after the stop string), whether it ended on one, and
    the sum of the log-probabilities of its tokens up to that point (None when it did not)."""

    text: str
    stopped: bool
    logprob: float | None


def decode(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of generated ids as a streaming detokenizer sees it (no clean-up of spaces)."""
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def stop_length(tokenizer: Any, ids: Sequence[int], stops: Sequence[str]) -> int:
    """The fewest leading tokens of ``ids`` whose text holds a stop string (it must hold one).

    Generation ends on the token that completes a stop string, so these are the tokens the reply
    is made of; what follows them in a batch is padding.
    """
    low, high = 1, len(ids)
    while low < high:
        middle = (low + high) // 2
        if cut_at_stop(decode(tokenizer, ids[:middle]), stops)[1]:
            high = middle
        else:
            low = middle + 1
    return low


def draw_samples(
    model: Any, tokenizer: Any, encoded: Any, config: Any, protocol: Protocol
) -> list[Sample]:
    """``protocol.samples`` replies to one prompt, each with its cumulative log-probability."""
    import torch

    with torch.no_grad():
        output = model.generate(**encoded, generation_config=config, tokenizer=tokenizer)
    generated = output.sequences[:, encoded["input_ids"].shape[1] :]
    # log p(token) under the distribution it was sampled from, step by step (no (n, steps,
    # vocab) tensor is built)
    token_logprobs = torch.stack(
        [
            step.float().log_softmax(-1).gather(1, generated[:, t : t + 1]).squeeze(1)
            for t, step in enumerate(output.scores)
        ],
        dim=1,
    ).cpu()
    samples = []
    for row, ids in enumerate(generated.tolist()):
        text, stopped = cut_at_stop(decode(tokenizer, ids), protocol.stop)
        logprob = None
        if stopped:
            length = stop_length(tokenizer, ids, protocol.stop)
            logprob = float(token_logprobs[row, :length].sum())
        elif not protocol.stop:
            logprob = float(token_logprobs[row].sum())
        samples.append(Sample(text, stopped, logprob))
    return samples


def pick_attempt(samples: Sequence[Sample], require_stop: bool) -> Sample | None:
    """The prediction among a question's samples: the attempt of highest cumulative log-prob.

    This is the paper's rule. Its vLLM (0.5.3.post1, pinned in requirements.txt) returns the n
    samples of a request sorted by cumulative log-probability, highest first
    (``RequestOutput.from_seq_group``); ``inference/llama.py`` keeps, in that order, those
    that ended on an answer string, and ``majority_vote(n_samples=1)`` in
    ``notebooks/nb_qa_eval.ipynb`` keeps the first. Equal log-probs: the earlier sample.
    """
    attempts = [s for s in samples if s.stopped or not require_stop]
    if not attempts:
        return None
    scored = [(s.logprob, s) for s in attempts if s.logprob is not None]
    if not scored:
        return attempts[0]
    best = max(logprob for logprob, _ in scored)
    return next(s for logprob, s in scored if logprob == best)


def score_generate(
    model: Any,
    tokenizer: Any,
    items: Sequence[QAItem],
    device: Any,
    protocol: Protocol,
    *,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One prediction per question: of ``protocol.samples`` draws, the attempt that
    :func:`pick_attempt` keeps (none: the question is not attempted)."""
    import torch

    torch.manual_seed(seed)
    config = generation_config(protocol, tokenizer)
    predictions = []
    for item in items:
        encoded = tokenizer(protocol.prompt(item), return_tensors="pt", add_special_tokens=True).to(
            device
        )
        samples = draw_samples(model, tokenizer, encoded, config, protocol)
        chosen = pick_attempt(samples, protocol.require_stop)
        pred = protocol.parse(chosen.text, len(item.options)) if chosen is not None else None
        predictions.append(
            {
                "pred": pred,
                "generation": (chosen or samples[0]).text,
                "logprob": chosen.logprob if chosen is not None else None,
                "draws": len(samples),
                "attempts": sum(s.stopped or not protocol.require_stop for s in samples),
                "prompt_tokens": int(encoded["input_ids"].shape[1]),
            }
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
