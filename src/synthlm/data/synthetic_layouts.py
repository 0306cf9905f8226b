"""Which synthetic id layouts a model learned, so it is never scored on ids that mean others.

A synthetic dataset's ids are its own: local id 17 is whatever its layout says (the identity
promoter in one dataset, the reverse promoter in the same spec generated with another seed).
Two datasets of one vocabulary size are therefore interchangeable to every size check, and a
model evaluated or prompted with the wrong one answers with garbage that looks like a result
(an audit measured accuracy 0.016 against 0.64). The layout itself is the identity: a digest
of the manifest's ``layout`` (content range, markers, digits, promoter ids), equal for a spec
generated on the fly and the same spec written to disk, since both build it from one plan.

A checkpoint records the digests of its synthetic training sources (``synthlm.json``:
``synthetic_layouts``); training refuses an eval set of another layout before step 0, and
``synthlm eval`` / ``synthlm generate --synthetic`` refuse a dataset of another layout.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from synthlm.errors import UserError

INFO_KEY = "synthetic_layouts"  # synthlm.json: {source name: layout digest}
_NOTED: set[str] = set()


def layout_key(layout: dict[str, Any]) -> str:
    """The digest of a layout: equal digests, equal meanings for every id."""
    text = json.dumps(layout, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_layout_key(path: str | Path) -> str:
    from synthlm.synth import load_synthetic

    return layout_key(load_synthetic(path).manifest["layout"])


def source_layout_key(source: Any, seed: int) -> str:
    """A synthetic source's digest: its dataset dir's, or its spec's as generated in the run."""
    if source.spec is None:
        return dataset_layout_key(source.path)
    from synthlm.data.synthetic_stream import load_plan

    plan = load_plan(source.spec, seed, f"data source '{source.name}'")
    return layout_key(plan.layout.to_dict())


def trained_layouts(data: Any, seed: int) -> dict[str, str]:
    """``{source name: layout digest}`` of a run's synthetic training sources."""
    return {s.name: source_layout_key(s, seed) for s in data.sources if s.kind == "synthetic"}


def check_layout(path: str | Path, trained: dict[str, str] | None, where: str, model: str) -> None:
    """Refuse the synthetic dataset at ``path`` unless a training source had its layout.

    ``trained`` None: the model records nothing (a checkpoint from before the record, or one
    trained elsewhere); the dataset is used with a note, as a foreign store is. Empty: the model
    trained on no synthetic data (a natural-only baseline scored on the same tasks), so no
    layout is its own and none is refused."""
    if trained == {}:
        return
    if trained is None:
        if str(path) not in _NOTED:
            _NOTED.add(str(path))
            print(
                f"note: {where}: {model} records no synthetic id layouts (synthlm.json "
                f"{INFO_KEY}); {path} is taken to mean what it trained on, unchecked",
                file=sys.stderr,
            )
        return
    key = dataset_layout_key(path)
    if key in trained.values():
        return
    known = ", ".join(f"{name} ({digest})" for name, digest in trained.items()) or "none"
    raise UserError(
        f"{where}: {path} gives its synthetic ids other meanings (layout {key}) than {model} "
        f"trained on (synthetic sources: {known}): the same id would be another promoter, "
        "marker or symbol. Use data generated from the training spec with its seed "
        "(its own valid split, or synthlm synth generate SPEC with the run's seed)"
    )


def recorded_layouts(info: dict[str, Any]) -> dict[str, str] | None:
    """The digests a checkpoint's ``synthlm.json`` records (None: it records none)."""
    value = info.get(INFO_KEY)
    return dict(value) if isinstance(value, dict) else None
