"""Request keys, entity replies and seeded samples: stable across processes, prefix-stable."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlm.entigraph.requests import (
    InvalidReply,
    Key,
    clean_entities,
    doc_rng,
    follow_up_keys,
    parse_entity_reply,
    sample_combinations,
)


def test_key_encoding_is_canonical_and_round_trips():
    key = Key("doc 1", "pair", ("Ä", "B"))
    record = json.loads(json.dumps({"doc_id": "doc 1", "step": "pair", "entities": ["Ä", "B"]}))
    assert Key.from_record(record) == key
    assert key.encode() == '["doc 1", "pair", ["Ä", "B"]]'
    assert Key("d", "entities").encode() == '["d", "entities", []]'


def test_all_pairs_without_a_limit():
    keys = list(
        follow_up_keys("d", ["a", "b", "c", "d"], seed=0, limits={"pair": None, "triple": 0})
    )
    assert [k.entities for k in keys] == [
        ("a", "b"),
        ("a", "c"),
        ("a", "d"),
        ("b", "c"),
        ("b", "d"),
        ("c", "d"),
    ]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 30),
    r=st.sampled_from([2, 3]),
    small=st.integers(0, 40),
    extra=st.integers(0, 40),
    seed=st.integers(0, 2**31),
)
def test_samples_are_prefix_stable_and_distinct(n, r, small, extra, seed):
    """Raising --max-pairs keeps every pair already generated (a rerun only adds work)."""
    total = math.comb(n, r)
    first = sample_combinations(n, r, small, np.random.default_rng(seed))
    larger = sample_combinations(n, r, small + extra, np.random.default_rng(seed))
    if small + extra < total:
        assert larger[: len(first)] == first
    else:
        assert set(first) <= set(larger)
    assert len(set(larger)) == len(larger) == min(total, small + extra)
    assert all(len(c) == r and list(c) == sorted(set(c)) and max(c) < n for c in larger)


def test_sample_depends_on_seed_and_document():
    entities = [f"e{i}" for i in range(40)]

    def sample(seed, doc):
        return [k.entities for k in follow_up_keys(doc, entities, seed, {"pair": 5, "triple": 5})]

    assert sample(0, "a") == sample(0, "a")
    assert sample(0, "a") != sample(1, "a")
    assert sample(0, "a") != sample(0, "b")


def test_sample_is_identical_in_another_process_with_another_hash_seed():
    """Python's hash() is salted per process; our samples must not be."""
    code = (
        "from synthlm.entigraph.requests import doc_rng; "
        "print(doc_rng(3, 'article-17', 'pair').integers(0, 10**9, 4).tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hs},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hs in ("1", "2")
    }
    assert len(outputs) == 1
    assert (
        json.loads(outputs.pop()) == doc_rng(3, "article-17", "pair").integers(0, 10**9, 4).tolist()
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"summary": "S.", "entities": ["A", "B"]}',
        '```json\n{"summary": "S.", "entities": ["A", "B"]}\n```',
        'Here you go:\n{"summary": "S.", "entities": ["A", "B", "A"]}\nHope this helps.',
    ],
)
def test_entity_reply_tolerates_fences_and_chatter(text):
    assert parse_entity_reply(text) == ("S.", ["A", "B"])


def test_entity_reply_keeps_the_summary_and_names_as_written():
    """The original (data/entigraph.py) appends ``response['summary']`` to its corpus unchanged
    and puts each entity name into the pair/triple prompts verbatim."""
    reply = '{"summary": " S.\\n", "entities": ["Mars", "mars", " Gull  Rock"]}'
    assert parse_entity_reply(reply) == (" S.\n", ["Mars", "mars", " Gull  Rock"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Sure! The entities are A and B.", "not a JSON object"),
        ('{"summary": "", "entities": ["A"]}', "'summary' must be a non-empty string"),
        ('{"summary": "S", "entities": "A, B"}', "'entities' must be a list of strings"),
        ('{"summary": "S", "entities": ["", "  "]}', "'entities' is empty"),
        ('["A", "B"]', "not a JSON object"),
    ],
)
def test_invalid_entity_replies_are_rejected(text, message):
    with pytest.raises(InvalidReply, match=message):
        parse_entity_reply(text)


def test_clean_entities_drops_only_blank_names_and_exact_repeats():
    names = ["Marta  Lind", "marta lind", "Gull Rock", "", "  ", "Gull\nRock", "Gull Rock"]
    assert clean_entities(names) == ["Marta  Lind", "marta lind", "Gull Rock", "Gull\nRock"]
