"""Token usage, prices and spending limits.

Prices are per 1M tokens, input and output separately (how every provider quotes them); with no
price table, costs are reported as unknown rather than zero. :class:`Budget` enforces
``--max-cost`` and ``--max-requests`` *before* each request: it reserves the request's worst
case (its prompt estimate plus ``--max-tokens`` of output) so that concurrent workers together
cannot overshoot the cap, then settles the reservation with the real usage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Usage:
    """Requests sent and tokens they used (failed and invalid attempts included: they cost too)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, requests: int = 1) -> None:
        self.requests += requests
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def merge(self, other: Usage | dict[str, Any]) -> None:
        data = other if isinstance(other, dict) else asdict(other)
        self.add(
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            int(data.get("requests", 0)),
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Prices:
    """Dollars (or any currency) per 1M input and output tokens; None when not given."""

    input_per_million: float | None = None
    output_per_million: float | None = None

    @property
    def known(self) -> bool:
        return self.input_per_million is not None or self.output_per_million is not None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if not self.known:
            return None
        return (
            prompt_tokens * (self.input_per_million or 0.0)
            + completion_tokens * (self.output_per_million or 0.0)
        ) / 1e6

    def usage_cost(self, usage: Usage) -> float | None:
        return self.cost(usage.prompt_tokens, usage.completion_tokens)


def format_cost(cost: float | None) -> str:
    return "n/a (no --price-in/--price-out)" if cost is None else f"${cost:,.4f}"


class Budget:
    """Admits a request only if its worst case still fits under ``--max-cost`` / ``--max-requests``."""

    def __init__(
        self, prices: Prices, max_cost: float | None = None, max_requests: int | None = None
    ) -> None:
        self.prices = prices
        self.max_cost = max_cost
        self.max_requests = max_requests
        self.spent = 0.0
        self.reserved = 0.0
        self.requests = 0
        self.exhausted: str | None = None

    def admit(self, prompt_tokens: int, max_tokens: int) -> float | None:
        """Reserve one request; return the reservation, or None (and set ``exhausted``) to stop."""
        if self.max_requests is not None and self.requests >= self.max_requests:
            self.exhausted = f"--max-requests {self.max_requests} reached"
            return None
        worst = self.prices.cost(prompt_tokens, max_tokens) or 0.0
        if self.max_cost is not None and self.spent + self.reserved + worst > self.max_cost:
            self.exhausted = (
                f"--max-cost {self.max_cost:g} reached (spent {format_cost(self.spent)}; "
                f"the next request could cost up to {format_cost(worst)})"
            )
            return None
        self.requests += 1
        self.reserved += worst
        return worst

    def settle(self, reservation: float, prompt_tokens: int, completion_tokens: int) -> None:
        self.reserved -= reservation
        self.spent += self.prices.cost(prompt_tokens, completion_tokens) or 0.0
