"""Train a tokenizer of any registered kind into a directory that follows the id convention.

Adding a kind is one function decorated with ``@trainer("kind")`` plus its smallest sensible
size in ``MIN_LEARNED`` (and, when its library cannot repeat a run, the reason in
``NOT_REPEATABLE``): the function receives the documents, the number of ids to learn (specials
included, ``extra_tokens`` excluded), the special tokens and the options, and returns a tokenizer;
size checks, input reading, extra ids and saving are shared.

Repeatability: ``bpe``, ``sentencepiece`` and ``byte`` give the same files for the same command
and inputs, in any process. ``sentencepiece`` gets there because synthlm draws the
``input_sentence_size`` sample itself (:func:`sample_sentences`), seeded by ``--seed``: the
library's own sampler is salted per process. ``unigram`` cannot, and says so (see
``NOT_REPEATABLE``).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from synthlm.errors import UserError
from synthlm.registry import Registry
from synthlm.tokenizers.base import (
    BYTE_OFFSET,
    DEFAULT_TOKENS,
    ROLES,
    TOKENIZER_FILES,
    BaseTokenizer,
    replaceable_files,
)
from synthlm.tokenizers.byte import ByteTokenizer
from synthlm.tokenizers.hf import HFTokenizer
from synthlm.tokenizers.load import load_tokenizer
from synthlm.tokenizers.sentencepiece import SentencePieceTokenizer
from synthlm.tokenizers.sp_options import parse_sp_options, sentencepiece_arguments

Trainer = Callable[[Iterator[str], int, dict[str, str], dict[str, Any]], BaseTokenizer]
TRAINERS: Registry[Trainer] = Registry("tokenizer kind")
MIN_LEARNED = {
    "bpe": BYTE_OFFSET + 256 + 1,
    "unigram": BYTE_OFFSET + 256 + 2,
    "sentencepiece": BYTE_OFFSET + 256 + 2,
    "byte": 0,
}
# Kinds whose library gives a different tokenizer on every run, and why: warned at train time and
# recorded as "repeatable": false in synthlm_tokenizer.json, so nobody expects the same files.
NOT_REPEATABLE = {
    "unigram": (
        "the Hugging Face tokenizers UnigramTrainer counts words in a hash map with a random "
        "seed of its own (ahash, new on every run and for every map) and trains on the words in "
        "that map's order, so its sums of floats and its ties between pieces come out "
        "differently: two runs on the same input give different scores and different pieces at "
        "some ids (neither the input order nor RAYON_NUM_THREADS changes that)"
    ),
}
REPEATABLE_ALTERNATIVE = {"unigram": "--kind sentencepiece --sp-model-type unigram"}
# The key of the Philox stream behind the sentence sample (with --seed): its own stream, so no
# other use of the same seed draws the same numbers.
SAMPLE_STREAM = 0x5E47_5A3B


def trainer(kind: str) -> Callable[[Trainer], Trainer]:
    """Register a training recipe for ``synthlm tokenizer train --kind KIND``."""

    return TRAINERS.register(kind)


def train_tokenizer(
    files: list[str | Path],
    kind: str,
    vocab_size: int | None,
    out: str | Path,
    *,
    extra_tokens: int = 0,
    special_tokens: dict[str, str] | None = None,
    keys: Sequence[str] = ("text",),
    txt_mode: str = "file",
    max_docs: int | None = None,
    min_frequency: int | None = None,
    sp_model_type: str | None = None,
    sp_defaults: str = "synthlm",
    sp_options: Sequence[str] = (),
    seed: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    verbose: bool = False,
) -> BaseTokenizer:
    """Train a ``kind`` tokenizer with ``vocab_size`` ids in all (specials and extras included).

    ``quiet`` hides progress bars; ``verbose`` lets the sentencepiece library print its own
    log (hundreds of lines, so off by default). A corpus too small for ``vocab_size`` gives a
    smaller vocabulary: that is allowed (a hard limit would fail the run) but said on stderr.

    ``sp_model_type`` (bpe unless ``sp_defaults`` is "library", whose default is unigram),
    ``sp_defaults`` and ``sp_options`` (``"KEY=VALUE"`` strings, as ``--sp-option`` takes them)
    set the sentencepiece trainer's arguments; they are checked before the corpus is read and
    recorded in ``synthlm_tokenizer.json``.

    ``seed`` (``--kind sentencepiece`` only; 0 when not given) picks the sample of
    ``input_sentence_size`` sentences when the corpus has more: the same seed, the same sample
    and the same model in any process. ``synthlm_tokenizer.json`` also records whether the kind
    repeats a run at all (``"repeatable"``); ``unigram`` does not, and that is warned on stderr.
    """
    if kind not in TRAINERS:
        raise UserError(f"--kind {kind!r}: choose one of {', '.join(TRAINERS.names())}")
    tokens = {**DEFAULT_TOKENS, **(special_tokens or {})}
    if (
        set(tokens) != set(ROLES)
        or not all(tokens.values())
        or len(set(tokens.values())) != len(ROLES)
    ):
        raise UserError(
            f"special tokens must be {', '.join(ROLES)}, each a distinct non-empty string; "
            f"got {tokens}"
        )
    learned = _learned_size(kind, vocab_size, extra_tokens)
    check_kind_options(kind, min_frequency=min_frequency, sp_model_type=sp_model_type)
    options = {
        **(
            {"min_frequency": DEFAULT_MIN_FREQUENCY if min_frequency is None else min_frequency}
            if kind == "bpe"
            else {}
        ),
        **_sp_settings(kind, learned, tokens, sp_model_type, sp_defaults, sp_options),
        **_seed_setting(kind, seed),
    }
    out = Path(out)
    replaceable_files(out, overwrite=overwrite)
    documents, sources = _training_documents(files, kind, list(keys), txt_mode, max_docs)
    settings = {**options, "quiet": quiet, "verbose": verbose}
    tokenizer = TRAINERS[kind](documents, learned, tokens, settings)
    if extra_tokens:
        tokenizer = tokenizer.extend(extra_tokens=extra_tokens)
    provenance = {
        "trained_on": sources,
        "requested_vocab_size": vocab_size,
        "options": options,
        "repeatable": kind not in NOT_REPEATABLE,
        **({"not_repeatable_because": NOT_REPEATABLE[kind]} if kind in NOT_REPEATABLE else {}),
    }
    publish_trained(tokenizer, out, overwrite=overwrite, provenance=provenance)
    if kind in NOT_REPEATABLE:  # after saving: a failed run ends with its one error line
        print(not_repeatable_warning(kind), file=sys.stderr)
    warning = shortfall_warning(
        kind, vocab_size, tokenizer.vocab_size, options.get("min_frequency", DEFAULT_MIN_FREQUENCY)
    )
    if warning:
        print(warning, file=sys.stderr)
    return load_tokenizer(out)


def publish_trained(
    tokenizer: BaseTokenizer, out: Path, *, overwrite: bool, provenance: dict[str, Any]
) -> None:
    """Save into a staging directory and rename it to ``out``, so a killed run leaves the old
    tokenizer or none, never a ``tokenizer.json`` without its other files (which loaded as a
    different, incomplete tokenizer). Beside files that are not a tokenizer's (``out`` is
    someone's folder), the files are written one by one instead, the others left alone."""
    from synthlm.fileio import TMP_MARK, publish_dir, temp_name

    others = [
        p.name
        for p in (out.iterdir() if out.is_dir() else ())
        if p.name not in TOKENIZER_FILES and TMP_MARK not in p.name
    ]
    if others:
        tokenizer.save(out, overwrite=overwrite, provenance=provenance)
        return
    staging = temp_name(out)
    try:
        tokenizer.save(staging, provenance=provenance)
        publish_dir(staging, out)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise


