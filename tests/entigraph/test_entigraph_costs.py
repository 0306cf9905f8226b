"""Prices, budgets and the backoff policy."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from synthlm.entigraph.costs import Budget, Prices, Usage
from synthlm.entigraph.retry import PauseGate, RetryPolicy


def test_prices_are_per_million_tokens_and_unknown_without_a_table():
    assert Prices(2.0, 8.0).cost(1_000_000, 500_000) == pytest.approx(6.0)
    assert Prices(None, 1.0).cost(10**6, 10**6) == pytest.approx(1.0)
    assert Prices().cost(10, 10) is None


def test_budget_reserves_worst_case_so_concurrent_requests_cannot_overshoot():
    budget = Budget(Prices(1.0, 1.0), max_cost=0.01)  # $0.01 = 10k tokens
    first = budget.admit(prompt_tokens=3000, max_tokens=2000)  # worst case $0.005
    second = budget.admit(prompt_tokens=3000, max_tokens=2000)
    assert first and second
    assert budget.admit(prompt_tokens=1, max_tokens=1) is None  # nothing left unreserved
    assert "--max-cost" in budget.exhausted
    budget.settle(first, 1000, 100)  # the real request was cheap: room again
    assert budget.admit(prompt_tokens=1000, max_tokens=1000) is not None
    assert budget.spent == pytest.approx(0.0011)


def test_budget_counts_requests():
    budget = Budget(Prices(), max_requests=2)
    assert budget.admit(10, 10) is not None and budget.admit(10, 10) is not None
    assert budget.admit(10, 10) is None and "--max-requests 2" in budget.exhausted


def test_usage_merge():
    usage = Usage()
    usage.add(10, 5)
    usage.merge({"requests": 2, "prompt_tokens": 1, "completion_tokens": 1})
    assert (
        usage.to_dict() == {"requests": 3, "prompt_tokens": 11, "completion_tokens": 6}
        and usage.tokens == 17
    )


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(base=1.0, cap=5.0, rng=random.Random(0))
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_retry_after_is_honoured_as_given_up_to_the_cap():
    policy = RetryPolicy(base=0.01, cap=30.0)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=600.0) == 30.0


def test_pause_gate_holds_every_waiter_and_stops_early_when_told():
    async def scenario() -> tuple[float, float]:
        gate, stopped = PauseGate(), asyncio.Event()
        gate.pause(0.2)
        start = time.monotonic()
        await asyncio.gather(gate.wait(), gate.wait())
        waited = time.monotonic() - start
        gate.pause(10.0)
        asyncio.get_running_loop().call_later(0.05, stopped.set)
        start = time.monotonic()
        await gate.wait(stopped)
        return waited, time.monotonic() - start

    waited, cut_short = asyncio.run(scenario())
    assert 0.18 <= waited < 1.0
    assert cut_short < 1.0
