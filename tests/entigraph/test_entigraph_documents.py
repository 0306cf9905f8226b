"""Document readers: every bad record is rejected up front, naming the file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthlm.entigraph.documents import FieldNames, read_documents
from synthlm.errors import UserError


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def quality_article(article_id: str, text: str, gold: int = 2, **extra) -> dict:
    question = {
        "question": "Who?",
        "options": ["a", "b", "c", "d"],
        "gold_label": gold,
        "difficult": 1,
    }
    return {
        "article_id": article_id,
        "title": f"T{article_id}",
        "author": "A",
        "article": text,
        "questions": [question],
        **extra,
    }


def test_jsonl_reads_fields_and_keeps_order(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "b", "title": "Bee", "author": "X", "text": "one"},
            {"id": 7, "text": "two"},
        ],
    )
    docs = read_documents(path)
    assert [(d.id, d.title, d.author, d.text) for d in docs] == [
        ("b", "Bee", "X", "one"),
        ("7", "", "", "two"),
    ]


def test_jsonl_field_names_are_configurable(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"doc": "x", "body": "hello", "name": "N"}])
    docs = read_documents(path, fields=FieldNames(id="doc", text="body", title="name"))
    assert (docs[0].id, docs[0].text, docs[0].title) == ("x", "hello", "N")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a"}], r"d\.jsonl:1: missing key 'text'"),
        (
            [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}],
            r"d\.jsonl:2: duplicate document id 'a'",
        ),
        ([{"id": "a", "text": "   "}], r"empty 'text'"),
        ([{"id": "a", "text": ["x"]}], r"key 'text' must be a string"),
    ],
)
def test_jsonl_bad_records_name_line_and_key(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(UserError, match=message):
        read_documents(path)


def test_jsonl_syntax_error_names_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": \n', encoding="utf-8")
    with pytest.raises(UserError, match=r"d\.jsonl:2: not valid JSON"):
        read_documents(path)


def test_quality_json_list_merges_repeated_articles_and_converts_gold_to_zero_based(tmp_path):
    rows = [
        quality_article("1", "story one", gold=2),
        quality_article("2", "story two", gold=4),
        quality_article("1", "story one", gold=1),
    ]
    path = tmp_path / "quality.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    docs = read_documents(path)  # auto-detected from article_id + article
    assert [d.id for d in docs] == ["1", "2"]
    assert [q.answer for q in docs[0].questions] == [1, 0]
    assert docs[1].questions[0].options == ("a", "b", "c", "d") and docs[1].questions[0].difficult


def test_quality_jsonl_is_read_too_and_missing_gold_is_allowed(tmp_path):
    article = quality_article("9", "text")
    del article["questions"][0]["gold_label"]
    docs = read_documents(write_jsonl(tmp_path / "q.jsonl", [article]), fmt="quality")
    assert docs[0].questions[0].answer is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gold_label": 5}, r"'gold_label' must be 1, 2, 3 or 4"),
        ({"gold_label": 0}, r"'gold_label' must be 1, 2, 3 or 4"),
        ({"options": ["a", "b", "c"]}, r"'options' must be a list of 4 strings"),
    ],
)
def test_quality_bad_questions_are_rejected(tmp_path, change, message):
    article = quality_article("1", "text")
    article["questions"][0].update(change)
    with pytest.raises(UserError, match=r"questions\[0\]: " + message):
        read_documents(write_jsonl(tmp_path / "q.jsonl", [article]))


def test_quality_conflicting_copies_of_an_article_are_an_error(tmp_path):
    rows = [quality_article("1", "one text"), quality_article("1", "another text")]
    with pytest.raises(UserError, match="different article text"):
        read_documents(write_jsonl(tmp_path / "q.jsonl", rows))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="documents file not found"):
        read_documents(tmp_path / "nope.jsonl")
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "x"}])
    with pytest.raises(UserError, match="expected one of auto, jsonl, quality"):
        read_documents(path, fmt="csv")  # type: ignore[arg-type]


def test_shipped_example_is_valid():
    example = Path(__file__).resolve().parents[2] / "examples" / "entigraph" / "docs.jsonl"
    docs = read_documents(example)
    assert len(docs) >= 2 and all(d.title and d.text for d in docs)