def not_repeatable_warning(kind: str) -> str:
    """The one stderr line for a kind whose library cannot repeat a run: a user comparing two
    trainings, or retraining to reproduce a store's tokenizer, must know before relying on it,
    and learn the kind that does repeat."""
    instead = REPEATABLE_ALTERNATIVE.get(kind)
    return (
        f"warning: --kind {kind} is not repeatable: {NOT_REPEATABLE[kind]}; the tokenizer is "
        f'saved with "repeatable": false in synthlm_tokenizer.json'
        + (f"; for a repeatable {kind} tokenizer use {instead}" if instead else "")
    )


def shortfall_warning(kind: str, requested: int | None, actual: int, min_frequency: int) -> str:
    """One stderr line when training stopped short of ``--vocab-size`` ("" when it did not).

    Every learned kind stops early on a corpus too small to hold that many pieces (BPE runs out
    of pairs seen ``--min-frequency`` times, unigram and sentencepiece out of candidates), and
    the vocabulary size is baked into the model's embeddings: a user who sized a model for the
    requested ids must hear that fewer exist, not find out from ``tokenizer info``.
    """
    if requested is None or actual >= requested:
        return ""
    why = {
        "bpe": f"no more pairs occur --min-frequency {min_frequency} times",
        "unigram": "no more candidate pieces",
        "sentencepiece": "no more candidate pieces",
    }.get(kind, "nothing more to learn")
    return (
        f"warning: asked for {requested:,} ids, the corpus gave {actual:,}: {kind} training "
        f"stopped early ({why}); the saved tokenizer has {actual:,} ids (train on more text, "
        f"or ask for --vocab-size {actual} to make this explicit)"
    )


