"""Global sample order: every step's samples are the same whatever the number of processes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synthlm.train.batches import RankIndices


@given(
    micro=st.integers(1, 6),
    processes=st.integers(1, 4),
    accum=st.integers(1, 3),
    steps=st.integers(1, 4),
    cursor=st.integers(0, 1000),
)
def test_ranks_partition_each_step_into_the_global_batch(micro, processes, accum, steps, cursor):
    global_batch = micro * processes * accum
    per_rank = [
        RankIndices(cursor, micro, processes, rank, steps * accum * micro)
        for rank in range(processes)
    ]
    for step in range(steps):
        window = slice(step * accum * micro, (step + 1) * accum * micro)
        union = sorted(i for indices in per_rank for i in indices[window])
        assert union == list(
            range(cursor + step * global_batch, cursor + (step + 1) * global_batch)
        )


def test_rank_takes_a_fixed_slice_of_each_micro_batch():
    assert list(RankIndices(start=100, micro=2, processes=3, rank=1, length=6)) == [
        102,
        103,
        108,
        109,
        114,
        115,
    ]


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_with_the_consumer():
    import pytest

    from synthlm.train.batches import prefetched

    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("bad sample 2")

    got = prefetched(broken(), depth=2)
    assert next(got) == 1
    with pytest.raises(ValueError, match="bad sample 2"):
        next(got)
    endless = prefetched(iter(range(10**9)), depth=2)
    assert next(endless) == 0
    endless.close()  # the producer thread ends too (joined in the finally)


def test_step_batches_prefetched_by_a_thread_are_the_same_batches(data, tmp_path):
    import torch
    from train_helpers import tiny_config

    from synthlm.train import load_run_config
    from synthlm.train.batches import step_batches
    from synthlm.train.planners import plan_run

    plan = plan_run(load_run_config([tiny_config(tmp_path, data)]), 1)
    args = (plan.mixture, plan.objective.collate, plan.batch)
    plain = list(step_batches(*args, rank=0, cursor=5, steps=6))
    ahead = list(step_batches(*args, rank=0, cursor=5, steps=6, prefetch=2))
    assert len(plain) == len(ahead) == 6
    for a, b in zip(plain, ahead):
        assert all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
