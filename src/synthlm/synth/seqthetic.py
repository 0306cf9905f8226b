"""Accept Seqthetic's flat JSON config as a spec, so existing configs keep working.

    {"name": "identity", "vocab_size": 10000, "sequence_length_min": 256, "sequence_length_max": 1024}

becomes a one-domain spec: ``name`` (or ``task``/``domain``) picks the domain type, ``vocab_size``
its vocabulary, the two lengths its ``length`` range, and any other key is passed to the domain
(and validated there). Unlike Seqthetic, ``seed: 0`` is an ordinary seed, not "random".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthlm.errors import ConfigError
from synthlm.synth.registry import load_domains, unknown_type_message

FLAT_KEYS = ("vocab_size", "sequence_length_min", "sequence_length_max")
DATASET_KEYS = {"num_token": "num_tokens", "num_tokens": "num_tokens", "seed": "seed", "splits": "splits"}
TYPE_KEYS = ("task", "domain", "type")


def is_seqthetic(raw: Mapping[str, Any]) -> bool:
    return "domains" not in raw and any(key in raw for key in FLAT_KEYS)


def from_seqthetic(raw: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The equivalent synthlm spec tree (validated later like any spec)."""
    rest = dict(raw)
    name = str(rest.pop("name", ""))
    kind = next((rest.pop(k) for k in TYPE_KEYS if k in rest), name)
    domains = load_domains()
    if kind not in domains:
        raise ConfigError(f"{label}: name: {unknown_type_message(kind)} (a Seqthetic config names its domain in `name` or `task`)")
    fields = domains[kind].Params.model_fields
    spec: dict[str, Any] = {"name": name or kind}
    for key, target in DATASET_KEYS.items():
        if key in rest:
            spec[target] = rest.pop(key)
    domain: dict[str, Any] = {"type": kind}
    if "vocab_size" in rest:
        vocab_size = rest.pop("vocab_size")
        if "vocab" in fields:
            domain["vocab"] = {"num_vocab": vocab_size}
        elif "num_vocab" in fields:
            domain["num_vocab"] = vocab_size
        else:
            raise ConfigError(f"{label}: vocab_size: the {kind} domain has no vocabulary size to set")
    low, high = rest.pop("sequence_length_min", None), rest.pop("sequence_length_max", None)
    if low is not None or high is not None:
        if "length" not in fields:
            raise ConfigError(f"{label}: sequence_length_min/max: the {kind} domain has no `length`")
        domain["length"] = {"min": low if low is not None else high, "max": high if high is not None else low}
    domain.update(rest)
    spec["domains"] = [domain]
    return spec
