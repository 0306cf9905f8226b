"""Is everything the GPU check imports present? Prints the full list of what is missing.

The device image has torch, transformers, accelerate, tokenizers, ... but not all of synthlm's
dependencies; run.sh installs wheels of the rest (prepare_wheels.sh fetches them here). Exit 0
when all import, 3 with the list otherwise, before any device time is spent on phases.
"""

from __future__ import annotations

import importlib
import sys

# module -> distribution, for what the check's phases import (directly or through synthlm)
MODULES = {
    "torch": "torch",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "tokenizers": "tokenizers",
    "sentencepiece": "sentencepiece",
    "safetensors": "safetensors",
    "numpy": "numpy",
    "pyarrow": "pyarrow",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic-core",
    "annotated_types": "annotated-types",
    "typing_inspection": "typing-inspection",
    "yaml": "PyYAML",
    "typer": "typer",
    "rich": "rich",
    "tqdm": "tqdm",
    "jinja2": "jinja2",
    "pysbd": "pysbd",
    "orjson": "orjson",
    "pytest": "pytest",
}
SYNTHLM = [
    "synthlm.cli",
    "synthlm.train.loop",
    "synthlm.objectives.depth",
    "synthlm.objectives.span_corruption",
    "synthlm.inference.sampling",
    "synthlm.evaluate.checkpoint",
]


def missing() -> list[str]:
    """'distribution (module): reason' for everything that does not import."""
    absent = []
    for module, dist in [*MODULES.items(), *((m, "synthlm") for m in SYNTHLM)]:
        try:
            importlib.import_module(module)
        except Exception as exc:  # ImportError, or a broken install raising something else
            absent.append(f"{dist} ({module}): {type(exc).__name__}: {exc}")
    return absent


def main() -> int:
    absent = missing()
    if absent:
        print(
            "the GPU check cannot run; missing or broken:\n  " + "\n  ".join(absent),
            file=sys.stderr,
        )
        print(
            "fetch wheels with benchmarks/gpu/prepare_wheels.sh (here, before calling the "
            "device) and carry .whl",
            file=sys.stderr,
        )
        return 3
    import synthlm

    print(f"dependencies ok; synthlm from {synthlm.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
