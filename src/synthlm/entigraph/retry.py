"""Backoff policy for transient failures, and a pause shared by all workers.

Delays grow exponentially with "equal jitter" (half fixed, half random), so retries neither
hammer a struggling server nor synchronise into waves. When the server names a wait
(``Retry-After`` on a 429/503) that wait is honoured as given (up to ``--retry-max``) instead of
our guess, and it pauses *every* worker, not just the one that was told: the limit is per key,
so the other requests in flight would only collect 429s of their own.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


class PauseGate:
    """Workers ``await gate.wait()`` before each request; ``pause(s)`` holds them all for s seconds."""

    def __init__(self) -> None:
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self, stopped: asyncio.Event | None = None) -> None:
        while (remaining := self._until - time.monotonic()) > 0:
            if await sleep_unless(stopped, remaining):
                return


async def sleep_unless(stopped: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``, or less if ``stopped`` is set meanwhile; True if it was."""
    if stopped is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stopped.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        return False
    return True
