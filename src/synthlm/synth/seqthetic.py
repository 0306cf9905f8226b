"""Accept Seqthetic's flat JSON configs as specs, exactly as users have them.

    {"name": "delete", "vocab_size": 10000, "should_delete_ratio": 0.5,
     "sequence_length_min": 256, "sequence_length_max": 1024,
     "seq_to_delete_length_min": 10, "seq_to_delete_length_max": 100,
     "split": {"shuffle_dataset": true, ..., "split_ratio": [0.8, 0.1, 0.1]},
     "promoter_length_range": [4, 13]}

The five names metalang's ``synthetic_data/syn_data.py`` reads (identity, reverse, duplicate,
deduplicate, delete), and the Seqthetic domains it does not read (sort_numbers with
``nums_min/max``, ngram with ``gram_count``), become the ``seqthetic_*`` domains with its keys
translated: ``*_min``/``*_max`` pairs become ranges (integer ranges lose one at the top, because
Seqthetic draws them with ``rng.integers(min, max)``, which excludes ``max``; NGram's
``sequence_length`` includes it), ``split.split_ratio``
becomes ``splits`` and ``promoter_length_range`` picks a promoter length (from a stable hash of
the name, where Seqthetic uses Python's per-process salted ``hash``). Any other name is looked
up as a synthlm domain type (``task`` or ``domain`` may name it too) and its remaining keys are
passed to that domain. Every key must be understood: an unknown one is named in the error.
Unlike Seqthetic, ``seed: 0`` is an ordinary seed, not "random".

A config is recognised by any key only Seqthetic uses (``task``, ``num_token``, ``split``,
``vocab_size``, ...), not by all of them: ``{"task": "fbm", "hurst": 0.7, "num_token": ...}``
is a complete config. The one domain is named after the config's ``name`` (``reverse.json``
gives the domain ``reverse`` of type ``seqthetic_identity``), so eval metrics read
``acc/reverse``, as the user called the task; without a ``name`` it is named after its type.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping
from typing import Any

from synthlm.errors import ConfigError
from synthlm.synth.registry import load_domains, unknown_type_message

FLAT_KEYS = ("vocab_size", "sequence_length_min", "sequence_length_max")
# Top-level keys a synthlm spec never has: any one of them (without ``domains``) marks a flat
# Seqthetic config. ``name``, ``seed`` and ``num_tokens`` are shared, so they say nothing.
SEQTHETIC_KEYS = (*FLAT_KEYS, "num_token", "task", "split", "promoter_length_range")
DATASET_KEYS = {
    "num_token": "num_tokens",
    "num_tokens": "num_tokens",
    "seed": "seed",
    "splits": "splits",
}
TYPE_KEYS = ("task", "domain", "type")
SPLIT_KEYS = {"shuffle_dataset", "shuffle_domain_order", "shuffle_domain_sequence", "split_ratio"}
# Seqthetic name -> (synthlm domain, {flat key prefix: domain key} for *_min/*_max pairs, plain keys)
NATIVE: dict[str, tuple[str, dict[str, tuple[str, bool]], tuple[str, ...]]] = {
    "identity": ("seqthetic_identity", {}, ("reverse",)),
    "reverse": ("seqthetic_identity", {}, ("reverse",)),
    "duplicate": ("seqthetic_duplicate", {"num_duplicate": ("num_duplicate", True)}, ()),
    "deduplicate": (
        "seqthetic_deduplicate",
        {
            "unique_token_ratio": ("unique_token_ratio", False),
            "repeat_token_ratio": ("repeat_token_ratio", False),
            "shuffle_ratio": ("shuffle_ratio", False),
        },
        (),
    ),
    "delete": (
        "seqthetic_delete",
        {"seq_to_delete_length": ("seq_to_delete_length", True)},
        ("should_delete_ratio",),
    ),
    "sort_numbers": ("seqthetic_sort_numbers", {"nums": ("nums", True)}, ()),
    "ngram": ("seqthetic_ngram", {}, ("gram_count",)),
}
# Where vocab_size goes when it is not ``vocab.num_vocab`` (None: the domain has none; a
# sort_numbers token is its number), and the domains whose sequence_length includes its max
# (NGram draws ``rng.integers(min, max + 1)``).
VOCAB_TARGET: dict[str, str | None] = {"ngram": "num_vocab", "sort_numbers": None}
LENGTH_MAX_INCLUDED = {"ngram"}


# synthlm key paths of a translated config -> the flat config's own keys, so that an error
# raised while validating the translation names what the user wrote (most specific first)
_OWN_KEYS = (
    (re.compile(r"\bdomains\.0\.length\.(min|max)\b"), r"sequence_length_\1"),
    (re.compile(r"\bdomains\.0\.length\b"), "sequence_length_min/max"),
    (re.compile(r"\bdomains\.0\.(?:vocab\.)?num_vocab\b"), "vocab_size"),
    (re.compile(r"\bdomains\.0\.(\w+)\.(min|max)\b"), r"\1_\2"),
    (re.compile(r"\bdomains\.0\."), ""),
    (re.compile(r"(?<=: )num_tokens\b"), "num_token"),
)


def in_own_terms(message: str) -> str:
    """``message`` with synthlm's key paths turned back into the flat config's keys
    (``domains.0.hurst`` -> ``hurst``, ``domains.0.length.min`` -> ``sequence_length_min``)."""
    for pattern, replacement in _OWN_KEYS:
        message = pattern.sub(replacement, message)
    return message


def is_seqthetic(raw: Mapping[str, Any]) -> bool:
    return "domains" not in raw and any(key in raw for key in SEQTHETIC_KEYS)


def from_seqthetic(raw: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The equivalent synthlm spec tree (validated later like any spec)."""
    rest = dict(raw)
    name = str(rest.pop("name", ""))
    type_key = next((k for k in TYPE_KEYS if k in rest), "name")
    explicit = rest.pop(type_key, None)
    if explicit is None and not name:
        raise ConfigError(f"{label}: {_looks_seqthetic(raw)}; it needs {_WHICH_TASK}")
    spec: dict[str, Any] = {"name": name or str(explicit)}
    for key, target in DATASET_KEYS.items():
        if key in rest:
            spec[target] = rest.pop(key)
    if "split" in rest:
        spec["splits"] = _splits(rest.pop("split"), label)
    promoter = rest.pop("promoter_length_range", None)
    if explicit is None and name in NATIVE:
        domain = _native(name, rest, label)
    else:
        kind = str(explicit) if explicit is not None else name
        _check_type(kind, type_key, raw, label)
        domain = _generic(kind, rest, label)
    if promoter is not None:
        domain["promoter_length"] = _promoter_length(promoter, name, label)
    if name:
        domain["name"] = name  # metrics named after the config, not the shared domain type
    spec["domains"] = [domain]
    return spec


