"""The id layout: every role has its own ids, promoters are distinct and seeded."""

from __future__ import annotations

from synthlm.synth import load_spec, make_plan

SPEC = {
    "num_tokens": 1000,
    "seed": 11,
    "promoter_length": 2,
    "domains": [
        {"type": "copy", "vocab": {"num_vocab": 40}},
        {"type": "count", "vocab": {"num_vocab": 10}},
        {"type": "search", "promoter_length": 3, "vocab": {"num_vocab": 20}},
        {"type": "dyck", "k": 30, "promoter_length": 0},
        {"type": "deduct"},
    ],
}


def layout_of(**changes):
    return make_plan(load_spec({**SPEC, **changes})).layout


def test_roles_partition_the_ids():
    layout = layout_of()
    owner: dict[int, str] = {}
    for r in layout.ranges():
        for i in range(r["start"], r["stop"]):
            assert i not in owner, f"id {i} is both {owner[i]} and {r['role']}"
            owner[i] = r["role"]
    assert sorted(owner) == list(range(layout.vocab_size))
    assert layout.content_size == 60  # dyck needs 2 x 30 ids, more than any vocabulary
    assert set(layout.markers) == {"answer", "query", "yes", "no", "rule", "case", "result"}
    assert layout.digits_start is not None  # count writes numbers


def test_promoters_are_distinct_seeded_and_sized():
    layout = layout_of()
    lengths = {name: len(ids) for name, ids in layout.promoters.items()}
    assert lengths == {"copy": 2, "count": 2, "search": 3, "dyck": 0, "deduct": 2}
    every = [i for ids in layout.promoters.values() for i in ids]
    assert len(every) == len(set(every)) and min(every) >= layout.promoter_start
    assert layout_of().promoters == layout.promoters
    assert layout_of(seed=12).promoters != layout.promoters


def test_layout_round_trips_and_names_ids():
    layout = layout_of()
    from synthlm.synth.role_ids import RoleIds

    assert RoleIds.from_dict(layout.to_dict()) == layout
    assert layout.symbol(layout.marker("answer")) == "<ans>"
    assert layout.symbol(layout.digit(7)) == "d7"
    assert layout.role_of(layout.promoters["search"][1]) == "promoter:search"