# options only one kind of tokenizer reads -> that kind
KIND_OPTIONS = {"--min-frequency": "bpe", "--sp-model-type": "sentencepiece"}
DEFAULT_MIN_FREQUENCY = 2  # bpe: least count for a merge


def check_kind_options(kind: str, *, min_frequency: int | None, sp_model_type: str | None) -> None:
    """Options another kind of tokenizer reads are refused, not recorded and ignored."""
    given = {"--min-frequency": min_frequency, "--sp-model-type": sp_model_type}
    wrong = [f for f, value in given.items() if value is not None and KIND_OPTIONS[f] != kind]
    if wrong:
        said = ", ".join(f"{flag} (--kind {KIND_OPTIONS[flag]} only)" for flag in wrong)
        raise UserError(f"{said}: not read by --kind {kind}; drop it")
    if min_frequency is not None and min_frequency < 0:
        raise UserError(f"--min-frequency {min_frequency}: must be >= 0")


def _sp_settings(
    kind: str,
    size: int,
    tokens: dict[str, str],
    model_type: str | None,
    defaults: str,
    items: Sequence[str],
) -> dict[str, Any]:
    """For ``--kind sentencepiece``, the trainer's full arguments, resolved before any reading
    or training (a typo in an option fails in a second, not after an hour), and recorded with
    the user's own options so the run can be repeated.
    """
    if kind != "sentencepiece":
        if items or defaults != "synthlm":
            raise UserError(
                f"--sp-option and --sp-defaults apply to --kind sentencepiece, not {kind}"
            )
        return {}
    import sentencepiece as spm

    options = parse_sp_options(items)
    arguments = sentencepiece_arguments(
        size, tokens, model_type=model_type, defaults=defaults, options=options
    )
    return {
        "sp_model_type": arguments.get("model_type", "unigram"),  # the library's default
        "sp_defaults": defaults,
        "sp_options": options,
        "sentencepiece_args": arguments,
        "sentencepiece_version": spm.__version__,
    }


def _seed_setting(kind: str, seed: int | None) -> dict[str, int]:
    """``--seed`` seeds the one random choice a trainer makes, sentencepiece's sample of
    sentences; recorded so the run can be repeated. Other kinds draw nothing: a seed given to
    them would be silently ignored, so it is refused."""
    if kind != "sentencepiece":
        if seed is not None:
            raise UserError(
                f"--seed applies to --kind sentencepiece (it picks the sample of "
                f"input_sentence_size sentences); --kind {kind} training draws no random numbers"
            )
        return {}
    return {"seed": 0 if seed is None else seed}