_WHICH_TASK = (
    f"`name` set to a Seqthetic task ({', '.join(NATIVE)}) or `task` naming a synthlm domain "
    f'type (e.g. "task": "fbm"; `synthlm synth list` shows them all)'
)


def _looks_seqthetic(raw: Mapping[str, Any]) -> str:
    """Why the config was read as Seqthetic's: the user may have meant a synthlm spec."""
    keys = ", ".join(f"`{k}`" for k in SEQTHETIC_KEYS if k in raw)
    return f"this looks like a Seqthetic flat config (it has {keys} and no `domains`)"


def _native(name: str, rest: dict[str, Any], label: str) -> dict[str, Any]:
    kind, pairs, plain = NATIVE[name]
    domain: dict[str, Any] = {"type": kind}
    if name == "reverse" and "reverse" not in rest:
        domain["reverse"] = True
    vocab_target = VOCAB_TARGET.get(name, "vocab")
    if "vocab_size" in rest and vocab_target is not None:
        size = rest.pop("vocab_size")
        domain[vocab_target] = {"num_vocab": size} if vocab_target == "vocab" else size
    length = _pair(rest, "sequence_length", label, integer=name not in LENGTH_MAX_INCLUDED)
    if length is not None:
        domain["length"] = length
    for prefix, (target, integer) in pairs.items():
        value = _pair(rest, prefix, label, integer=integer)
        if value is not None:
            domain[target] = value
    if "shuffle_ratio" in domain:
        print(
            "note: shuffle_ratio_min/max have no effect: Seqthetic's Deduplicate ignores "
            "them, and so does synthlm",
            file=sys.stderr,
        )
    for key in plain:
        if key in rest:
            domain[key] = rest.pop(key)
    _no_leftovers(
        rest,
        label,
        f"a Seqthetic {name} config",
        [
            *(k for k in FLAT_KEYS if k != "vocab_size" or vocab_target is not None),
            "split",
            "promoter_length_range",
            *DATASET_KEYS,
            *(f"{p}_{end}" for p in pairs for end in ("min", "max")),
            *plain,
        ],
    )
    return domain


