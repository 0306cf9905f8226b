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

_EXPORTS = {
    "Example": "dataset",
    "SyntheticDataset": "dataset",
    "load_synthetic": "dataset",
    "score": "dataset",
    "Batch": "domain",
    "Domain": "domain",
    "Malformed": "domain",
    "RoleIds": "role_ids",
    "Plan": "generation_plan",
    "make_plan": "generation_plan",
    "build_dataset": "build",
    "DOMAINS": "registry",
    "load_domains": "registry",
    "register_domain": "registry",
    "load_spec": "spec",
    "resolve_seed": "spec",
    "spec_schema": "spec",
    "verify_dataset": "verify",
}
# ``generate`` was the name of ``build_dataset`` before the module was renamed (the word now
# means sampling text, :mod:`synthlm.inference.sampling`); kept for scripts that import it
_ALIASES = {"generate": "build_dataset"}
__all__ = sorted([*_EXPORTS, *_ALIASES])


def __getattr__(name: str) -> Any:
    if name in _ALIASES:
        return __getattr__(_ALIASES[name])
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_ALIASES])
