"""Every built-in domain; importing this package registers them (one module per family)."""

from synthlm.synth.domains import (  # noqa: F401
    automaton,
    brackets,
    copylike,
    fbm,
    lime,
    lime_wu,
    ngram,
    numbers,
    query,
    random_tokens,
    seqthetic_tasks,
    sets,
    streams,
    wu2022,
    wu_mbpp,
)