def _check_type(kind: str, key: str, raw: Mapping[str, Any], label: str) -> None:
    """A wrong task name; when it came from ``name`` (which synthlm specs have too), said
    together with why the file was read as a Seqthetic config and what it needs."""
    if kind in load_domains():
        return
    hint = f" ({_looks_seqthetic(raw)}; it needs {_WHICH_TASK})" if key == "name" else ""
    raise ConfigError(f"{label}: {key}: {unknown_type_message(kind)}{hint}")


def _generic(kind: str, rest: dict[str, Any], label: str) -> dict[str, Any]:
    domains = load_domains()
    fields = domains[kind].Params.model_fields
    domain: dict[str, Any] = {"type": kind}
    if "vocab_size" in rest:
        vocab_size = rest.pop("vocab_size")
        if "vocab" in fields:
            domain["vocab"] = {"num_vocab": vocab_size}
        elif "num_vocab" in fields:
            domain["num_vocab"] = vocab_size
        else:
            raise ConfigError(
                f"{label}: vocab_size: the {kind} domain has no vocabulary size to set"
            )
    low, high = rest.pop("sequence_length_min", None), rest.pop("sequence_length_max", None)
    if low is not None or high is not None:
        if "length" not in fields:
            raise ConfigError(
                f"{label}: sequence_length_min/max: the {kind} domain has no `length`"
            )
        domain["length"] = {
            "min": low if low is not None else high,
            "max": high if high is not None else low,
        }
    unknown = sorted(k for k in rest if k not in fields or k == "type")
    if unknown:
        _no_leftovers(
            {k: rest[k] for k in unknown},
            label,
            f"the {kind} domain",
            [k for k in fields if k != "type"],
        )
    domain.update(rest)
    return domain


def _pair(rest: dict[str, Any], prefix: str, label: str, integer: bool) -> dict[str, Any] | None:
    """``prefix_min``/``prefix_max`` as a range; integer ranges exclude max as Seqthetic does."""
    low, high = rest.pop(f"{prefix}_min", None), rest.pop(f"{prefix}_max", None)
    if low is None and high is None:
        return None
    low, high = (high if low is None else low), (low if high is None else high)
    if integer and high > low:
        high -= 1  # rng.integers(min, max) never draws max
    return {"min": low, "max": high}


def _splits(split: Any, label: str) -> dict[str, float]:
    if not isinstance(split, Mapping):
        raise ConfigError(f"{label}: split: expected a mapping with split_ratio, got {split!r}")
    _no_leftovers(
        {k: v for k, v in split.items() if k not in SPLIT_KEYS},
        label,
        "split",
        sorted(SPLIT_KEYS),
        prefix="split.",
    )
    ratio = split.get("split_ratio", [0.8, 0.1, 0.1])
    if not isinstance(ratio, (list, tuple)) or len(ratio) != 3:
        raise ConfigError(
            f"{label}: split.split_ratio: expected three fractions [train, valid, test], "
            f"got {ratio!r}"
        )
    return dict(zip(("train", "valid", "test"), ratio))


def _promoter_length(value: Any, name: str, label: str) -> int:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) for v in value)
        or value[0] > value[1]
    ):
        raise ConfigError(
            f"{label}: promoter_length_range: expected [min, max] ints, got {value!r}"
        )
    low, high = value
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return low + digest % (high - low + 1)


def _no_leftovers(
    rest: Mapping[str, Any], label: str, what: str, allowed: list[str], prefix: str = ""
) -> None:
    if rest:
        keys = ", ".join(f"{prefix}{k}" for k in sorted(rest))
        raise ConfigError(
            f"{label}: {keys}: unknown key{'s' if len(rest) > 1 else ''} for {what}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