def _learned_size(kind: str, vocab_size: int | None, extra_tokens: int) -> int:
    if extra_tokens < 0:
        raise UserError(f"--extra-tokens must be >= 0, got {extra_tokens}")
    if kind == "byte":
        natural = BYTE_OFFSET + 256 + extra_tokens
        if vocab_size not in (None, natural):
            raise UserError(
                f"--vocab-size {vocab_size}: a byte tokenizer has exactly {natural} ids (4 "
                f"specials + 256 bytes + {extra_tokens} extra); omit --vocab-size"
            )
        return 0
    if vocab_size is None:
        raise UserError(f"--vocab-size is required for --kind {kind}")
    learned = vocab_size - extra_tokens
    if learned < MIN_LEARNED[kind]:
        raise UserError(
            f"--vocab-size {vocab_size} is too small for --kind {kind} with {extra_tokens} "
            f"extra tokens: "
            f"needs at least {MIN_LEARNED[kind] + extra_tokens}"
        )
    return learned


def _training_documents(
    files, kind: str, keys: list[str], txt_mode: str, max_docs: int | None
) -> tuple[Iterator[str], list[str]]:
    from synthlm.data.readers import (
        check_txt_mode,
        expand_inputs,
        iter_documents,
        source_summary,
    )

    if kind == "byte" and not files:
        return iter(()), []
    sources = expand_inputs(list(files))
    check_txt_mode(sources, txt_mode)
    documents = iter_documents(sources, keys, txt_mode=txt_mode, max_docs=max_docs)
    first = next(documents, None)
    if first is None:
        raise UserError(
            f"no documents found in {', '.join(map(str, files))} (keys: {', '.join(keys)})"
        )
    return itertools.chain([first], documents), source_summary(sources)


@trainer("bpe")
def _train_bpe(
    documents: Iterator[str], size: int, tokens: dict[str, str], options: dict
) -> BaseTokenizer:
    """Byte-level BPE (GPT-2 style pre-tokenization): every byte is in the alphabet, so lossless."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    recipe = trainers.BpeTrainer(
        vocab_size=size,
        min_frequency=options["min_frequency"],
        special_tokens=list(tokens.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=_show_progress(options),
    )
    backend.train_from_iterator(documents, recipe)
    return HFTokenizer(backend, tokens, kind="bpe")


def _show_progress(options: dict) -> bool:
    """The tokenizers library's bars only on a terminal: redirected, they leave blank lines in
    the command's stdout (which scripts read)."""
    import sys

    return not options["quiet"] and sys.stdout.isatty() and sys.stderr.isatty()


