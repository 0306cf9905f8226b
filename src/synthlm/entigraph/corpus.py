"""The run's outputs besides the log: ``corpus.jsonl`` for ``synthlm tokenize``.

The corpus is derived from ``generations.jsonl`` alone and rewritten atomically after every run,
so it is complete for exactly the records the log holds and can be rebuilt at any time
(:func:`write_corpus`). Lines are in a stable order (input document order, then summary, pairs,
triples, then entity names), never an unseeded shuffle: mixing and shuffling belong to the
training data mixture, where they are seeded. Two streaming passes over the log (an index of
sort keys and byte offsets, then the texts) keep memory small for multi-gigabyte logs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synthlm.entigraph.records import iter_log
from synthlm.entigraph.requests import STEPS
from synthlm.fileio import atomic_path

GENERATIONS = "generations.jsonl"
FAILURES = "failures.jsonl"
CORPUS = "corpus.jsonl"
MANIFEST = "manifest.json"
STEP_RANK = {step: index for index, step in enumerate(STEPS)}


def truncated(record: dict[str, Any]) -> bool:
    """A reply cut off by the token limit (kept in the log for its cost, never used as text)."""
    return record.get("finish_reason") == "length"


def corpus_line(record: dict[str, Any]) -> dict[str, Any]:
    """``{"text", "doc_id", "kind", "entities"}``: the entity step contributes its summary."""
    if record["step"] == "entities":
        return {
            "text": record["summary"],
            "doc_id": record["doc_id"],
            "kind": "summary",
            "entities": [],
        }
    return {
        "text": record["text"],
        "doc_id": record["doc_id"],
        "kind": record["step"],
        "entities": record.get("entities") or [],
    }


def corpus_lines(log: str | Path, doc_order: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Corpus lines of every unique record in ``log``, in the stable order described above."""
    position = {doc_id: index for index, doc_id in enumerate(doc_order)}
    index: dict[str, tuple[tuple[Any, ...], int, int]] = {}
    for offset, length, record in iter_log(log):
        if record["key"] not in index and not truncated(record):
            doc_id = str(record["doc_id"])
            order = (
                position.get(doc_id, len(position)),
                doc_id,
                STEP_RANK.get(record["step"], len(STEPS)),
                record.get("entities") or [],
            )
            index[record["key"]] = (order, offset, length)
    if not index:
        return
    with open(log, "rb") as handle:
        for _, offset, length in sorted(index.values(), key=lambda item: item[0]):
            handle.seek(offset)
            yield corpus_line(json.loads(handle.read(length)))


def write_corpus(path: str | Path, log: str | Path, doc_order: Sequence[str] = ()) -> Counter[str]:
    """Write the corpus atomically; return the number of lines per kind."""
    kinds: Counter[str] = Counter()
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        for line in corpus_lines(log, doc_order):
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            kinds[line["kind"]] += 1
    return kinds
