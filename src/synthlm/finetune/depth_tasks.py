"""The DEPTH code's fine-tuning prompts (``finetune.prompts: depth``): GLUE and DiscoEval.

Bamberger et al. 2024 fine-tune T5 and DEPTH checkpoints with prompts of their own
(``fine_tune_constants/glue_constants.py``, ``disco_eval_constants.py`` and
``encoder_decoder_utils/data_utils.py`` in github.com/zbambergerNLP/depth), not the T5 paper's.
They are reproduced here as that code builds them, quirks included, because a fine-tuned model
answers the prompts it was trained on:

* one-input GLUE tasks: ``"sst2: sentence: <sentence>"`` (a colon after the task name);
* two-input tasks: ``prefix_1 + first + " " + prefix_2 + second``, e.g.
  ``"qnli question: <question> sentence: <sentence>"``; RTE's second prefix is ``"sentence2"``
  with no colon or space; MNLI writes the *premise* after ``"hypothesis:"`` and the hypothesis
  after ``"premise:"`` (its columns are swapped against its prefixes);
* label words: RTE's classes are written ``negative`` (0, entailment) and ``positive``
  (1, not_entailment); the others as in GLUE; an STS-B target is Python's ``str`` of
  ``round(score / 0.2) * 0.2`` (``"3.8000000000000003"``), which the target length may cut;
* DiscoEval (Chen et al. 2019, the ``OfekGlick/DiscoEval`` export): ``"<Task>: "`` then each
  sentence as ``"<ordinal>_sentence: <text>"``, joined by tabs; label words such as
  ``First sentence``, ``Coherent``, a PDTB sense (``Contingency.Cause``) or an RST relation
  (``NS-Elaboration``). An RST column of the export is a list of discourse units, which the
  code's f-string writes as a Python list (``first_sentence: ['unit one', 'unit two']``), and
  so does this table.

Rows may also come from the original files: GLUE TSVs (text labels such as ``entailment`` map
through ``label_names``) and DiscoEval's ``label<TAB>sentence...`` text files (``headerless``).
docs/papers/depth.md says how to run them and what differs.
"""

from __future__ import annotations

from synthlm.finetune.tasks import Field, Task, register_task


def python_score_text(score: float) -> str:
    """STS-B target as the DEPTH code writes it: ``str(round(score / 0.2) * 0.2)``."""
    return str(round(score / 0.2) * 0.2)


LABEL = ("label",)
GLUE_SENTENCE = (Field("sentence", ("sentence",)),)


def glue(name: str, template: str, fields: tuple[Field, ...], **kwargs: object) -> Task:
    return register_task(Task(name, fields, template=template, **kwargs), "depth")  # type: ignore[arg-type]


