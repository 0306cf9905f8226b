"""Global sample order: every step's samples are the same whatever the number of processes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synthlm.train.batches import RankIndices


@given(micro=st.integers(1, 6), processes=st.integers(1, 4), accum=st.integers(1, 3), steps=st.integers(1, 4), cursor=st.integers(0, 1000))
def test_ranks_partition_each_step_into_the_global_batch(micro, processes, accum, steps, cursor):
    global_batch = micro * processes * accum
    per_rank = [RankIndices(cursor, micro, processes, rank, steps * accum * micro) for rank in range(processes)]
    for step in range(steps):
        window = slice(step * accum * micro, (step + 1) * accum * micro)
        union = sorted(i for indices in per_rank for i in indices[window])
        assert union == list(range(cursor + step * global_batch, cursor + (step + 1) * global_batch))


def test_rank_takes_a_fixed_slice_of_each_micro_batch():
    assert list(RankIndices(start=100, micro=2, processes=3, rank=1, length=6)) == [102, 103, 108, 109, 114, 115]
