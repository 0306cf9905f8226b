"""``DIR/manifest.json``: everything needed to trust, reproduce and read a synthetic dataset.

It records the resolved spec (seed included, even when the user left it out), the synthlm
version, the id layout, how blocks were seeded, per split and domain the budget, sequences,
tokens and overlap with train, and a SHA-256 of every data file. Nothing in it depends on the
machine, the time or the worker count, so two runs of one spec and seed give identical bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from synthlm import __version__
from synthlm.errors import StoreError
from synthlm.fileio import atomic_write_json
from synthlm.synth.spec import SPLITS

FORMAT = "synthlm-synthetic"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RNG_SCHEME = "numpy Philox(SeedSequence([|seed|, seed<0], spawn_key=(0, split, domain, block)))"


def data_files(split: str) -> list[str]:
    return [
        f"{split}.bin",
        f"{split}.idx",
        f"{split}.mask.bin",
        f"{split}.mask.idx",
        f"{split}.domains.npy",
    ]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(
    plan, results: dict[str, list], directory: Path, dedup_splits: bool
) -> dict[str, Any]:
    spec = plan.spec
    names = plan.domain_names()
    splits = {}
    for split in SPLITS:
        pieces = results[split]
        absent = not sum(p.sequences for p in pieces)
        splits[split] = {
            "absent": absent,
            "sequences": sum(p.sequences for p in pieces),
            "tokens": sum(p.tokens for p in pieces),
            "budget": sum(p.budget for p in pieces),
            "domains": {name: asdict(p) for name, p in zip(names, pieces)},
            "sha256": {}
            if absent
            else {name: sha256_file(directory / name) for name in data_files(split)},
        }
    weights = [d.weight for d in spec.domains]
    domains = []
    for i, d in enumerate(plan.domains):
        domains.append(
            {
                "index": i,
                "name": d.name,
                "type": d.type_name,
                "family": d.family,
                "reference": d.reference,
                "task": d.is_task,
                "weight": weights[i] / sum(weights),
                "promoter": d.promoter.tolist(),
                "block_sequences": d.block_size(),
                "sequences": sum(splits[s]["domains"][d.name]["sequences"] for s in SPLITS),
                "tokens": sum(splits[s]["domains"][d.name]["tokens"] for s in SPLITS),
            }
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "synthlm_version": __version__,
        "name": spec.name,
        "seed": plan.seed,
        "num_tokens_requested": int(spec.num_tokens),
        "num_tokens": sum(splits[s]["tokens"] for s in SPLITS),
        "dedup_splits": dedup_splits,
        "rng": RNG_SCHEME,
        "spec": spec.model_dump(mode="json"),
        "layout": plan.layout.to_dict(),
        "domains": domains,
        "splits": splits,
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    return atomic_write_json(directory / MANIFEST, manifest)


def is_synthetic_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a dataset dir written by ``synthlm synth generate`` (has a manifest).

    The one place that knows how a synthetic dataset is recognised; readers of the manifest's
    contents use :func:`read_manifest`, which also validates it.
    """
    return (Path(path) / MANIFEST).is_file()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise StoreError(f"{directory}: not a synthetic dataset ({MANIFEST} is missing)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path}: not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise StoreError(
            f"{path}: format version {manifest['format_version']} is newer than this "
            f"synthlm reads ({FORMAT_VERSION})"
        )
    return manifest
