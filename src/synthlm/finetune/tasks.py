"""The task tables: which fields make a task's input text, its label words and its metrics.

Two prompt tables (``finetune.prompts``). ``t5`` (the default) turns one row of a GLUE file
into a T5 text-to-text pair, as in the T5 paper (Raffel et al. 2020, appendix D):
``"mnli hypothesis: ... premise: ..."`` -> ``"entailment"``. ``depth``
(:mod:`synthlm.finetune.depth_tasks`) holds the prompts and label words of the DEPTH code's
fine-tuning runs, GLUE and DiscoEval, so a DEPTH model is fine-tuned on the inputs its paper used.
Rows come from the files users have: the Hugging Face ``glue`` exports (jsonl / csv / parquet
converted, fields such as ``sentence1`` and integer ``label``) or the original GLUE TSVs (column
names such as ``#1 String``, ``gold_label``, ``is_duplicate``, label words as text; CoLA's
train/dev files have no header). Each field therefore lists every column name it may have.

Metrics are the GLUE standard ones: accuracy, F1 for MRPC and QQP, Matthews correlation for
CoLA, Pearson / Spearman for STS-B. Adding a task is one :func:`register_task` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from synthlm.errors import ConfigError, UserError
from synthlm.registry import Registry


@dataclass(frozen=True)
class Field:
    """One part of the input text: ``"{word}: {value}"``, read from the first column present."""

    word: str
    columns: tuple[str, ...]


def t5_score_text(score: float) -> str:
    """An STS-B score as T5 writes it: rounded to the nearest 0.2, one decimal (``"3.8"``)."""
    return f"{round(score * 5) / 5:.1f}"


@dataclass(frozen=True)
class Task:
    name: str
    fields: tuple[Field, ...]
    label_columns: tuple[str, ...]
    label_words: tuple[str, ...] | None  # class index -> target word; None: regression (STS-B)
    metrics: tuple[str, ...]
    headerless: tuple[str, ...] = ()  # column names of the original TSVs that have no header
    # ``str.format`` over the field words (``"sst2: sentence: {sentence}"``); None: T5's
    # ``"<name> <word>: <value> <word>: <value>"``
    template: str | None = None
    # the files' own label names by class index, where they are not the label words (GLUE's
    # "entailment" for a table whose class 0 is written "negative")
    label_names: tuple[str, ...] | None = None
    score_text: Callable[[float], str] = t5_score_text  # regression target from the score

    def input_text(self, row: Mapping[str, Any], where: str) -> str:
        values = {f.word: self._value(row, f.columns, where) for f in self.fields}
        if self.template is not None:
            return self.template.format(**values)
        return " ".join([self.name, *(f"{word}: {value}" for word, value in values.items())])

    def target_text(self, row: Mapping[str, Any], where: str) -> str | None:
        """The label as a word (regression: ``score_text`` of the score); None when the row has
        no label (GLUE test files, or label -1)."""
        value = self._value(row, self.label_columns, where, required=False)
        if value is None or str(value).strip() in ("", "-1", "-1.0"):
            return None
        if self.label_words is None:
            return self.score_text(float(value))
        return self.label_word(value, where)

    def label_word(self, value: Any, where: str) -> str:
        text = str(value).strip()
        if text in self.label_words:
            return text
        if self.label_names is not None and text in self.label_names:
            return self.label_words[self.label_names.index(text)]
        try:
            index = int(float(text))
        except ValueError:
            index = -1
        if not 0 <= index < len(self.label_words):
            names = ", ".join([*self.label_words, *(self.label_names or ())])
            raise UserError(
                f"{where}: label {text!r} is not a {self.name} label; allowed: "
                f"0-{len(self.label_words) - 1} or {names}"
            )
        return self.label_words[index]

    def has_columns(self, columns: list[str]) -> bool:
        return all(any(c in columns for c in f.columns) for f in self.fields)

    @staticmethod
    def _value(
        row: Mapping[str, Any], columns: tuple[str, ...], where: str, required: bool = True
    ) -> Any:
        for column in columns:
            if column in row:
                return row[column]
        if required:
            raise UserError(
                f"{where}: no column {' or '.join(repr(c) for c in columns)}; columns: "
                f"{', '.join(map(str, row))}"
            )
        return None


TASKS: Registry[Task] = Registry("task")  # the t5 table
PROMPT_TABLES: dict[str, Registry[Task]] = {"t5": TASKS, "depth": Registry("task")}


def register_task(task: Task, table: str = "t5") -> Task:
    return PROMPT_TABLES[table].add(task.name, task)


def get_task(name: str, prompts: str = "t5") -> Task:
    table = PROMPT_TABLES[prompts]
    if name in table:
        return table[name]
    others = [other for other, tasks in PROMPT_TABLES.items() if name in tasks]
    if others:
        raise ConfigError(
            f"finetune.task: {name} is in the {others[0]} prompt table, not in {prompts}; set "
            f"finetune.prompts: {others[0]}"
        )
    raise ConfigError(f"finetune.task: {table.unknown(name)} (finetune.prompts: {prompts})")


LABEL = ("label",)
register_task(
    Task(
        "sst2", (Field("sentence", ("sentence",)),), LABEL, ("negative", "positive"), ("accuracy",)
    )
)
register_task(
    Task(
        "cola",
        (Field("sentence", ("sentence",)),),
        LABEL,
        ("unacceptable", "acceptable"),
        ("matthews_corr", "accuracy"),
        headerless=("source", "label", "original_label", "sentence"),
    )
)
register_task(
    Task(
        "rte",
        (Field("sentence1", ("sentence1",)), Field("sentence2", ("sentence2",))),
        LABEL,
        ("entailment", "not_entailment"),
        ("accuracy",),
    )
)
register_task(
    Task(
        "mnli",
        (
            Field("hypothesis", ("hypothesis", "sentence2")),
            Field("premise", ("premise", "sentence1")),
        ),
        ("label", "gold_label"),
        ("entailment", "neutral", "contradiction"),
        ("accuracy",),
    )
)
register_task(
    Task(
        "qnli",
        (Field("question", ("question",)), Field("sentence", ("sentence",))),
        LABEL,
        ("entailment", "not_entailment"),
        ("accuracy",),
    )
)
register_task(
    Task(
        "mrpc",
        (
            Field("sentence1", ("sentence1", "#1 String")),
            Field("sentence2", ("sentence2", "#2 String")),
        ),
        ("label", "Quality"),
        ("not_equivalent", "equivalent"),
        ("accuracy", "f1"),
    )
)
register_task(
    Task(
        "qqp",
        (Field("question1", ("question1",)), Field("question2", ("question2",))),
        ("label", "is_duplicate"),
        ("not_duplicate", "duplicate"),
        ("accuracy", "f1"),
    )
)
register_task(
    Task(
        "stsb",
        (Field("sentence1", ("sentence1",)), Field("sentence2", ("sentence2",))),
        ("label", "score"),
        None,
        ("pearson", "spearman"),
    )
)


# The DEPTH code's table registers itself into PROMPT_TABLES["depth"]; imported last because it
# builds on the classes above.
from synthlm.finetune import depth_tasks  # noqa: E402,F401
