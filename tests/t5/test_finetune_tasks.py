"""The GLUE task table turns rows of either file shape (Hugging Face export or original TSV)
into the T5 paper's text-to-text pairs, and pair files are read with clear errors."""

from __future__ import annotations

import json

import pytest

from synthlm.errors import ConfigError, UserError
from synthlm.finetune.files import detect_format, read_rows
from synthlm.finetune.tasks import TASKS, get_task


@pytest.mark.parametrize(
    ("task", "row", "text", "target"),
    [
        ("sst2", {"sentence": "a gem", "label": 1}, "sst2 sentence: a gem", "positive"),
        (
            "cola",
            {"sentence": "Him went.", "label": "0"},
            "cola sentence: Him went.",
            "unacceptable",
        ),
        (
            "rte",
            {"sentence1": "A.", "sentence2": "B.", "label": "not_entailment"},
            "rte sentence1: A. sentence2: B.",
            "not_entailment",
        ),
        (
            "mnli",
            {"premise": "P.", "hypothesis": "H.", "label": 2},
            "mnli hypothesis: H. premise: P.",
            "contradiction",
        ),
        (
            "mnli",
            {"sentence1": "P.", "sentence2": "H.", "gold_label": "neutral"},
            "mnli hypothesis: H. premise: P.",
            "neutral",
        ),
        (
            "qnli",
            {"question": "Q?", "sentence": "S.", "label": 0},
            "qnli question: Q? sentence: S.",
            "entailment",
        ),
        (
            "mrpc",
            {"#1 String": "X.", "#2 String": "Y.", "Quality": "1"},
            "mrpc sentence1: X. sentence2: Y.",
            "equivalent",
        ),
        (
            "qqp",
            {"question1": "A?", "question2": "B?", "is_duplicate": "0"},
            "qqp question1: A? question2: B?",
            "not_duplicate",
        ),
        (
            "stsb",
            {"sentence1": "A.", "sentence2": "B.", "label": 3.87},
            "stsb sentence1: A. sentence2: B.",
            "3.8",
        ),
        (
            "stsb",
            {"sentence1": "A.", "sentence2": "B.", "score": "4.95"},
            "stsb sentence1: A. sentence2: B.",
            "5.0",
        ),
    ],
)
def test_rows_become_t5_pairs(task, row, text, target):
    spec = get_task(task)
    assert spec.input_text(row, "f") == text
    assert spec.target_text(row, "f") == target


def test_table_covers_the_glue_tasks_with_their_standard_metrics():
    assert set(TASKS) == {"sst2", "cola", "rte", "mnli", "qnli", "mrpc", "qqp", "stsb"}
    assert "f1" in TASKS["mrpc"].metrics and "f1" in TASKS["qqp"].metrics
    assert TASKS["cola"].metrics[0] == "matthews_corr" and TASKS["stsb"].metrics == (
        "pearson",
        "spearman",
    )


def test_unlabelled_rows_have_no_target_and_bad_labels_fail():
    sst2 = get_task("sst2")
    assert sst2.target_text({"sentence": "x", "label": -1}, "f") is None
    assert sst2.target_text({"index": 0, "sentence": "x"}, "f") is None
    with pytest.raises(
        UserError,
        match=r"test\.tsv row 3: label '7' is not a sst2 label; allowed: 0-1 or negative, positive",
    ):
        sst2.target_text({"sentence": "x", "label": 7}, "test.tsv row 3")
    with pytest.raises(UserError, match=r"no column 'sentence'; columns: text, label"):
        sst2.input_text({"text": "x", "label": 1}, "f")
    with pytest.raises(
        ConfigError, match=r"finetune\.task: unknown task 'sst' \(did you mean 'sst2'\?\)"
    ):
        get_task("sst")


def test_headerless_cola_tsv_and_unquoted_glue_tsv_are_read(tmp_path):
    cola = tmp_path / "dev.tsv"
    cola.write_text(
        "gj04\t1\t\tOur friends won't buy this \"analysis.\nclc95\t0\t*\tHim went.\n",
        encoding="utf-8",
    )
    rows = read_rows(cola, "tsv", get_task("cola").headerless)
    assert [get_task("cola").target_text(r, "f") for r in rows] == ["acceptable", "unacceptable"]
    assert (
        rows[0]["sentence"] == "Our friends won't buy this \"analysis."
    )  # quote kept, line not merged
    table = tmp_path / "train.csv"
    table.write_text('sentence,label\n"a, b",1\n', encoding="utf-8")
    assert read_rows(table, "csv") == [{"sentence": "a, b", "label": "1"}]


def test_formats_are_detected_and_bad_files_named(tmp_path):
    assert detect_format(tmp_path / "x.jsonl.gz", "auto") == "jsonl"
    assert detect_format(tmp_path / "x.TSV", "auto") == "tsv"
    with pytest.raises(UserError, match=r"x\.txt: cannot tell the format .* set finetune\.format"):
        detect_format(tmp_path / "x.txt", "auto")
    with pytest.raises(
        UserError, match="neither a synthetic dataset .* nor a natural-instructions"
    ):
        detect_format(tmp_path, "auto")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"input": "a"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.jsonl:2: invalid JSON"):
        read_rows(bad, "jsonl")
