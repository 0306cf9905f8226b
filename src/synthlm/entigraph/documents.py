"""Source documents for EntiGraph: a generic jsonl reader and the QuALITY article format.

Both formats end up as :class:`Document` records with a unique, stable ``id``: the pipeline's
resume keys and its seeded pair/triple samples are derived from that id, so two documents
sharing one would silently share (and overwrite) each other's work. Duplicates are therefore an
error, except in QuALITY files, where the same article legitimately appears once per question
set; those copies are merged (and must carry identical text).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthlm.errors import UserError

Format = Literal["auto", "jsonl", "quality"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "quality")
QUALITY_KEYS = ("article_id", "article")


@dataclass(frozen=True)
class Question:
    """One multiple-choice question; ``answer`` is the 0-based index of the gold option.

    ``answer`` is None where the file has no ``gold_label`` (QuALITY's test split hides them);
    the articles are still usable as EntiGraph sources.
    """

    question: str
    options: tuple[str, ...]
    answer: int | None
    difficult: bool | None = None  # None: the file has no ``difficult`` flag for it


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    title: str = ""
    author: str = ""
    questions: tuple[Question, ...] = field(default=())
    year: str = ""


@dataclass(frozen=True)
class FieldNames:
    """Which keys of a generic jsonl record hold each part of a document."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    author: str = "author"
    year: str = "year"


def read_documents(
    path: str | Path | Sequence[str | Path],
    fmt: Format = "auto",
    fields: FieldNames | None = None,
    *,
    flag: str = "--docs",
    what: str = "documents",
) -> list[Document]:
    """Read documents from one or more files (jsonl, or QuALITY json/jsonl); fail early on any bad record.

    Several files are read as one collection (QuALITY ships as train + dev): records are taken
    in file order, and ids must be unique across all of them (QuALITY copies are merged).
    ``flag`` and ``what`` name the option the files came from in errors (``eval --qa`` reads
    its questions here too, and an error about ``--docs`` would send its user looking in vain).
    """
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not paths:
        raise UserError(f"{flag}: no {what} file given")
    records: list[tuple[str, dict[str, Any]]] = []
    formats = []
    for one in paths:
        if not one.is_file():
            raise UserError(f"{flag} {one}: {what} file not found")
        found = list(_records(one))
        if not found:
            raise UserError(f"{flag} {one}: no documents found")
        formats.append(fmt if fmt != "auto" else _detect(found))
        records.extend(found)
    if len(set(formats)) > 1:
        kinds = ", ".join(f"{p} ({f})" for p, f in zip(paths, formats))
        raise UserError(f"{flag}: files of different formats ({kinds}); pass files of one format")
    if formats[0] == "quality":
        return _quality_documents(records)
    return _generic_documents(records, fields or FieldNames())


def _detect(records: list[tuple[str, dict[str, Any]]]) -> str:
    return "quality" if all(k in records[0][1] for k in QUALITY_KEYS) else "jsonl"


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, record)``: a json list/object, or one object per line (jsonl)."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON: {exc}") from None
        for index, item in enumerate(items):
            yield _as_object(f"{path}: item {index}", item)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{where}: not valid JSON ({exc}); expected one JSON object per line"
            ) from None
        yield _as_object(where, item)


def _as_object(where: str, item: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(item).__name__}")
    return where, item


def _string(where: str, record: dict[str, Any], key: str, required: bool) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise UserError(
                f"{where}: missing key {key!r} (keys present: "
                f"{', '.join(sorted(record)) or 'none'})"
            )
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise UserError(f"{where}: key {key!r} must be a string, got {type(value).__name__}")
    return value


def _generic_documents(
    records: list[tuple[str, dict[str, Any]]], fields: FieldNames
) -> list[Document]:
    documents: dict[str, Document] = {}
    for where, record in records:
        doc = Document(
            id=_string(where, record, fields.id, required=True),
            text=_string(where, record, fields.text, required=True),
            title=_string(where, record, fields.title, required=False),
            author=_string(where, record, fields.author, required=False),
            year=_string(where, record, fields.year, required=False),
        )
        _check_text(where, doc, fields.text)
        if doc.id in documents:
            raise UserError(
                f"{where}: duplicate document id {doc.id!r} (key {fields.id!r}); ids must be unique"
            )
        documents[doc.id] = doc
    return list(documents.values())


def _check_text(where: str, doc: Document, key: str) -> None:
    if not doc.id.strip():
        raise UserError(f"{where}: empty document id")
    if not doc.text.strip():
        raise UserError(f"{where}: document {doc.id!r} has an empty {key!r}")


def _quality_documents(records: list[tuple[str, dict[str, Any]]]) -> list[Document]:
    """QuALITY repeats each article once per question set: merge the copies, keep all questions."""
    documents: dict[str, Document] = {}
    for where, record in records:
        doc = Document(
            id=_string(where, record, "article_id", required=True),
            text=_string(where, record, "article", required=True),
            title=_string(where, record, "title", required=False),
            author=_string(where, record, "author", required=False),
            questions=tuple(_questions(where, record.get("questions", []))),
            year=_string(where, record, "year", required=False),
        )
        _check_text(where, doc, "article")
        previous = documents.get(doc.id)
        if previous is not None:
            if previous.text != doc.text:
                raise UserError(
                    f"{where}: article_id {doc.id!r} appears again with a different article text"
                )
            doc = Document(
                doc.id,
                doc.text,
                doc.title,
                doc.author,
                previous.questions + doc.questions,
                doc.year,
            )
        documents[doc.id] = doc
    return list(documents.values())


def _questions(where: str, items: Any) -> Iterator[Question]:
    if not isinstance(items, list):
        raise UserError(f"{where}: 'questions' must be a list, got {type(items).__name__}")
    for index, item in enumerate(items):
        yield _question(f"{where}: questions[{index}]", item)


def _question(where: str, item: Any) -> Question:
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected an object with question, options, gold_label")
    options = item.get("options")
    if (
        not isinstance(options, list)
        or len(options) != 4
        or not all(isinstance(o, str) for o in options)
    ):
        raise UserError(f"{where}: 'options' must be a list of 4 strings")
    gold = item.get("gold_label")
    if gold is not None and (
        isinstance(gold, bool) or not isinstance(gold, int) or not 1 <= gold <= 4
    ):
        raise UserError(f"{where}: 'gold_label' must be 1, 2, 3 or 4 (1-based), got {gold!r}")
    return Question(
        question=_string(where, item, "question", required=True),
        options=tuple(options),
        answer=None if gold is None else gold - 1,
        difficult=None if item.get("difficult") is None else bool(item["difficult"]),
    )
