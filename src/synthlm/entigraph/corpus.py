"""The run's outputs besides the logs: ``corpus.jsonl`` for ``synthlm tokenize``, and
``failures.jsonl``, what is still failing.

The corpus is derived from ``generations.jsonl`` alone and rewritten atomically after every run,
so it is complete for exactly the records the log holds and can be rebuilt at any time
(:func:`write_corpus`). Lines are in a stable order (input document order, then summary, pairs,
triples, then entity names), never an unseeded shuffle: mixing and shuffling belong to the
training data mixture, where they are seeded. Two streaming passes over the log (an index of
sort keys and byte offsets, then the texts) keep memory small for multi-gigabyte logs.

``failures.jsonl`` is derived the same way, from ``failure_history.jsonl`` (every request that
failed for good in some run, with the tokens it cost: the durable record the totals count) and
the log of completed records: it lists each request that is not done and whose last run failed,
once, so a rerun that completes everything leaves no stale failures behind (and no file).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from synthlm.entigraph.records import iter_log
from synthlm.entigraph.requests import STEPS
from synthlm.fileio import atomic_path

GENERATIONS = "generations.jsonl"
FAILURES = "failures.jsonl"
FAILURE_HISTORY = "failure_history.jsonl"
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


def write_failures(path: str | Path, history: str | Path, done_keys: Collection[str]) -> int:
    """Write the requests still failing (latest failure per key, with ``failed_runs``) atomically,
    or remove ``path`` when none is; return how many are listed."""
    latest: dict[str, dict[str, Any]] = {}
    runs: Counter[str] = Counter()
    for _, _, record in iter_log(history):
        key = record.get("key")
        if isinstance(key, str) and key not in done_keys:
            latest.pop(key, None)  # re-insert: the file is ordered by each key's last failure
            latest[key] = record
            runs[key] += 1
    if not latest:
        Path(path).unlink(missing_ok=True)
        return 0
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        for key, record in latest.items():
            line = {**record, "failed_runs": runs[key]}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(latest)
