"""The progress bar: requests done / failed / retried, tokens and cost so far (on stderr).

Its total grows while the run goes: a document's pair and triple requests are only known once
its entity list has arrived.
"""

from __future__ import annotations

from typing import Any

from synthlm.entigraph.costs import Prices


class Progress:
    def __init__(self, prices: Prices, disable: bool = False) -> None:
        from synthlm.progress import progress_bar

        self.prices = prices
        self.bar = progress_bar(
            total=0,
            unit="req",
            desc="entigraph",
            disable=disable,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self._shown = 0

    def update(self, engine: Any) -> None:
        """Called by the engine on every change (cheap: tqdm redraws at most every 0.5 s)."""
        counters = engine.counters
        if self.bar.total != engine.total:
            self.bar.total = engine.total
        finished = counters.completed + counters.failed
        if finished > self._shown:
            self.bar.update(finished - self._shown)
            self._shown = finished
        cost = self.prices.usage_cost(counters.usage)
        postfix = {
            "ok": counters.completed,
            "failed": counters.failed,
            "retries": counters.retries,
            "tokens": counters.usage.tokens,
        }
        if cost is not None:
            postfix["cost"] = f"${cost:.4f}"
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()