@trainer("unigram")
def _train_unigram(
    documents: Iterator[str], size: int, tokens: dict[str, str], options: dict
) -> BaseTokenizer:
    """Unigram LM (HF tokenizers) laid out like a sentencepiece model: "▁" marks spaces, one
    "▁" is prepended to a text and stripped on decode, and the 256 byte pieces follow the
    specials so any character unseen in training is spelled in UTF-8 bytes, never <unk>."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    backend = Backend(models.Unigram())
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="never", split=True
    )
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    recipe = trainers.UnigramTrainer(
        vocab_size=size - 256,
        special_tokens=list(tokens.values()),
        unk_token=tokens["unk"],
        show_progress=_show_progress(options),
        initial_alphabet=[chr(c) for c in range(32, 127)] + ["\n", "\t"],
    )
    try:
        backend.train_from_iterator(documents, recipe)
    except Exception as exc:  # the tokenizers library raises a bare Exception
        if "not large enough to contain all chars" not in str(exc):
            raise
        raise UserError(
            f"--vocab-size {size}: the unigram trainer keeps every character of the corpus as a "
            f"piece, and this corpus has more distinct characters than the {size - 256} ids left "
            f"after the 256 byte pieces; raise --vocab-size, or use --kind bpe or sentencepiece"
        ) from None
    return HFTokenizer(_byte_fallback(backend, len(tokens)), tokens, kind="unigram")


def _byte_fallback(backend, count: int):
    """Put ``<0x00>``..``<0xFF>`` after the ``count`` specials and turn byte fallback on.

    Unigram keeps the specials as ordinary pieces with the best score (0.0), so "</s>" typed in
    a document would become the eos id; scored far below any real piece (as are the byte pieces,
    used only for characters no piece covers), they are never chosen for text.
    """
    from tokenizers import Tokenizer as Backend

    data = json.loads(backend.to_str())
    model = data["model"]
    byte_pieces = [f"<0x{b:02X}>" for b in range(256)]
    learned = [entry for entry in model["vocab"][count:] if entry[0] not in set(byte_pieces)]
    floor = min(score for _, score in model["vocab"]) - 1e6
    specials = [[piece, floor] for piece, _ in model["vocab"][:count]]
    model["vocab"] = specials + [[piece, floor] for piece in byte_pieces] + learned
    model["byte_fallback"] = True
    return Backend.from_str(json.dumps(data))


@trainer("sentencepiece")
def _train_sentencepiece(
    documents: Iterator[str], size: int, tokens: dict[str, str], options: dict
) -> BaseTokenizer:
    """The sentencepiece library with ``options["sentencepiece_args"]``: synthlm's Llama recipe
    (byte fallback, digits split, no normalization) or the library's defaults, plus the user's
    ``--sp-option`` overrides. Each document's lines are its sentences (see :func:`_sentences`).
    """
    import io

    import sentencepiece as spm

    arguments = options["sentencepiece_args"]
    lines = _sentences(documents, as_library=options["sp_defaults"] == "library")
    sample_size, shuffle, max_length = _sampling_arguments(arguments)
    if sample_size > 0 and shuffle:
        # the library's own sample changes from process to process (its reservoir sampler's
        # generator is salted per process, whatever the seed): synthlm draws it, seeded, and
        # feeds at most input_sentence_size sentences, which the library keeps all of, in order
        sample, eligible = sample_sentences(
            lines, sample_size, max_length=max_length, seed=options["seed"]
        )
        if options["verbose"]:
            taken = (
                f"sampled {len(sample):,} of {eligible:,} sentences (seed {options['seed']})"
                if len(sample) < eligible
                else f"all {eligible:,} sentences (input_sentence_size {sample_size:,})"
            )
            print(f"synthlm: training on {taken}", file=sys.stderr)
        lines = _drain(sample)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines,
            model_writer=model,
            # its INFO and WARNING lines fill screens (a short vocabulary is reported by
            # train_tokenizer instead); 2 keeps only errors, which also raise
            minloglevel=0 if options["verbose"] else 2,
            **arguments,
        )
    except RuntimeError as exc:
        raise UserError(_sp_failure(size, exc)) from None
    return SentencePieceTokenizer(model.getvalue())


def _sentences(documents: Iterator[str], *, as_library: bool) -> Iterator[str]:
    """Every line of every document, as the library reads a text file: it skips empty lines but
    keeps whitespace-only ones as sentences (they count toward ``input_sentence_size``), so with
    library defaults those stay (the same sentences, the same model); synthlm's recipe drops them.
    """
    for doc in documents:
        yield from (line for line in doc.split("\n") if (line if as_library else line.strip()))


# Sentences holding this character are skipped by the sentencepiece trainer (trainer_interface.cc:
# kUNKStr, "reserved chars"), so they never count toward its sample.
SP_RESERVED = "\u2585"


def _sampling_arguments(arguments: dict[str, Any]) -> tuple[int, bool, int]:
    """``input_sentence_size``, ``shuffle_input_sentence`` and ``max_sentence_length`` as the
    library will use them: the value passed, else the library's own default (its TrainerSpec)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    fields = pb.TrainerSpec.DESCRIPTOR.fields_by_name
    size, shuffle, max_length = (
        arguments.get(name, fields[name].default_value)
        for name in ("input_sentence_size", "shuffle_input_sentence", "max_sentence_length")
    )
    return int(size), bool(shuffle), int(max_length)


