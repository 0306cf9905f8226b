"""Super-NaturalInstructions pairs as Tk-Instruct and nanoT5 build them (``format:
natural_instructions``).

nanoT5 (Nawrot 2023) evaluates its pretrained T5 by fine-tuning on Super-NaturalInstructions
(Wang et al. 2022) with Tk-Instruct's pipeline, and so does the DEPTH code's ``ni`` runs:
``ni_dataset.py`` reads a checkout of github.com/allenai/natural-instructions (``tasks/*.json``
and ``splits/<split>/{train,test}_tasks.txt``), and ``DataCollatorForNI`` writes each instance
as a prompt. Both are reproduced here, rule for rule:

* instances: every instance of a training task, or the first 100 of a test task (the
  benchmark's label-balanced evaluation set), shuffled, then the first
  ``max_num_instances_per_task`` (``max_num_instances_per_eval_task`` for test tasks);
* prompt: ``[task name ". "] ["Definition: " ... "\\n\\n"] [" Positive Example k -\\n"
  "Input: ...\\n Output: ...\\n[ Explanation: ...\\n]\\n" ...] [negative examples alike]
  "Now complete the following example -\\nInput: ...\\nOutput: "``, a ``.`` added after every
  field that does not end in punctuation; an example joins only while the prompt, with it and
  the instance, still fits ``max_input_length`` tokens (``</s>`` counted; the DEPTH code's
  copy of the collator tests ``<`` where the original tests ``<=``, and with a DEPTH
  tokenizer its test always passes: ``example_fit``);
* target: one of the instance's outputs, drawn anew each time the instance is trained on (the
  collator's ``random.choice``); an evaluation scores against one drawn output, as nanoT5's
  ``predict`` does; Tk-Instruct's evaluation and the benchmark's own take the best over all
  outputs (metrics ``rouge_l_stemmed_max``, ``exact_match_max``).

With ``tk_instruct`` each use of an instance picks one of Tk-Instruct's five encodings (the
collator's ``random.choice``): training pairs anew each epoch, evaluation pairs once.

Draws are seeded (the originals use Python's global ``random``, so their selections are not
repeatable): the shuffle of task ``t`` is keyed ``(seed, t)``, the output drawn for training
``(seed, epoch, instance)``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.errors import UserError
from synthlm.finetune.config import NaturalInstructionsConfig

SPLIT_FILES = {"train": "train_tasks.txt", "valid": "test_tasks.txt", "test": "test_tasks.txt"}
EVAL_INSTANCES = 100  # ni_dataset.py: "for testing tasks, 100 instances are selected"


def is_natural_instructions(path: Path) -> bool:
    return (path / "tasks").is_dir() and (path / "splits").is_dir()


@dataclass(frozen=True)
class Instance:
    """One instance with its task's definition and examples (a row of ``ni_dataset.py``)."""

    task: str
    definition: str
    positives: tuple[dict[str, Any], ...]
    negatives: tuple[dict[str, Any], ...]
    input: str
    outputs: tuple[str, ...]
    category: str | None = None  # the task's first category as Tk-Instruct groups it


def category_name(categories: Sequence[str] | None) -> str | None:
    """Tk-Instruct's and the benchmark's group name of a task: its first category, lower case,
    runs of whitespace as ``_`` ("Textual Entailment" -> ``textual_entailment``)."""
    return "_".join(categories[0].lower().split()) if categories else None


def read_instances(
    root: Path, role: str, cfg: NaturalInstructionsConfig, seed: int, *, progress: bool = False
) -> list[Instance]:
    """The instances of ``finetune.<role>`` (train: the split's training tasks; valid / test:
    its test tasks), in the split file's task order."""
    split = root / "splits" / cfg.split / SPLIT_FILES[role]
    if not split.is_file():
        raise UserError(
            f"finetune.{role}: {split} not found (finetune.natural_instructions.split="
            f"{cfg.split}; a natural-instructions checkout has splits/<split>/train_tasks.txt "
            "and test_tasks.txt)"
        )
    names = [line.strip() for line in split.read_text(encoding="utf-8").splitlines()]
    evaluating = role != "train"
    limit = cfg.max_num_instances_per_eval_task if evaluating else cfg.max_num_instances_per_task
    from tqdm.auto import tqdm

    out: list[Instance] = []
    tasks = [n for n in names if n]
    for number, name in enumerate(
        tqdm(tasks, desc=f"read {role} tasks", unit="task", disable=not progress, leave=False)
    ):
        task = read_task(root / "tasks" / f"{name}.json", role)
        if evaluating and "category" in cfg.breakdown and not task.get("Categories"):
            raise UserError(
                f"finetune.{role}: {root / 'tasks' / name}.json has no 'Categories', which "
                "finetune.natural_instructions.breakdown: [category] groups by"
            )
        instances = task["Instances"][:EVAL_INSTANCES] if evaluating else task["Instances"]
        if limit is not None:
            rng = np.random.Generator(np.random.Philox(key=[seed & (2**64 - 1), number]))
            instances = [instances[i] for i in rng.permutation(len(instances))[:limit]]
        out.extend(instance_of(name, task, row) for row in instances)
    if not out:
        raise UserError(f"finetune.{role}: {split} names no task with instances")
    return out


