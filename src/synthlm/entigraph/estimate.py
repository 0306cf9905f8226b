"""``--dry-run``: how many requests, tokens and how much money a run would take, before any is spent.

Entity lists are unknown until step 1 has run, so documents not yet analysed are assumed to
yield ``--assumed-entities`` entities; documents already analysed in ``--out`` use their real
lists, and completed keys are left out, so a dry run on a half-finished directory estimates
what is *left*. Output tokens are bounded by ``--max-tokens``; once the directory holds records
of a step, their mean output length gives the expected output and the expected cost as well
(without ``--max-tokens``, the paper's setting, the maximum is unbounded and the expected
figures are the ones to budget with).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synthlm.entigraph.backends.base import Backend
from synthlm.entigraph.costs import Prices, format_cost
from synthlm.entigraph.documents import Document
from synthlm.entigraph.requests import STEP_SIZES, STEPS, Key, entity_values
from synthlm.entigraph.settings import EntiGraphConfig
from synthlm.entigraph.state import RunState
from synthlm.entigraph.templates import PromptSet, document_values


@dataclass
class StepEstimate:
    requests: int = 0
    prompt_tokens: int = 0
    max_completion_tokens: int | None = 0  # None: unbounded (no --max-tokens)
    expected_completion_tokens: int | None = None


@dataclass
class Estimate:
    steps: dict[str, StepEstimate] = field(
        default_factory=lambda: {s: StepEstimate() for s in STEPS}
    )
    prices: Prices = field(default_factory=Prices)
    notes: list[str] = field(default_factory=list)

    def total(self) -> StepEstimate:
        total = StepEstimate(expected_completion_tokens=0)
        for step in self.steps.values():
            total.requests += step.requests
            total.prompt_tokens += step.prompt_tokens
            total.max_completion_tokens = _plus(
                total.max_completion_tokens, step.max_completion_tokens, step.requests
            )
            if (
                total.expected_completion_tokens is not None
                and step.expected_completion_tokens is not None
            ):
                total.expected_completion_tokens += step.expected_completion_tokens
            elif step.requests:
                total.expected_completion_tokens = None
        return total

    def to_dict(self) -> dict[str, Any]:
        rows = {**self.steps, "total": self.total()}
        return {
            name: {
                **vars(row),
                "max_cost": self._max_cost(row),
                "expected_cost": self._expected_cost(row),
            }
            for name, row in rows.items()
        }

    def _max_cost(self, row: StepEstimate) -> float | None:
        if row.max_completion_tokens is None:
            return None
        return self.prices.cost(row.prompt_tokens, row.max_completion_tokens)

    def _expected_cost(self, row: StepEstimate) -> float | None:
        """Prompt tokens plus the expected output: the figure to budget with when no
        ``--max-tokens`` caps the replies (the paper's setting), where the maximum is unbounded."""
        expected = row.expected_completion_tokens if row.requests else 0
        if expected is None:
            return None
        return self.prices.cost(row.prompt_tokens, expected)

    def table(self) -> str:
        lines = [
            f"{'step':<9} {'requests':>9} {'prompt tok':>12} {'output tok (max)':>17} "
            f"{'expected out':>13}  {'cost (max)':<27}  cost (expected)"
        ]
        for name, row in {**self.steps, "total": self.total()}.items():
            expected = (
                "?"
                if row.expected_completion_tokens is None
                else f"{row.expected_completion_tokens:,}"
            )
            expected = expected if row.requests else "0"
            most = (
                "no cap" if row.max_completion_tokens is None else f"{row.max_completion_tokens:,}"
            )
            lines.append(
                f"{name:<9} {row.requests:>9,} {row.prompt_tokens:>12,} {most:>17} "
                f"{expected:>13}  {self._max_cost_text(row):<27}  {self._expected_cost_text(row)}"
            )
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def _max_cost_text(self, row: StepEstimate) -> str:
        if row.max_completion_tokens is None and self.prices.known:
            return "unbounded (no --max-tokens)"
        return format_cost(self._max_cost(row))

    def _expected_cost_text(self, row: StepEstimate) -> str:
        if not self.prices.known:
            return format_cost(None)
        cost = self._expected_cost(row)
        if cost is None:  # no records of this step yet: only the prompts' share is known
            return f"? (prompts alone {format_cost(self.prices.cost(row.prompt_tokens, 0))})"
        return format_cost(cost)


def estimate_run(
    cfg: EntiGraphConfig,
    documents: list[Document],
    prompts: PromptSet,
    backend: Backend,
    state: RunState,
    prices: Prices,
) -> Estimate:
    estimate = Estimate(prices=prices)
    means = {step: state.mean_output_tokens(step) for step in STEPS}
    assumed = 0
    for doc in documents:
        entities = state.entities.get(doc.id)
        if entities is None:
            assumed += 1
            _add(
                estimate.steps["entities"],
                1,
                _prompt_tokens(backend, prompts, Key(doc.id, "entities"), doc),
                cfg,
                means.get("entities"),
            )
            entities = [f"entity {i}" for i in range(cfg.assumed_entities)]
            remaining = {step: _planned(len(entities), step, cfg) for step in STEP_SIZES}
        else:
            remaining = Counter(
                key.step for key in state.pending_keys([doc], cfg.seed, cfg.limits())
            )
        for step, size in STEP_SIZES.items():
            if remaining[step]:
                key = Key(doc.id, step, tuple(entities[:size]))
                _add(
                    estimate.steps[step],
                    remaining[step],
                    _prompt_tokens(backend, prompts, key, doc),
                    cfg,
                    means.get(step),
                )
    if assumed:
        estimate.notes.append(
            f"{assumed} document(s) not analysed yet: assumed {cfg.assumed_entities} "
            f"entities each (--assumed-entities)"
        )
    cap = (
        "no cap (no --max-tokens): the maximum is unbounded"
        if cfg.max_tokens is None
        else f"at most --max-tokens {cfg.max_tokens} per request"
    )
    estimate.notes.append(
        f"output tokens {cap}; 'expected' (tokens and cost) uses the mean reply length of each "
        "step's records already in --out ('?' until a step has some)"
    )
    estimate.notes.append(
        f"prompt tokens "
        f"{'counted with the model tokenizer' if backend.name == 'local' else 'estimated at ~4 characters per token'}"
    )
    return estimate


def _planned(entities: int, step: str, cfg: EntiGraphConfig) -> int:
    planned = math.comb(entities, STEP_SIZES[step])
    limit = cfg.limits()[step]
    return planned if limit is None else min(planned, limit)


def _prompt_tokens(backend: Backend, prompts: PromptSet, key: Key, doc: Document) -> int:
    return backend.count_prompt_tokens(
        prompts.messages(key.step, document_values(doc, entity_values(key)))
    )


def _add(
    row: StepEstimate,
    count: int,
    prompt_tokens: int,
    cfg: EntiGraphConfig,
    mean_output: float | None,
) -> None:
    row.requests += count
    row.prompt_tokens += count * prompt_tokens
    row.max_completion_tokens = _plus(
        row.max_completion_tokens, None if cfg.max_tokens is None else count * cfg.max_tokens, count
    )
    if mean_output is not None:  # the same for every document of a step: known for all or none
        row.expected_completion_tokens = (row.expected_completion_tokens or 0) + round(
            count * mean_output
        )


def _plus(total: int | None, more: int | None, requests: int) -> int | None:
    """Add output-token maxima; None (unbounded) wins once any request has no cap."""
    if not requests:
        return total
    return None if total is None or more is None else total + more
