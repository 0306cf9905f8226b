"""Procedural synthetic data: specs, domains, generation, verification, reading back.

Every sequence is a pure function of (spec, seed, split, domain, block), generated vectorised
in blocks and streamed into token stores with loss masks. See ``synthlm synth --help`` and
:mod:`synthlm.synth.spec` for the spec format, :mod:`synthlm.synth.domains` for the domains.

Names are imported on first use (PEP 562), so ``synthlm synth generate`` does not pay for the
evaluation-side modules and vice versa.
"""

from __future__ import annotations

import importlib
from typing import Any

# Bound eagerly: the submodule of the same name would otherwise shadow the function once imported.
from synthlm.synth.generate import generate  # noqa: F401 (exported via __all__)

_EXPORTS = {
    "Example": "dataset", "SyntheticDataset": "dataset", "load_synthetic": "dataset", "score": "dataset",
    "Batch": "domain", "Domain": "domain", "Malformed": "domain",
    "Layout": "layout",
    "Plan": "plan", "make_plan": "plan",
    "DOMAINS": "registry", "load_domains": "registry", "register_domain": "registry",
    "load_spec": "spec", "resolve_seed": "spec", "spec_schema": "spec",
    "verify_dataset": "verify",
}
__all__ = sorted([*_EXPORTS, "generate"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
