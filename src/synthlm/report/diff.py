"""Config differences between runs: what makes each run in an ablation different.

Runs are named after what changed, not after their directories: a legend that reads
``data.sources.1.weight=0.2`` answers "which curve is which" without opening any file. Both
configs are flattened to dotted keys (lists by index, as overrides are written), so a label is
also a valid override to reproduce that run.

Keys that differ between every pair of runs without meaning anything are left out: the run's
own output directory, and paths where logs go. Where one run has a mapping or list that another
lacks or has empty, the difference is named by the child keys alone
(``model.overrides.hidden_size``, not also ``model.overrides``): the empty parent adds nothing a
reader or an override needs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

MISSING = "(unset)"
SOURCE_KEY = re.compile(r"^data\.sources\.(\d+)\.")
WEIGHT_KEY = re.compile(r"^data\.sources\.\d+\.weight$")
DEFAULT_WEIGHT = 1.0  # synthlm.data.mixture.SourceConfig.weight
IGNORED_KEYS = re.compile(r"(^|\.)run_dir$|^logging\.(.+\.)?[^.]*(dir|path|file)$")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"data": {"sources": [{"weight": 1}]}}`` -> ``{"data.sources.0.weight": 1}``."""
    return dict(_leaves(tree, prefix))


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            yield from _leaves(value, f"{prefix}.{index}" if prefix else str(index))
    elif prefix:
        yield prefix, node


def format_value(value: Any) -> str:
    """Values as a user would type them in an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest exact form: 0.0003, 1e-05; never merges distinct values
    if isinstance(value, (list, dict)):
        return "[]" if isinstance(value, list) else "{}"
    return str(value)


EMPTY = frozenset({"{}", "[]", MISSING})  # a parent's values that its child keys already say


def differing_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in every config (first-seen order).

    A parent key (empty or unset in some runs, with child keys in others) is left out when its
    children differ and the runs without children agree on an empty value: listing both would
    say the same difference twice.
    """
    flat = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    differing = [
        k for k in keys if not IGNORED_KEYS.search(k) and len({_canonical(f, k) for f in flat}) > 1
    ]
    shares = {_shares(f) for f in flat}
    if len(shares) == 1 and None not in shares:  # the same mixture, however written
        differing = [k for k in differing if not WEIGHT_KEY.match(k)]
    return [k for k in differing if not _said_by_children(k, differing, flat)]


def _shares(flat: Mapping[str, Any]) -> tuple[tuple[int, float], ...] | None:
    """Each ``data.sources`` entry's share of the weights' sum (the default weight is 1.0).

    The trainer normalises the weights, so only the shares mean anything: a single source of
    weight 0.5 and one of weight 1.0 both train on it 100% of the time, and 1:0.25 is 4:1.
    None where a weight is not a positive number (the config loader is the one to refuse it).
    """
    indices = sorted({int(m[1]) for k in flat if (m := SOURCE_KEY.match(k))})
    weights = [flat.get(f"data.sources.{i}.weight", DEFAULT_WEIGHT) for i in indices]
    if not all(_is_number(w) and w > 0 for w in weights):
        return None
    total = float(sum(weights))
    return tuple((i, round(w / total, 12)) for i, w in zip(indices, weights))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _said_by_children(
    key: str, differing: Sequence[str], flat: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether the difference at ``key`` is only that some runs have children there."""
    if not any(k.startswith(f"{key}.") for k in differing):
        return False
    leaf_values = {_canonical(f, key) for f in flat if not _has_children(f, key)}
    return len(leaf_values) <= 1 and leaf_values <= EMPTY


def _has_children(flat: Mapping[str, Any], key: str) -> bool:
    return any(k.startswith(f"{key}.") for k in flat)


def _canonical(flat: Mapping[str, Any], key: str) -> str:
    return format_value(flat[key]) if key in flat else MISSING


def value_text(flat: Mapping[str, Any], key: str) -> str:
    """``key``'s value in one flattened config as a table shows it: ``{...}`` or ``[...]`` where
    the run has child keys below it (the rows of those keys give the values), else the value."""
    if key not in flat and _has_children(flat, key):
        child = next(k for k in flat if k.startswith(f"{key}."))
        return "[...]" if child[len(key) + 1 :].split(".")[0].isdigit() else "{...}"
    return _canonical(flat, key)


def describe(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``key=value, ...`` for ``keys``, skipping a parent whose children this run has (its child
    keys in the label say the same, and ``key={...}`` would not be a valid override)."""
    flat = flatten(config)
    shown = [k for k in keys if k in flat or not _has_children(flat, k)]
    return ", ".join(f"{k}={_canonical(flat, k)}" for k in shown)


def run_labels(configs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """One legend label per run: its differing keys, else its name; always unique."""
    keys = differing_keys([c for c in configs if c])
    labels = [describe(c, keys) if c and keys else name for c, name in zip(configs, names)]
    labels = _disambiguate(labels, names)
    return _disambiguate(labels, [f"#{i + 1}" for i in range(len(labels))])


def _disambiguate(labels: list[str], extra: Sequence[str]) -> list[str]:
    counts = {label: labels.count(label) for label in labels}
    return [
        f"{label} [{more}]" if counts[label] > 1 and label != more else label
        for label, more in zip(labels, extra)
    ]