def read_task(path: Path, role: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"finetune.{role}: task file {path} not found (named by the split file)")
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"finetune.{role}: {path}: not valid JSON ({error})") from None
    for key in ("Definition", "Positive Examples", "Instances"):
        if key not in task:
            raise UserError(f"finetune.{role}: {path}: no {key!r} (a natural-instructions task)")
    return task


def instance_of(name: str, task: dict[str, Any], row: dict[str, Any]) -> Instance:
    definition = task["Definition"]
    return Instance(
        name,
        definition[0] if isinstance(definition, list) else definition,
        tuple(task["Positive Examples"]),
        tuple(task.get("Negative Examples") or ()),
        row["input"],
        tuple(row["output"]) if isinstance(row["output"], list) else (row["output"],),
        category_name(task.get("Categories")),
    )


# ---------------------------------------------------------------------------------------------
# Prompts (DataCollatorForNI)


def with_period(text: str) -> str:
    """The collator's rule: a field that does not end in punctuation gets a ``.``."""
    return text if text and text[-1] in string.punctuation else text + "."


def instance_text(instance: Instance) -> str:
    return (
        "Now complete the following example -\n"
        + with_period(f"Input: {instance.input.strip()}")
        + "\nOutput: "
    )


def definition_text(instance: Instance, cfg: NaturalInstructionsConfig) -> str:
    if not cfg.add_task_definition:
        return ""
    return with_period("Definition: " + instance.definition.strip()) + "\n\n"


def example_text(kind: str, number: int, example: dict[str, Any], explain: bool) -> str:
    text = with_period(f" {kind} Example {number} -\nInput: {example['input'].strip()}") + "\n"
    text = with_period(text + f" Output: {example['output'].strip()}") + "\n"
    if explain and "explanation" in example:
        text = with_period(text + f" Explanation: {example['explanation'].strip()}") + "\n"
    return text + "\n"


# DataCollatorForNI(tk_instruct=True): each use of an instance picks one of these at random
TK_INSTRUCT_ENCODINGS: tuple[dict[str, Any], ...] = tuple(
    {
        "add_task_name": False,
        "add_task_definition": definition,
        "num_pos_examples": positives,
        "num_neg_examples": negatives,
        "add_explanation": explain,
    }
    for definition, positives, negatives, explain in (
        (True, 0, 0, False),  # instruction only
        (False, 2, 0, False),  # examples only
        (True, 2, 0, False),  # instruction + positive examples
        (True, 2, 2, False),  # instruction + positive and negative examples
        (True, 2, 0, True),  # instruction + positive examples with explanations
    )
)


def encodings(cfg: NaturalInstructionsConfig) -> list[NaturalInstructionsConfig]:
    """The prompt settings an instance may be written with: ``cfg`` itself, or with
    ``tk_instruct`` each of Tk-Instruct's five encodings."""
    if not cfg.tk_instruct:
        return [cfg]
    return [cfg.model_copy(update=flags) for flags in TK_INSTRUCT_ENCODINGS]


# finetune.natural_instructions.example_fit: does a prompt of n tokens (</s> included) fit?
EXAMPLE_FIT: dict[str, Callable[[int, int], bool]] = {
    "within": lambda n, limit: n <= limit,  # DataCollatorForNI (Tk-Instruct, nanoT5)
    # the DEPTH code's copy: a count cut at the limit (max_length), then "<"
    "below": lambda n, limit: min(n, limit) < limit,
    # the same copy over its DEPTH tokenizer, whose __call__ answers a one-row batch: the check
    # measures the batch (1 row), so every example joins
    "always": lambda n, limit: True,
}


def build_prompts(
    instances: Sequence[Instance],
    cfg: NaturalInstructionsConfig,
    token_counts: Callable[[list[str]], list[int]],
    limit: int,
) -> list[str]:
    """Every instance's prompt. Examples join one at a time while ``token_counts`` of
    definition + examples so far (joined by spaces, as the collator measures them) + the new
    one + the instance fits ``limit`` by ``cfg.example_fit``; the first that does not fit ends
    that kind."""
    fits = EXAMPLE_FIT[cfg.example_fit]
    heads = [definition_text(x, cfg) for x in instances]
    tails = [instance_text(x) for x in instances]
    chosen: list[dict[str, list[str]]] = [{"Positive": [], "Negative": []} for _ in instances]
    for kind, count in (("Positive", cfg.num_pos_examples), ("Negative", cfg.num_neg_examples)):
        open_ = list(range(len(instances)))  # instances still taking examples of this kind
        for k in range(count):
            trial = []
            for i in open_:
                examples = instances[i].positives if kind == "Positive" else instances[i].negatives
                if k < len(examples):
                    trial.append((i, example_text(kind, k + 1, examples[k], cfg.add_explanation)))
            texts = [  # no negative is chosen while positives are tried
                heads[i]
                + " ".join(chosen[i]["Positive"])
                + " ".join(chosen[i]["Negative"])
                + text
                + tails[i]
                for i, text in trial
            ]
            counting = texts and cfg.example_fit != "always"  # "always" needs no count
            counts = token_counts(texts) if counting else [0] * len(texts)
            open_ = []
            for (i, text), n in zip(trial, counts):
                if fits(n, limit):
                    chosen[i][kind].append(text)
                    open_.append(i)
    names = [f"{x.task}. " if cfg.add_task_name else "" for x in instances]
    return [
        name + head + "".join(c["Positive"]) + "".join(c["Negative"]) + tail
        for name, head, c, tail in zip(names, heads, chosen, tails)
    ]
