"""What to ask for: request keys, the entity-list reply format, and seeded pair/triple samples.

A request is identified by ``(document id, step, entities)``, never by a counter or position,
so the same request has the same key in every run: that is what lets a rerun skip completed
work exactly. Samples are drawn from a generator seeded by ``(seed, sha256(document id))`` via
numpy's SeedSequence (Python's ``hash()`` is salted per process, so it would give a different
sample on every run), and they are *prefix-stable*: raising ``--max-pairs`` later keeps every
pair already generated and only adds new ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STEPS: tuple[str, ...] = ("entities", "pair", "triple")
STEP_SIZES = {"pair": 2, "triple": 3}
STEP_STREAM = {"pair": 1, "triple": 2}  # independent random streams per step


@dataclass(frozen=True, order=True)
class Key:
    doc_id: str
    step: str
    entities: tuple[str, ...] = ()

    def encode(self) -> str:
        """Canonical JSON text of the key: the identity used in the log and the resume check."""
        return json.dumps([self.doc_id, self.step, list(self.entities)], ensure_ascii=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Key:
        return cls(str(record["doc_id"]), str(record["step"]), tuple(record.get("entities") or ()))


class InvalidReply(ValueError):
    """The entity step's reply is not the JSON object the prompt asks for."""


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_entity_reply(text: str) -> tuple[str, list[str]]:
    """``(summary, entities)`` from the entity step's reply; tolerate fences and chatter around it."""
    data = _json_object(text)
    summary = data.get("summary")
    entities = data.get("entities")
    if not isinstance(summary, str) or not summary.strip():
        raise InvalidReply("'summary' must be a non-empty string")
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        raise InvalidReply("'entities' must be a list of strings")
    cleaned = clean_entities(entities)
    if not cleaned:
        raise InvalidReply("'entities' is empty")
    # The summary goes into the corpus as the model wrote it, as the original's does
    # (data/entigraph.py appends response['summary'] unchanged).
    return summary, cleaned


def _json_object(text: str) -> dict[str, Any]:
    candidates = [text.strip(), _FENCE.sub("", text.strip())]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return data
    raise InvalidReply(f"not a JSON object: {text[:80]!r}")


def clean_entities(entities: Sequence[str]) -> list[str]:
    """The names as the model wrote them, in its order, without blank names and exact repeats.

    The paper's code (data/entigraph.py) puts every name into the prompts verbatim, so names are
    not normalised here: "Mars" and "mars" are two entities, as they were there. Only what cannot
    be a request of its own is dropped: a blank name (a request about no entity) and an exact
    repeat, whose pairs and triples would have the keys, and so the texts, of those already
    made (the original asked for them twice, and for a repeat paired with itself).
    """
    seen: set[str] = set()
    cleaned = []
    for name in entities:
        if name.strip() and name not in seen:
            seen.add(name)
            cleaned.append(name)
    return cleaned


def doc_rng(seed: int, doc_id: str, step: str) -> np.random.Generator:
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([seed, *words, STEP_STREAM[step]]))


def sample_combinations(
    n: int, r: int, limit: int | None, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """All ``C(n, r)`` index combinations in order, or the first ``limit`` of a seeded random stream.

    Sequential draws (rejecting repeats) make the sample prefix-stable: the first k of a larger
    sample are exactly the sample of size k.
    """
    total = math.comb(n, r)
    if limit is None or limit >= total:
        return list(itertools.combinations(range(n), r))
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < limit:
        combo = tuple(sorted(int(i) for i in rng.choice(n, size=r, replace=False)))
        chosen.setdefault(combo, None)
    return list(chosen)


def follow_up_keys(
    doc_id: str, entities: Sequence[str], seed: int, limits: dict[str, int | None]
) -> Iterator[Key]:
    """Pair then triple keys for one document, given its entity list."""
    for step in ("pair", "triple"):
        combos = sample_combinations(
            len(entities), STEP_SIZES[step], limits[step], doc_rng(seed, doc_id, step)
        )
        for combo in combos:
            yield Key(doc_id, step, tuple(entities[i] for i in combo))


def entity_values(key: Key) -> dict[str, str]:
    """``$entity_1``... template values for a pair or triple key."""
    return {f"entity_{i}": name for i, name in enumerate(key.entities, start=1)}