glue(
    "sst2",
    "sst2: sentence: {sentence}",
    GLUE_SENTENCE,
    label_columns=LABEL,
    label_words=("negative", "positive"),
    metrics=("accuracy",),
)
glue(
    "cola",
    "cola: sentence: {sentence}",
    GLUE_SENTENCE,
    label_columns=LABEL,
    label_words=("unacceptable", "acceptable"),
    metrics=("matthews_corr", "accuracy"),
    headerless=("source", "label", "original_label", "sentence"),
)
glue(
    "rte",
    "rte: sentence1: {sentence1} sentence2{sentence2}",
    (Field("sentence1", ("sentence1",)), Field("sentence2", ("sentence2",))),
    label_columns=LABEL,
    label_words=("negative", "positive"),
    label_names=("entailment", "not_entailment"),
    metrics=("accuracy",),
)
glue(
    "mnli",
    "mnli hypothesis: {premise} premise: {hypothesis}",
    (
        Field("premise", ("premise", "sentence1")),
        Field("hypothesis", ("hypothesis", "sentence2")),
    ),
    label_columns=("label", "gold_label"),
    label_words=("entailment", "neutral", "contradiction"),
    metrics=("accuracy",),
)
glue(
    "qnli",
    "qnli question: {question} sentence: {sentence}",
    (Field("question", ("question",)), Field("sentence", ("sentence",))),
    label_columns=LABEL,
    label_words=("entailment", "not_entailment"),
    metrics=("accuracy",),
)
glue(
    "mrpc",
    "mrpc sentence1: {sentence1} sentence2: {sentence2}",
    (
        Field("sentence1", ("sentence1", "#1 String")),
        Field("sentence2", ("sentence2", "#2 String")),
    ),
    label_columns=("label", "Quality"),
    label_words=("not_equivalent", "equivalent"),
    metrics=("accuracy", "f1"),
)
glue(
    "qqp",
    "qqp question1: {question1} question2: {question2}",
    (Field("question1", ("question1",)), Field("question2", ("question2",))),
    label_columns=("label", "is_duplicate"),
    label_words=("not_duplicate", "duplicate"),
    metrics=("accuracy", "f1"),
)
glue(
    "stsb",
    "stsb sentence1: {sentence1} sentence2: {sentence2}",
    (Field("sentence1", ("sentence1",)), Field("sentence2", ("sentence2",))),
    label_columns=("label", "score"),
    label_words=None,
    metrics=("pearson", "spearman"),
    score_text=python_score_text,
)

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
SP_LABELS = (
    "First sentence",
    "Second sentence",
    "Third sentence",
    "Fourth sentence",
    "Fifth sentence",
)
# PDTB's explicit and implicit relation senses and RST's nuclearity-relation labels, each in
# its class order (DiscoEvalConstants.PDTB_E_LABELS, PDTB_I_LABELS, RST_LABELS)
PDTB_E_LABELS = (
    "Comparison.Concession",
    "Comparison.Contrast",
    "Contingency.Cause",
    "Contingency.Condition",
    "Contingency.Pragmatic condition",
    "Expansion.Alternative",
    "Expansion.Conjunction",
    "Expansion.Instantiation",
    "Expansion.List",
    "Expansion.Restatement",
    "Temporal.Asynchronous",
    "Temporal.Synchrony",
)
PDTB_I_LABELS = (
    "Comparison.Concession",
    "Comparison.Contrast",
    "Contingency.Cause",
    "Contingency.Pragmatic cause",
    "Expansion.Alternative",
    "Expansion.Conjunction",
    "Expansion.Instantiation",
    "Expansion.List",
    "Expansion.Restatement",
    "Temporal.Asynchronous",
    "Temporal.Synchrony",
)
RST_LABELS = (
    "NS-Explanation",
    "NS-Evaluation",
    "NN-Condition",
    "NS-Summary",
    "SN-Cause",
    "SN-Background",
    "NS-Background",
    "SN-Summary",
    "NS-Topic-Change",
    "NN-Explanation",
    "SN-Topic-Comment",
    "NS-Elaboration",
    "SN-Attribution",
    "SN-Manner-Means",
    "NN-Evaluation",
    "NS-Comparison",
    "NS-Contrast",
    "SN-Condition",
    "NS-Temporal",
    "NS-Enablement",
    "SN-Evaluation",
    "NN-Topic-Comment",
    "NN-Temporal",
    "NN-Textual-organization",
    "NN-Same-unit",
    "NN-Comparison",
    "NN-Topic-Change",
    "SN-Temporal",
    "NN-Joint",
    "SN-Enablement",
    "SN-Explanation",
    "NN-Contrast",
    "NN-Cause",
    "SN-Contrast",
    "NS-Attribution",
    "NS-Topic-Comment",
    "SN-Elaboration",
    "SN-Comparison",
    "NS-Cause",
    "NS-Condition",
    "NS-Manner-Means",
)
DISCO_EVAL = {  # task -> (sentences per example, label words by class)
    "SParxiv": (5, SP_LABELS),
    "SProcstory": (5, SP_LABELS),
    "SPwiki": (5, SP_LABELS),
    "BSOarxiv": (2, ("Incorrect order", "Correct order")),
    "BSOrocstory": (2, ("Incorrect order", "Correct order")),
    "BSOwiki": (2, ("Incorrect order", "Correct order")),
    "DCchat": (6, ("Incoherent", "Coherent")),
    "DCwiki": (6, ("Incoherent", "Coherent")),
    "SSPabs": (1, ("Does not belong to abstract", "Belongs to abstract")),
    "PDTB_E": (2, PDTB_E_LABELS),
    "PDTB_I": (2, PDTB_I_LABELS),
    "RST": (2, RST_LABELS),
}
# RST's examples exist only as pickles (DiscoEval's data/RST/*.pkl: label, then the discourse
# units of each of the two spans as a list); they are read from an export with list columns,
# never unpickled here, so RST has no headerless text layout.
NO_TEXT_FILES = ("RST",)


def disco_eval(name: str, sentences: int, label_words: tuple[str, ...]) -> Task:
    """DiscoEval tasks read the export's ``first_sentence``... columns (or ``sentence_1``...,
    or a headerless ``label<TAB>sentence...`` file)."""
    words = [f"{ORDINALS[i]}_sentence" for i in range(sentences)]
    fields = tuple(Field(w, (w, f"sentence_{i + 1}")) for i, w in enumerate(words))
    template = f"{name}: " + "\t".join(f"{w}: {{{w}}}" for w in words)
    return register_task(
        Task(
            name,
            fields,
            LABEL,
            label_words,
            ("accuracy",),
            headerless=() if name in NO_TEXT_FILES else ("label", *words),
            template=template,
        ),
        "depth",
    )


for _name, (_count, _words) in DISCO_EVAL.items():
    disco_eval(_name, _count, _words)
