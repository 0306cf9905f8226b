"""What an output directory already holds: completed keys, entity lists, usage so far.

Resume streams ``generations.jsonl`` (the only source of truth for "done") and
``failure_history.jsonl`` (attempts that cost tokens but produced nothing), keeping keys, entity
lists and totals in memory, never the generated texts. A directory lock keeps two runs from
appending to the same log at once, which would send every request twice.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthlm.entigraph.corpus import FAILURE_HISTORY, FAILURES, GENERATIONS, truncated
from synthlm.entigraph.costs import Usage
from synthlm.entigraph.documents import Document
from synthlm.entigraph.records import iter_log
from synthlm.entigraph.requests import Key, follow_up_keys
from synthlm.errors import UserError

IDENTITY_FIELDS = ("model", "prompts_sha256", "seed")


@dataclass
class RunState:
    """Light summary of the logs: keys and entity lists, not texts (those stay on disk)."""

    done_keys: set[str] = field(default_factory=set)
    entities: dict[str, list[str]] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    steps: Counter[str] = field(default_factory=Counter)
    output_tokens: Counter[str] = field(default_factory=Counter)
    identities: dict[str, set[Any]] = field(
        default_factory=lambda: {name: set() for name in IDENTITY_FIELDS}
    )

    @classmethod
    def load(cls, out: Path) -> RunState:
        state = cls()
        for _, _, record in iter_log(out / GENERATIONS):
            state.add(record)
        for _, _, failure in iter_log(failure_history(out)):
            state.usage.merge(failure.get("usage") or {})
        return state

    def add(self, record: dict[str, Any]) -> None:
        """Take in one completed record (a repeated key keeps the first, and is not counted)."""
        key = record["key"]
        if key in self.done_keys:
            return
        if truncated(record):  # written by older versions: paid for, but to be asked again
            self.usage.merge(record.get("usage") or {})
            return
        self.done_keys.add(key)
        usage = record.get("usage") or {}
        self.usage.merge(usage)
        self.steps[record["step"]] += 1
        self.output_tokens[record["step"]] += int(usage.get("completion_tokens", 0))
        for name in IDENTITY_FIELDS:
            self.identities[name].add(record.get(name))
        if record["step"] == "entities":
            self.entities[str(record["doc_id"])] = list(record["entity_list"])

    @property
    def completed(self) -> int:
        return len(self.done_keys)

    def mean_output_tokens(self, step: str) -> float | None:
        return self.output_tokens[step] / self.steps[step] if self.steps[step] else None

    def done(self, key: Key) -> bool:
        return key.encode() in self.done_keys

    def pending_keys(
        self, documents: Sequence[Document], seed: int, limits: dict[str, int | None]
    ) -> Iterator[Key]:
        for doc in documents:
            entities = self.entities.get(doc.id)
            if entities is None:
                yield Key(doc.id, "entities")
                continue
            yield from (
                k for k in follow_up_keys(doc.id, entities, seed, limits) if not self.done(k)
            )

    def coverage(
        self, documents: Sequence[Document], seed: int, limits: dict[str, int | None]
    ) -> tuple[int, Counter[str]]:
        """``(pending, done)``: requests these settings still need (the keys :meth:`pending_keys`
        yields), and their completed records per step, in one pass over the samples.

        The log may hold more than ``done``: records an earlier run made with other ``--docs``,
        ``--max-pairs``, ``--max-triples`` or ``--seed``. The corpus keeps those (it is built
        from the whole log); ``self.steps`` minus ``done`` counts them, so a run can say so.
        """
        pending = 0
        done: Counter[str] = Counter()
        for doc in documents:
            entities = self.entities.get(doc.id)
            if entities is None:  # entity lists come only from completed entity records
                pending += 1
                continue
            done["entities"] += 1
            for key in follow_up_keys(doc.id, entities, seed, limits):
                if self.done(key):
                    done[key.step] += 1
                else:
                    pending += 1
        return pending, done

    def check_identity(self, identity: dict[str, Any], out: Path, allow_mixed: bool) -> None:
        """Refuse to mix models, prompt sets or seeds in one corpus unless asked to."""
        if allow_mixed or not self.done_keys:
            return
        for name in IDENTITY_FIELDS:
            seen = self.identities[name]
            if identity[name] not in seen:
                previous = ", ".join(sorted(repr(v) for v in seen))
                raise UserError(
                    f"--out {out}: its records were made with {name} {previous}, this run "
                    f"uses {identity[name]!r}; "
                    "use another --out, or pass --allow-mixed to add to it anyway"
                )


def failure_history(out: Path) -> Path:
    """The log of failed requests; directories of older synthlm versions kept it in
    ``failures.jsonl`` (then an append-only log), which :func:`adopt_old_failure_log` renames."""
    history = out / FAILURE_HISTORY
    return history if history.exists() or not (out / FAILURES).exists() else out / FAILURES


def adopt_old_failure_log(out: Path) -> None:
    """Before a run writes: an older version's append-only ``failures.jsonl`` becomes the history
    (its usage stays counted); ``failures.jsonl`` is then rewritten as the still-failing list."""
    old = out / FAILURES
    if old.exists() and not (out / FAILURE_HISTORY).exists():
        old.rename(out / FAILURE_HISTORY)


@contextlib.contextmanager
def directory_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on ``out`` for the run (advisory; released by the OS if we are killed)."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no flock; a second concurrent run is the user's risk there
        yield
        return
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(
                f"--out {out}: another synthlm entigraph run is using this directory"
            ) from None
        try:
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
