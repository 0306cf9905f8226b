"""The vectorised per-sequence operations agree with plain Python on random ragged batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlm.synth.ragged import Ragged, assemble, concat, digits, group

batches = st.lists(st.lists(st.integers(0, 6), max_size=7), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(batches, st.lists(st.integers(1, 3), min_size=6, max_size=6))
def test_operations_match_python(rows, times):
    r = Ragged.from_list(rows)
    assert r.reversed().tolist() == [row[::-1] for row in rows]
    assert r.sorted().tolist() == [sorted(row) for row in rows]
    k = np.array(times[: len(rows)])
    assert r.repeated(k).tolist() == [[t for t in row for _ in range(n)] for row, n in zip(rows, k)]
    assert r.keep(r.first_occurrences(7)).tolist() == [list(dict.fromkeys(row)) for row in rows]
    other = Ragged.from_list(rows[::-1])
    assert r.keep(r.member_of(other, 7)).tolist() == [
        [t for t in a if t in b] for a, b in zip(rows, rows[::-1])
    ]
    assert concat([r, other]).tolist() == [a + b for a, b in zip(rows, rows[::-1])]
    assert r.take(np.arange(len(rows))[::-1]).tolist() == rows[::-1]


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_digits_and_grouping(values):
    d = digits(np.array(values), 100)
    assert d.tolist() == [[100 + int(c) for c in str(v)] for v in values]
    grouped = group(d, np.array([len(values)]))
    assert grouped.tolist() == [[t for v in values for t in (100 + int(c) for c in str(v))]]


def test_assemble_marks_output_parts():
    x = Ragged.from_list([[1, 2], [3]])
    tokens, sizes, output = assemble(
        [(x, False), (Ragged.constant(9, np.array([True, True])), False), (x.reversed(), True)]
    )
    assert tokens.tolist() == [1, 2, 9, 2, 1, 3, 9, 3] and sizes.tolist() == [5, 3]
    assert output.tolist() == [False, False, False, True, True, False, False, True]


def test_sampling_helpers_match_their_plain_definitions():
    from synthlm.synth.domains.sampling import distinct_sorted, random_order_within
    from synthlm.synth.vocab import TokenSampler, VocabSpec

    rng = np.random.default_rng(3)
    for groups in (5, 3000):
        owner = np.sort(rng.integers(0, groups, 4000))
        u = rng.random(4000)
        assert np.array_equal(random_order_within(owner, u), np.lexsort((u, owner)))
    lengths = rng.integers(0, 40, 50)
    y = distinct_sorted(rng, lengths, 60)
    for row, size in zip(y.tolist(), lengths):
        assert len(row) == size and row == sorted(set(row)) and all(0 <= v < 60 for v in row)
    # sample_distinct: i.i.d. draws, then every repeat of an earlier id redrawn until none is
    # left (the loop as first written), the same ids for the same generator state
    sampler = TokenSampler(VocabSpec(num_vocab=300))
    lengths = rng.integers(1, 60, 40)
    ours = sampler.sample_distinct(np.random.default_rng(9), lengths)
    plain_rng = np.random.default_rng(9)
    plain = Ragged(sampler.sample(plain_rng, int(lengths.sum())), lengths)
    while True:
        repeats = ~plain.first_occurrences(300)
        if not repeats.any():
            break
        plain.values[repeats] = sampler.sample(plain_rng, int(repeats.sum()))
    assert np.array_equal(ours.values, plain.values)
