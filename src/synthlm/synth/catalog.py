"""``synthlm synth list``: every registered domain with its keys, defaults and description."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticUndefined

from synthlm.synth.params import DomainParams
from synthlm.synth.registry import load_domains

COMMON = set(DomainParams.model_fields) | {"type"}


def describe_domains() -> list[dict[str, Any]]:
    """Per domain: name, family, description, task or language, and its own parameters."""
    out = []
    for name, cls in sorted(load_domains().items(), key=lambda kv: (kv[1].family, kv[0])):
        params = []
        for key, info in cls.Params.model_fields.items():
            if key in COMMON:
                continue
            params.append(
                {"name": key, "default": _default(info), "description": info.description or ""}
            )
        out.append(
            {
                "name": name,
                "family": cls.family,
                "task": cls.is_task,
                "description": cls.description,
                "reference": cls.reference,
                "params": params,
            }
        )
    return out


def common_params() -> list[dict[str, Any]]:
    return [
        {"name": k, "default": _default(v), "description": v.description or ""}
        for k, v in DomainParams.model_fields.items()
    ]


def _default(info) -> Any:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict) and set(value) == {"min", "max"} and value["min"] == value["max"]:
        value = value["min"]
    return json.loads(json.dumps(value))