def eligible_sentence(line: str, max_length: int) -> str | None:
    """``line`` as the sentencepiece trainer reads it, or None when it skips it before sampling.

    Its Python iterator strips trailing ``\\r``/``\\n``; then empty sentences, sentences of more
    than ``max_sentence_length`` UTF-8 bytes and sentences holding U+2585 (its reserved
    character) are dropped (LoadSentences in trainer_interface.cc). Only what is left is counted
    and sampled, so synthlm samples among exactly those.
    """
    line = line.rstrip("\r\n")
    if not line or SP_RESERVED in line:
        return None
    if len(line) * 4 > max_length and len(line.encode("utf-8")) > max_length:
        return None
    return line


def sample_sentences(
    lines: Iterable[str], size: int, *, max_length: int, seed: int, batch: int = 1 << 16
) -> tuple[list[str], int]:
    """A uniform sample of ``size`` of the eligible sentences (:func:`eligible_sentence`) of
    ``lines``, in corpus order, and how many were eligible: what ``input_sentence_size`` with
    ``shuffle_input_sentence`` asks of sentencepiece (a uniform sample, the library's by
    reservoir), but the same sample in every process.

    The rule: the n-th eligible sentence gets the n-th 64-bit number of the Philox stream keyed
    by ``(seed, SAMPLE_STREAM)``; the ``size`` sentences with the smallest numbers are the sample
    (on equal numbers the earlier sentence). Independent uniform numbers make every subset of
    ``size`` equally likely; a number depends only on the sentence's position, so the sample does
    not depend on ``batch``. One pass, holding at most about 1.5 x ``size`` sentences (the library
    holds ``size``): candidates above the ``size``-th smallest number so far are dropped as read.
    """
    import numpy as np

    if size <= 0:
        raise ValueError(f"sample size must be positive, got {size}")
    numbers = np.random.Philox(key=[seed & (2**64 - 1), SAMPLE_STREAM])
    limit = size + max(size // 2, batch)
    keys: list[np.ndarray] = []
    texts: list[str] = []
    bound: np.uint64 | None = None  # a new sentence must draw less to enter the sample
    eligible = 0
    found = (s for s in (eligible_sentence(line, max_length) for line in lines) if s is not None)
    while chunk := list(itertools.islice(found, batch)):
        drawn = numbers.random_raw(len(chunk))
        eligible += len(chunk)
        if bound is not None:
            enter = drawn < bound
            drawn = drawn[enter]
            chunk = list(itertools.compress(chunk, enter.tolist()))
        keys.append(drawn)
        texts.extend(chunk)
        if len(texts) > limit:
            texts, keys, bound = _smallest(texts, keys, size)
    if len(texts) > size:
        texts, keys, bound = _smallest(texts, keys, size)
    return texts, eligible


def _smallest(texts: list[str], keys: list, size: int) -> tuple[list[str], list, Any]:
    """The ``size`` texts with the smallest keys, still in corpus order, and the largest key
    kept (later sentences need less). ``texts`` are in corpus order, so a stable sort breaks
    equal keys by position."""
    import numpy as np

    drawn = np.concatenate(keys)
    order = np.argsort(drawn, kind="stable")[:size]
    bound = drawn[order[-1]]  # a numpy uint64: compared exactly, never through a float
    kept = np.sort(order)
    return [texts[i] for i in kept.tolist()], [drawn[kept]], bound


def _drain(sample: list[str]) -> Iterator[str]:
    """The sample in order, each sentence let go once the library has copied it (so the corpus
    is not held twice while it trains)."""
    sample.reverse()
    while sample:
        yield sample.pop()


def _sp_failure(size: int, exc: RuntimeError) -> str:
    """The library's error, plus the way out when it is the library default's hard limit."""
    hint = ""
    if "Vocabulary size too high" in str(exc):
        hint = "; or pass --sp-option hard_vocab_limit=false to accept fewer pieces"
    return f"sentencepiece could not train a {size}-piece model on these inputs: {exc}{hint}"


@trainer("byte")
def _train_byte(
    documents: Iterator[str], size: int, tokens: dict[str, str], options: dict
) -> BaseTokenizer:
    """Nothing to learn: the 256 bytes and the specials."""
    return ByteTokenizer(tokens=tokens)
