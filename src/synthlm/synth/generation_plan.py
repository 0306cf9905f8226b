"""From a validated spec to what generation needs: bound domains, the id layout, token budgets.

Budgets: the requested total is split over (split, domain) pieces in proportion to split
fraction x normalised weight, by largest remainder so the pieces sum exactly to the total.
Generation then fills the pieces in order; whatever a piece cannot use (its next sequence would
not fit) carries over to the next piece, so the grand total falls short of the request by less
than one sequence of the last piece and every token written counts, delimiters included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthlm.synth.domain import Domain
from synthlm.synth.registry import domain_class
from synthlm.synth.rng import table_key
from synthlm.synth.role_ids import RoleIds
from synthlm.synth.spec import SPLITS, DatasetSpecBase, domain_name


@dataclass
class Plan:
    spec: DatasetSpecBase
    layout: RoleIds
    domains: list[Domain]
    budgets: np.ndarray  # (splits, domains) tokens

    @property
    def seed(self) -> int:
        return int(self.spec.seed or 0)

    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]


def bind_domains(spec: DatasetSpecBase, seed: int) -> tuple[RoleIds, list[Domain]]:
    """The layout for the spec's domains, and each domain bound to it."""
    classes = [domain_class(d.type) for d in spec.domains]  # type: ignore[attr-defined]
    names = [domain_name(d) for d in spec.domains]
    needs = [
        cls.needs(d, name, spec.promoter_length_of(d))
        for cls, d, name in zip(classes, spec.domains, names)
    ]
    layout = RoleIds.build(needs, seed)
    domains = [
        cls(d, layout, name, key=int(table_key(seed, i)))
        for i, (cls, d, name) in enumerate(zip(classes, spec.domains, names))
    ]
    return layout, domains


def largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Integers proportional to ``shares`` that sum exactly to ``total`` (ties: lower index)."""
    shares = np.asarray(shares, dtype=np.float64)
    exact = shares / shares.sum() * total
    base = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(shares)), -(exact - base)))
    base[order[: total - int(base.sum())]] += 1
    return base


def make_plan(spec: DatasetSpecBase) -> Plan:
    """Bind domains and budget the tokens (the spec's seed must be resolved)."""
    if spec.seed is None:
        raise ValueError("make_plan needs a spec with a seed; call resolve_seed first")
    layout, domains = bind_domains(spec, int(spec.seed))
    weights = np.array([d.weight for d in spec.domains], dtype=np.float64)
    fractions = np.array(spec.splits.fractions(), dtype=np.float64)
    shares = np.outer(fractions, weights / weights.sum())
    budgets = largest_remainder(int(spec.num_tokens), shares.reshape(-1)).reshape(
        len(SPLITS), len(domains)
    )
    return Plan(spec, layout, domains, budgets)
