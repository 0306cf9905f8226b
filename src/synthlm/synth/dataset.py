"""Reading a generated dataset back: stores per split, domains, and examples for evaluation.

This is the interface the training and evaluation code relies on::

    ds = load_synthetic("data/meta")
    ds.split("train")                 # TokenStore (ids 0..ds.vocab_size-1, loss-mask sidecar)
    ds.domain_of("valid")             # domain index of every valid document
    for ex in ds.examples("test", limit=200):
        score(ex.domain, ex.prompt, model_answer)   # 1.0 / 0.0 via the domain's verify
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthlm.config import validate
from synthlm.data.store import TokenStore
from synthlm.errors import ConfigError, UserError
from synthlm.synth.domain import Domain
from synthlm.synth.generation_plan import bind_domains
from synthlm.synth.manifest import MANIFEST, read_manifest
from synthlm.synth.registry import load_domains
from synthlm.synth.spec import SPLITS, DatasetSpecBase, spec_schema


@dataclass
class Example:
    """One task sequence split for exact-match evaluation of a model's generation."""

    domain: str
    prompt: np.ndarray  # promoter + input + delimiters, up to and including the output marker
    answer: np.ndarray  # the reference output
    index: int = -1  # document index in its split


class SyntheticDataset:
    """A dataset directory written by ``synthlm synth generate``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest: dict[str, Any] = read_manifest(self.directory)
        self.spec: DatasetSpecBase = manifest_spec(self.directory, self.manifest)
        self.layout, self.domains = bind_domains(self.spec, int(self.manifest["seed"]))
        self.vocab_size = int(self.manifest["layout"]["vocab_size"])
        if self.layout.vocab_size != self.vocab_size:
            raise UserError(
                f"{self.directory}: the manifest's layout does not match its spec (was it edited?)"
            )
        self._stores: dict[str, TokenStore] = {}
        _LOADED[self.directory.resolve()] = self

    def __repr__(self) -> str:
        return f"SyntheticDataset({str(self.directory)!r}, domains={self.domain_names()}, vocab_size={self.vocab_size})"

    def _check_split(self, name: str) -> None:
        if name not in SPLITS:
            raise UserError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")

    def split(self, name: str) -> TokenStore:
        self._check_split(name)
        if self.manifest["splits"][name].get("absent"):
            raise UserError(
                f"{self.directory}: split {name!r} is absent (its fraction was 0, or its "
                f"budget held no sequence)"
            )
        if name not in self._stores:
            self._stores[name] = TokenStore(
                self.directory / name, vocab_size=self.vocab_size, check_ids=False
            )
        return self._stores[name]

    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    def domain(self, name: str | int) -> Domain:
        if isinstance(name, int):
            return self.domains[name]
        for d in self.domains:
            if d.name == name:
                return d
        raise UserError(
            f"{self.directory}: no domain named {name!r}; domains: {', '.join(self.domain_names())}"
        )

    def domain_of(self, split: str) -> np.ndarray:
        self._check_split(split)
        return np.load(self.directory / f"{split}.domains.npy", mmap_mode="r")

    def examples(self, split: str, limit: int | None = None) -> Iterator[Example]:
        """Task examples, taking one from each task domain in turn (so ``limit`` mixes domains).

        Language domains (dyck, fbm, n-gram, ...) have no answer and are skipped.
        """
        store, owners = self.split(split), np.asarray(self.domain_of(split))
        queues = [np.flatnonzero(owners == i) for i, d in enumerate(self.domains) if d.is_task]
        tasks = [d for d in self.domains if d.is_task]
        produced, position = 0, 0
        while limit is None or produced < limit:
            live = [(d, q) for d, q in zip(tasks, queues) if position < len(q)]
            if not live:
                return
            for domain, queue in live:
                if limit is not None and produced >= limit:
                    return
                index = int(queue[position])
                prompt, answer = domain.split(np.asarray(store.document(index), dtype=np.int64))
                yield Example(domain.name, prompt, answer, index)
                produced += 1
            position += 1

    def score(self, domain: str | Domain, prompt: np.ndarray, predicted: np.ndarray) -> float:
        target = domain if isinstance(domain, Domain) else self.domain(domain)
        return target.score(prompt, predicted)


_LOADED: dict[Path, SyntheticDataset] = {}


def manifest_spec(directory: Path, manifest: dict[str, Any]) -> DatasetSpecBase:
    """The spec recorded in ``directory/manifest.json``, validated by this synthlm.

    A dataset outlives the code that made it: it may name a domain from a plugin not loaded
    now, or a parameter of a newer synthlm. Either is a fact about the user's setup, so it is
    said in one line naming the manifest (not pydantic's list of every known domain tag).
    """
    path = directory / MANIFEST
    spec = manifest.get("spec")
    made_by = f"made by synthlm {manifest.get('synthlm_version', '(unknown version)')}"
    if not isinstance(spec, dict):
        raise UserError(f"{path}: has no spec mapping ({made_by}); regenerate the dataset")
    unknown = unknown_domain_types(spec)
    if unknown:
        listed = ", ".join(f"domains.{i}.type {name!r}" for i, name in unknown)
        raise UserError(
            f"{path}: unknown domain type(s) {listed} ({made_by}); is it a domain from a "
            f"plugin that is not installed or loaded now (synthlm.plugins entry points), or "
            f"from a newer synthlm? Install that plugin or upgrade synthlm"
        )
    try:
        return validate(spec_schema(), spec, source="spec")
    except ConfigError as exc:
        problems = "; ".join(str(exc).splitlines())
        raise ConfigError(
            f"{path}: this synthlm cannot read the dataset's spec ({made_by}; made by a newer "
            f"synthlm, or with a plugin that is not loaded now?): {problems}"
        ) from None


def unknown_domain_types(spec: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, type) of every domain in ``spec`` whose type no loaded domain registers."""
    domains = spec.get("domains")
    if not isinstance(domains, list):
        return []
    known = load_domains()
    return [
        (i, str(entry.get("type")))
        for i, entry in enumerate(domains)
        if isinstance(entry, dict) and entry.get("type") not in known
    ]


def load_synthetic(directory: str | Path) -> SyntheticDataset:
    """Open a dataset directory (validates the manifest and rebuilds its domains)."""
    return SyntheticDataset(directory)


def score(
    domain: str | Domain,
    prompt: np.ndarray,
    predicted: np.ndarray,
    dataset: SyntheticDataset | None = None,
) -> float:
    """Score a model's predicted answer: 1.0 when ``prompt + predicted`` verifies, else 0.0.

    For deterministic tasks that is exact match; where several answers are right (abduct,
    induct, duplicate with a range of k) any right one scores 1.0. Ids are in the dataset's own
    id space (``0..vocab_size-1``): undo the trainer's meta-language shift and drop the eos and
    anything after it before scoring. ``domain`` is a :class:`Domain` or a domain name; a name is
    looked up in ``dataset``, or in the datasets loaded so far in this process (it must be
    unambiguous).
    """
    if isinstance(domain, Domain):
        return domain.score(prompt, predicted)
    if dataset is not None:
        return dataset.score(domain, prompt, predicted)
    candidates = [d for ds in _LOADED.values() for d in ds.domains if d.name == domain]
    if not candidates:
        raise UserError(
            f"no loaded synthetic dataset has a domain named {domain!r}; call "
            f"load_synthetic first or pass dataset="
        )
    if len({_definition(d) for d in candidates}) > 1:
        raise UserError(
            f"domain {domain!r} exists in several loaded datasets with different "
            f"definitions; pass dataset="
        )
    return candidates[0].score(prompt, predicted)


def _definition(domain: Domain) -> str:
    return domain.params.model_dump_json() + json.dumps(domain.layout.to_dict(), sort_keys=True)
