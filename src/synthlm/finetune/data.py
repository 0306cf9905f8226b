"""Input/target pairs as token ids, and the training stream over them.

Two kinds of pair data:

* text (jsonl / json / csv / tsv / parquet, or GLUE / DiscoEval files through a task table):
  input and target strings, tokenized once with the run's tokenizer, each ending in EOS; with
  ``finetune.depth_inputs`` the inputs carry DEPTH's sentence marks and token types
  (:mod:`synthlm.finetune.depth_inputs`);
* synthetic (a ``synthlm synth generate`` dir): each task example's prompt is the input and its
  answer the target, in the meta-language id range (shifted by the layout's ``meta_offset``, as
  in pretraining), so a T5 learns the tasks as sequence-to-sequence problems (Wu et al. 2022,
  "Insights into pre-training via simpler synthetic tasks"). Language domains have no answer
  and are skipped.

Training order is a pure function of the sample index: epoch ``e`` visits the pairs in a Philox
permutation keyed by ``(seed, e)``, so resuming needs only the data cursor, exactly as for
mixtures (:mod:`synthlm.data.mixture`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthlm.data.epoch_dealing import DealtEpochs
from synthlm.data.mixture import ModelVocab
from synthlm.errors import ConfigError, UserError
from synthlm.finetune.config import FinetuneConfig
from synthlm.finetune.decoded_text import retokenized_cut
from synthlm.finetune.draws import (
    ENCODING_DRAW,
    ROLE_KEYS,
    SENTENCE_DRAW,
    pair_rng,
    with_encoding,
    with_sentence_ids,
    with_target,
)
from synthlm.finetune.files import detect_format, read_rows
from synthlm.finetune.metrics import check_metrics
from synthlm.finetune.tasks import Task, get_task

if TYPE_CHECKING:
    from synthlm.protocols import Tokenizer

TOKENIZE_BATCH = 2048
SYNTHETIC_SPLIT = {"train": "train", "valid": "valid", "test": "test"}


@dataclass
class Pair:
    """One example; ``target_ids`` is None when it has no reference (a test file)."""

    input_ids: np.ndarray
    target_ids: np.ndarray | None
    index: int
    input_text: str = ""
    target_text: str | None = None
    domain: str | None = None  # synthetic: the domain whose verifier scores the answer
    prompt: np.ndarray | None = None  # synthetic: the prompt in the dataset's own ids
    source: int = 0
    # depth_inputs: each id's sentence (token type), negated for <sent_i> / <eosen>
    input_types: np.ndarray | None = None
    # targets to draw from anew each epoch (natural-instructions instances with several outputs)
    alternatives: list[np.ndarray] | None = None
    # inputs to draw from anew each epoch (natural-instructions tk_instruct: its five encodings)
    input_alternatives: list[np.ndarray] | None = None
    # the texts of ``alternatives`` (as cut to the target length): an evaluation pair's
    # reference when that output is drawn as its target
    alternative_texts: tuple[str, ...] | None = None
    # every reference text of an evaluation pair (a natural-instructions instance's outputs),
    # for the metrics that score against the best of them
    references: tuple[str, ...] | None = None
    # the groups an evaluation pair is also scored in (natural-instructions: task, category)
    groups: dict[str, str] | None = None


@dataclass
class PairSet:
    """The pairs of one file (or synthetic split) and how to score them."""

    name: str
    path: Path
    pairs: list[Pair]
    kind: str  # "text" or "synthetic"
    metrics: tuple[str, ...]
    label_words: tuple[str, ...] | None = None
    truncated: int = 0  # pairs whose input or target was cut to the length limits
    dataset: Any = field(default=None, repr=False)  # synthetic: the SyntheticDataset
    regression: bool = False  # a task scored as numbers (STS-B), not as label words or text
    # depth_inputs.sentence_ids: shuffled: the <sent_i> ids the training stream redraws
    sentence_tokens: np.ndarray | None = None
    # group kinds (keys of Pair.groups) whose groups are scored one by one besides the whole set
    breakdown: tuple[str, ...] = ()
    # finetune.scored_text: the texts text metrics compare (decoded, or cleaned_up as nanoT5)
    scored_text: str = "decoded"

    @property
    def labelled(self) -> list[Pair]:
        return [p for p in self.pairs if p.target_ids is not None]


def default_metrics(cfg: FinetuneConfig, task: Task | None, kind: str) -> tuple[str, ...]:
    if cfg.metrics is not None:
        return tuple(cfg.metrics)
    if kind == "synthetic":
        return ("accuracy",)
    return task.metrics if task is not None else ("exact_match", "rouge_l")


def load_pairs(
    role: str,
    path: Path,
    cfg: FinetuneConfig,
    tokenizer: Tokenizer,
    layout: ModelVocab,
    *,
    progress: bool = False,
    seed: int = 0,
    eval_draws: str = "fixed",
) -> PairSet:
    """The pairs of ``finetune.<role>`` (train, valid or test) as token ids. An evaluation
    pair's draws (:mod:`synthlm.finetune.draws`) are made here with ``eval_draws: fixed``;
    with ``per_evaluation`` it keeps what to draw from, as a training pair does."""
    redraw = role == "train" or eval_draws == "per_evaluation"
    pairs = read_pairs(
        role, path, cfg, tokenizer, layout, progress=progress, seed=seed, redraw=redraw
    )
    pairs.scored_text = cfg.scored_text
    if cfg.target_padding == "trained":
        pad_targets(pairs, role, cfg, tokenizer)
    if cfg.depth_inputs is not None and cfg.depth_inputs.sentence_ids == "shuffled":
        from synthlm.finetune.depth_inputs import depth_marks, shuffle_sentence_ids

        pairs.sentence_tokens = depth_marks(tokenizer, cfg.depth_inputs).sentences
        if not redraw:  # drawn once: every evaluation sees the same inputs
            for pair in pairs.pairs:
                rng = pair_rng(SENTENCE_DRAW, seed, ROLE_KEYS[role], pair.index)
                pair.input_ids = shuffle_sentence_ids(pair.input_ids, pairs.sentence_tokens, rng)
    return pairs


def pad_targets(pairs: PairSet, role: str, cfg: FinetuneConfig, tokenizer: Tokenizer) -> None:
    """``target_padding: trained``: every target (and each alternative) padded to
    ``max_target_length`` with pad ids, which then count as targets, as the DEPTH code's
    Natural Instructions collator leaves them (``padding="max_length"``, no -100)."""
    if pairs.kind == "synthetic":
        raise ConfigError(
            f"finetune.target_padding: trained pads text targets, but finetune.{role} is a "
            "synthetic dataset, whose answers its domains' verifiers judge; use masked"
        )
    pad, width = tokenizer.pad_id, cfg.max_target_length
    if pad is None:
        raise ConfigError("finetune.target_padding: trained needs a tokenizer with a pad token")

    def padded(ids: np.ndarray) -> np.ndarray:
        return np.concatenate([ids, np.full(width - len(ids), pad, dtype=ids.dtype)])

    for pair in pairs.pairs:
        if pair.target_ids is not None:
            pair.target_ids = padded(pair.target_ids)
        if pair.alternatives:
            pair.alternatives = [padded(ids) for ids in pair.alternatives]


def read_pairs(
    role: str,
    path: Path,
    cfg: FinetuneConfig,
    tokenizer: Tokenizer,
    layout: ModelVocab,
    *,
    progress: bool,
    seed: int,
    redraw: bool = False,
) -> PairSet:
    kind = detect_format(path, cfg.format)
    columns = cfg.column_keys_set()
    if columns and kind in ("natural_instructions", "synthetic"):
        raise ConfigError(
            f"finetune.{', finetune.'.join(columns)} name the columns of text pair files, but "
            f"finetune.{role} ({path}) is {kind.replace('_', '-')} data, whose inputs and "
            "targets are built by its own rules; remove them"
        )
    if cfg.natural_instructions is not None and kind != "natural_instructions":
        raise ConfigError(
            f"finetune.natural_instructions applies to a natural-instructions checkout, but "
            f"finetune.{role} ({path}) is {kind} data; remove finetune.natural_instructions"
        )
    if kind == "natural_instructions":
        return instruction_pairs(
            role, path, cfg, tokenizer, seed=seed, progress=progress, redraw=redraw
        )
    if kind == "synthetic":
        for key, value in (("task", cfg.task), ("depth_inputs", cfg.depth_inputs)):
            if value is not None:
                raise ConfigError(
                    f"finetune.{key} applies to text pairs, but finetune.{role} ({path}) is a "
                    f"synthetic dataset; remove finetune.{key}"
                )
        return synthetic_pairs(role, path, cfg, tokenizer, layout)
    task = get_task(cfg.task, cfg.prompts) if cfg.task else None
    rows = read_rows(path, kind, task.headerless if task else ())
    if not rows:
        raise UserError(f"finetune.{role}: {path} holds no rows")
    texts = [
        row_texts(row, cfg, task, f"finetune.{role}: {path} row {i + 1}")
        for i, row in enumerate(rows)
    ]
    pairs, truncated = tokenize_pairs(
        texts, tokenizer, cfg, progress=progress, desc=f"tokenize {role}"
    )
    labels = task.label_words if task else None
    regression = task is not None and task.label_words is None
    metrics = default_metrics(cfg, task, "text")
    return PairSet(role, path, pairs, "text", metrics, labels, truncated, regression=regression)


def row_texts(
    row: dict[str, Any], cfg: FinetuneConfig, task: Task | None, where: str
) -> tuple[str, str | None]:
    """(input text, target text or None) of one row."""
    if task is not None:
        return task.input_text(row, where), task.target_text(row, where)
    if cfg.input_field not in row:
        raise UserError(
            f"{where}: no field {cfg.input_field!r} (finetune.input_field); fields: "
            f"{', '.join(map(str, row))}"
        )
    target = row.get(cfg.target_field)
    return cfg.prefix + str(row[cfg.input_field]), None if target is None else str(target)


def tokenize_pairs(
    texts: list[tuple[str, str | None]],
    tokenizer: Tokenizer,
    cfg: FinetuneConfig,
    *,
    progress: bool,
    desc: str,
) -> tuple[list[Pair], int]:
    from tqdm.auto import tqdm

    eos = tokenizer.eos_id
    encode_inputs = input_encoder(tokenizer, cfg)
    pairs, truncated = [], 0
    with tqdm(total=len(texts), desc=desc, unit="pair", disable=not progress, leave=False) as bar:
        for start in range(0, len(texts), TOKENIZE_BATCH):
            chunk = texts[start : start + TOKENIZE_BATCH]
            inputs = encode_inputs([t[0] for t in chunk])
            targets = tokenizer.encode_batch([t[1] or "" for t in chunk])
            for offset, ((source, target), (x, types, cut_x), target_ids) in enumerate(
                zip(chunk, inputs, targets)
            ):
                y, cut_y = with_eos(target_ids, eos, cfg.max_target_length)
                truncated += cut_x or (cut_y and target is not None)
                pair = Pair(x, y if target is not None else None, start + offset, source, target)
                pair.input_types = types
                pairs.append(pair)
            bar.update(len(chunk))
    return pairs, truncated


def input_encoder(
    tokenizer: Tokenizer, cfg: FinetuneConfig
) -> Callable[[list[str]], list[tuple[np.ndarray, np.ndarray | None, bool]]]:
    """Texts -> (input ids ending in EOS, token types or None, whether cut): plain T5 inputs,
    or DEPTH-marked ones with ``finetune.depth_inputs``. A natural-instructions prompt over the
    limit is first re-tokenized from its cut text with ``long_prompt_cut: retokenized_text``
    (:func:`~synthlm.finetune.decoded_text.retokenized_cut`)."""
    eos, limit = tokenizer.eos_id, cfg.max_input_length
    if cfg.depth_inputs is None:
        recut = retokenizes_long_prompts(cfg)

        def plain(texts: list[str]) -> list[tuple[np.ndarray, np.ndarray | None, bool]]:
            encoded = tokenizer.encode_batch(texts)
            over = [len(ids) > limit - 1 for ids in encoded]  # with_eos's test, before any recut
            if recut:
                encoded = retokenized_cut(encoded, tokenizer, limit)
            return [(with_eos(ids, eos, limit)[0], None, o) for ids, o in zip(encoded, over)]

        return plain
    from synthlm.finetune.depth_inputs import depth_marks, encode_depth_input
    from synthlm.text.special_tokens import TextCodec

    marks, codec = depth_marks(tokenizer, cfg.depth_inputs), TextCodec(tokenizer)
    return lambda texts: [encode_depth_input(t, codec, marks, eos, limit) for t in texts]


def retokenizes_long_prompts(cfg: FinetuneConfig) -> bool:
    """Whether over-long inputs are cut as nanoT5's collator cuts them (only natural-instructions
    data may set ``finetune.natural_instructions``, :func:`read_pairs` checks)."""
    settings = cfg.natural_instructions
    return settings is not None and settings.long_prompt_cut == "retokenized_text"


def with_eos(ids: Any, eos: int, limit: int) -> tuple[np.ndarray, bool]:
    """``ids`` + EOS, cut so the whole fits ``limit`` (EOS always last); and whether it was cut."""
    body = np.asarray(ids, dtype=np.int64)
    cut = len(body) > limit - 1
    return np.append(body[: limit - 1], eos), cut


def instruction_pairs(
    role: str,
    path: Path,
    cfg: FinetuneConfig,
    tokenizer: Tokenizer,
    *,
    seed: int,
    progress: bool,
    redraw: bool = False,
) -> PairSet:
    """Super-NaturalInstructions prompts and outputs (:mod:`synthlm.finetune.natural_instructions`).
    Each pair's target is one output drawn with ``(seed, role)``, its prompt (tk_instruct) one
    encoding drawn with ``(seed, role, pair)``. With ``redraw`` (training pairs, and evaluation
    pairs drawn anew each evaluation) a pair keeps every encoding and output to draw from:
    :class:`PairDataset` draws each epoch, :func:`~synthlm.finetune.draws.drawn_for_evaluation`
    each evaluation."""
    from synthlm.finetune import natural_instructions as ni
    from synthlm.finetune.config import NaturalInstructionsConfig

    if cfg.task is not None:
        raise ConfigError(
            f"finetune.task applies to GLUE / DiscoEval files, but finetune.{role} ({path}) is "
            "a natural-instructions checkout; remove finetune.task"
        )
    metrics = tuple(cfg.metrics) if cfg.metrics is not None else ("rouge_l_stemmed",)
    check_metrics(metrics)  # before the tasks are read
    settings = cfg.natural_instructions or NaturalInstructionsConfig()
    instances = ni.read_instances(path, role, settings, seed, progress=progress)
    eos = tokenizer.eos_id

    def token_counts(texts: list[str]) -> list[int]:  # as the collator counts: </s> included
        return [len(ids) + 1 for ids in tokenizer.encode_batch(texts)]

    if settings.tk_instruct and cfg.depth_inputs is not None:
        raise ConfigError(
            "finetune.natural_instructions.tk_instruct: true with finetune.depth_inputs is not "
            "supported (neither the DEPTH code's runs nor nanoT5's use the two together); "
            "set one of them off"
        )
    variants = [
        ni.build_prompts(instances, encoding, token_counts, cfg.max_input_length)
        for encoding in ni.encodings(settings)
    ]
    rng = np.random.Generator(np.random.Philox(key=[seed & (2**64 - 1), ROLE_KEYS[role]]))
    drawn = [x.outputs[int(rng.integers(len(x.outputs)))] for x in instances]
    if len(variants) > 1 and not redraw:  # one encoding per evaluation instance
        count = len(variants)
        picks = [
            int(pair_rng(ENCODING_DRAW, seed, ROLE_KEYS[role], i).integers(count))
            for i in range(len(drawn))
        ]
        variants = [[variants[k][i] for i, k in enumerate(picks)]]
    pairs, truncated = tokenize_pairs(
        list(zip(variants[0], drawn)), tokenizer, cfg, progress=progress, desc=f"tokenize {role}"
    )
    if len(variants) > 1:  # every encoding kept, one drawn at each use
        from tqdm.auto import tqdm

        encode = input_encoder(tokenizer, cfg)
        others = [
            encode(prompts)
            for prompts in tqdm(variants[1:], desc="tokenize encodings", disable=not progress)
        ]
        # the first encoding's cut flags (tokenize_pairs counted it with the targets); load time
        first_cut = [was_cut for _, _, was_cut in encode(variants[0])]
        for i, pair in enumerate(pairs):
            pair.input_alternatives = [pair.input_ids, *(encoded[i][0] for encoded in others)]
            # the warning counts a pair whose other encodings only were cut, too
            truncated += not first_cut[i] and any(encoded[i][2] for encoded in others)
    for pair in pairs:  # a target at the length limit may be cut: score against what was kept
        if len(pair.target_ids) == cfg.max_target_length:
            pair.target_text = tokenizer.decode(pair.target_ids[:-1].tolist(), skip_special=True)
    if role != "train":  # scored against one drawn output, or the best of them all
        for pair, instance in zip(pairs, instances):
            pair.references = instance.outputs
            pair.groups = {"task": instance.task}
            if instance.category is not None:
                pair.groups["category"] = instance.category
    if redraw:
        for pair, instance in zip(pairs, instances):
            if len(instance.outputs) > 1:
                pair.alternatives = [
                    with_eos(ids, eos, cfg.max_target_length)[0]
                    for ids in tokenizer.encode_batch(list(instance.outputs))
                ]
                pair.alternative_texts = tuple(
                    tokenizer.decode(ids[:-1].tolist(), skip_special=True)
                    if len(ids) == cfg.max_target_length
                    else text
                    for ids, text in zip(pair.alternatives, instance.outputs)
                )
    breakdown = tuple(dict.fromkeys(settings.breakdown))
    return PairSet(role, path, pairs, "text", metrics, None, truncated, breakdown=breakdown)


def synthetic_pairs(
    role: str, path: Path, cfg: FinetuneConfig, tokenizer: Tokenizer, layout: ModelVocab
) -> PairSet:
    from synthlm.synth import load_synthetic

    dataset = load_synthetic(path)
    if dataset.vocab_size > layout.meta_size:
        raise ConfigError(
            f"finetune.{role}: {path} needs {dataset.vocab_size} meta-language ids but "
            f"model.num_meta_tokens is "
            f"{layout.meta_size}; set model.num_meta_tokens={dataset.vocab_size} or more"
        )
    eos, pairs, truncated = tokenizer.eos_id, [], 0
    for number, example in enumerate(dataset.examples(SYNTHETIC_SPLIT[role])):
        x, cut_x = with_eos(
            np.asarray(example.prompt, dtype=np.int64) + layout.meta_offset,
            eos,
            cfg.max_input_length,
        )
        y, cut_y = with_eos(
            np.asarray(example.answer, dtype=np.int64) + layout.meta_offset,
            eos,
            cfg.max_target_length,
        )
        truncated += cut_x or cut_y
        pairs.append(
            Pair(
                x,
                y,
                number,
                domain=example.domain,
                prompt=np.asarray(example.prompt, dtype=np.int64),
            )
        )
    if not pairs:
        raise UserError(
            f"finetune.{role}: {path} has no task examples in its {SYNTHETIC_SPLIT[role]} "
            f"split (language domains have no answers)"
        )
    return PairSet(
        role,
        path,
        pairs,
        "synthetic",
        default_metrics(cfg, None, "synthetic"),
        None,
        truncated,
        dataset,
    )


class PairDataset:
    """Training stream over one :class:`PairSet`: ``sample(i)`` is a pure function of ``i``.

    With ``finetune.epoch_batches: per_epoch`` each pass ends with its own short step, rows
    dealt as torch's DistributedSampler deals them (:mod:`synthlm.data.epoch_dealing`); the
    short step's missing rows are filler pairs with no target."""

    def __init__(self, pairs: PairSet, *, seed: int) -> None:
        self.pairs = pairs.labelled
        self.sentence_tokens = pairs.sentence_tokens  # set: redraw <sent_i> ids each epoch
        if not self.pairs:
            raise UserError(f"finetune.train: {pairs.path} has no targets to train on")
        self.seed = seed
        self.source_names = [pairs.name]
        self.dealing: DealtEpochs | None = None

    def __len__(self) -> int:  # an endless stream, as Mixture
        return 2**62

    def deal_epochs(self, *, global_batch: int, micro: int) -> None:
        self.dealing = DealtEpochs(len(self.pairs), global_batch // micro, micro)

    @property
    def epoch_samples(self) -> int:
        return len(self.pairs) if self.dealing is None else self.dealing.samples

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a few epochs, freed with the dataset
    def _order(self, epoch: int) -> np.ndarray:
        rng = np.random.Generator(np.random.Philox(key=[self.seed & (2**64 - 1), epoch]))
        return rng.permutation(len(self.pairs))

    def sample(self, index: int) -> Pair:
        if self.dealing is not None:
            epoch, found = self.dealing.locate(index)
            if found is None:
                return self.filler()
        else:
            epoch, found = divmod(index, len(self.pairs))
        pair = self.pairs[int(self._order(epoch)[found])]
        if pair.input_alternatives:
            pair = with_encoding(pair, pair_rng(ENCODING_DRAW, self.seed, epoch, pair.index))
        if self.sentence_tokens is not None:
            rng = pair_rng(SENTENCE_DRAW, self.seed, epoch, pair.index)
            pair = with_sentence_ids(pair, self.sentence_tokens, rng)
        if not pair.alternatives:
            return pair
        key = [self.seed & (2**64 - 1), (epoch << 32) | pair.index]
        pick = np.random.Generator(np.random.Philox(key=key)).integers(len(pair.alternatives))
        return with_target(pair, int(pick))

    def filler(self) -> Pair:
        """A row of a dealt epoch's short last step: its first pair's input, no target."""
        first = self.pairs[0]
        return dataclasses.replace(
            first, target_ids=np.zeros(0, dtype=np.int64), index=-1, alternatives=None
        )

    def check_budget(self, num_samples: int) -> dict[str, float]:
        return {self.source_names[0]: num_samples / self.epoch_samples}
