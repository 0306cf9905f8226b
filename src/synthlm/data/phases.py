"""Mixture weights that change over a run: phases ("synthetic first, then natural") in one config.

``data.phases`` is a list of ``{steps | tokens, weights: {source: weight}}``; phase ``p`` covers
optimizer steps ``[B_p, B_{p+1})`` and draws its samples from the named sources in the given
ratio (the smooth weighted round robin of :mod:`synthlm.data.mixture`, restarted per phase).
A curriculum that moves weights is written as several short phases.

Exact resume is kept because every sample stays a pure function of its index: sample ``i``
falls in the phase whose sample range holds it; its window within a source is the number of
windows that source gave in earlier phases (closed form) plus its index within the phase. So a
source continues where it stopped, never re-reading a window, and the data cursor alone still
says where a resumed run is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field, model_validator

from synthlm.config import Count, Section
from synthlm.errors import ConfigError


class PhaseConfig(Section):
    """One phase: how long it lasts and which sources it draws from."""

    name: str | None = Field(None, description="Label shown in logs (default: phase-N).")
    steps: int | None = Field(None, gt=0, description="Optimizer steps in this phase.")
    tokens: Count | None = Field(
        None, gt=0, description="Training tokens in this phase (rounded up to whole steps)."
    )
    weights: dict[str, float] = Field(
        min_length=1, description="Source name -> relative weight; sources left out get 0."
    )

    @model_validator(mode="after")
    def _check(self) -> PhaseConfig:
        if self.steps is not None and self.tokens is not None:
            raise ValueError("set steps or tokens, not both")
        if any(w < 0 for w in self.weights.values()) or not any(
            w > 0 for w in self.weights.values()
        ):
            raise ValueError("weights must be >= 0 with at least one > 0")
        return self


def check_phase_sources(phases: list[PhaseConfig], names: list[str]) -> None:
    """Every weight names a training source; only the last phase may leave its length open."""
    for p, phase in enumerate(phases):
        unknown = sorted(set(phase.weights) - set(names))
        if unknown:
            raise ValueError(
                f"phases.{p}.weights: unknown source {', '.join(unknown)}; "
                f"sources are: {', '.join(names)}"
            )
        if phase.steps is None and phase.tokens is None and p != len(phases) - 1:
            raise ValueError(
                f"phases.{p}: set steps or tokens "
                "(only the last phase may run to the end of the budget)"
            )


@dataclass(frozen=True)
class Phase:
    name: str
    start: int  # first sample index
    stop: int  # one past the last sample index
    sources: tuple[int, ...]  # indices of the sources with a positive weight
    weights: tuple[float, ...]  # their normalised weights
    offsets: tuple[int, ...]  # windows each source (all of them) gave before this phase


class PhaseSchedule:
    """Phase boundaries in samples, and the window each source has reached at each boundary."""

    def __init__(
        self,
        phases: list[PhaseConfig],
        names: list[str],
        *,
        global_batch: int,
        seq_len: int,
        total_steps: int,
    ) -> None:
        from synthlm.data.mixture import samples_per_source

        self.names = names
        steps = _phase_steps(phases, global_batch * seq_len, total_steps)
        self.phases: list[Phase] = []
        start, offsets = 0, [0] * len(names)
        for p, (phase, length) in enumerate(zip(phases, steps)):
            chosen = tuple(i for i, n in enumerate(names) if phase.weights.get(n, 0) > 0)
            total = sum(phase.weights[names[i]] for i in chosen)
            weights = tuple(phase.weights[names[i]] / total for i in chosen)
            stop = start + length * global_batch
            self.phases.append(
                Phase(phase.name or f"phase-{p}", start, stop, chosen, weights, tuple(offsets))
            )
            for i, count in zip(chosen, samples_per_source(weights, stop - start)):
                offsets[i] += count
            start = stop
        self.boundaries = [ph.start for ph in self.phases]

    def phase_of(self, index: int) -> Phase:
        """The phase holding sample ``index`` (the last one continues past the budget)."""
        import bisect

        return self.phases[max(bisect.bisect_right(self.boundaries, index) - 1, 0)]

    def locate(self, index: int) -> tuple[int, int]:
        """(source, window): sample ``index`` is window ``window`` of source ``source``."""
        from synthlm.data.mixture import blend

        phase = self.phase_of(index)
        local, k = blend(phase.weights, index - phase.start)
        source = phase.sources[local]
        return source, phase.offsets[source] + k

    def counts(self, num_samples: int) -> list[int]:
        """Windows each source gives in the first ``num_samples`` samples (exact)."""
        from synthlm.data.mixture import samples_per_source

        if num_samples <= 0:
            return [0] * len(self.names)
        phase = self.phase_of(num_samples - 1)
        counts = list(phase.offsets)
        for i, count in zip(
            phase.sources, samples_per_source(phase.weights, num_samples - phase.start)
        ):
            counts[i] += count
        return counts

    def key(self) -> list[dict]:
        """What resume must find unchanged: boundaries and weights of every phase."""
        return [
            {
                "start": ph.start,
                "stop": ph.stop,
                "weights": {self.names[i]: round(w, 12) for i, w in zip(ph.sources, ph.weights)},
            }
            for ph in self.phases
        ]


def _phase_steps(phases: list[PhaseConfig], tokens_per_step: int, total_steps: int) -> list[int]:
    """Steps of each phase; an open last phase takes what is left of the budget."""
    steps = [
        ph.steps
        if ph.steps is not None
        else math.ceil(ph.tokens / tokens_per_step)
        if ph.tokens is not None
        else None
        for ph in phases
    ]
    fixed = sum(s for s in steps if s is not None)
    if steps[-1] is None:
        if fixed >= total_steps:
            raise ConfigError(
                f"data.phases: the phases before the last take {fixed} steps, leaving none of "
                f"the run's {total_steps} for the last phase; raise the train budget or shorten "
                "the phases"
            )
        steps[-1] = total_steps - fixed
    elif fixed != total_steps:
        raise ConfigError(
            f"data.phases: the phases add up to {fixed} steps but the run has {total_steps} "
            "(train.max_steps / max_tokens / epochs); make them equal, or leave the last "
            "phase's length out"
        )
    return [int(s) for s in steps]
