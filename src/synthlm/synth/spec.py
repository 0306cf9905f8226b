"""The dataset spec: YAML/JSON validated by the config system, one entry per domain.

    name: meta-mix
    num_tokens: 5M
    seed: 0
    splits: {train: 0.9, valid: 0.05, test: 0.05}
    promoter_length: 1
    domains:
      - {type: copy, weight: 2, vocab: {num_vocab: 1000, prob: zipf}, length: {min: 16, max: 64}}
      - {type: dyck, k: 3, max_depth: 8}

The ``domains`` list is a discriminated union over every registered domain (``type`` picks the
schema), built once the registry is loaded, so a new domain needs no edit here. A Seqthetic flat
JSON config is accepted too (see :mod:`synthlm.synth.seqthetic`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, create_model, model_validator

from synthlm.config import Count, KeyPath, Section, apply_override, deep_merge, load_yaml, validate
from synthlm.errors import ConfigError
from synthlm.synth.params import DomainParams
from synthlm.synth.registry import load_domains, unknown_type_message

SPLITS = ("train", "valid", "test")


class SplitsSpec(Section):
    """Fractions of the token budget per split (must sum to 1)."""

    train: float = Field(0.9, ge=0, le=1)
    valid: float = Field(0.05, ge=0, le=1)
    test: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitsSpec:
        total = self.train + self.valid + self.test
        if abs(total - 1) > 1e-6:
            raise ValueError(f"train + valid + test must sum to 1, got {total:g}")
        return self

    def fractions(self) -> list[float]:
        return [self.train, self.valid, self.test]


class DatasetSpecBase(Section):
    """Dataset-level keys (``domains`` is added by :func:`spec_schema`)."""

    name: str = Field("synthetic", description="Dataset name (manifest and card).")
    num_tokens: Count = Field(
        ..., gt=0, description="Total tokens across splits and domains (5000, '10K', '5M', '1.5B')."
    )
    seed: int | None = Field(
        None, description="Any int (0 included); a fresh one is drawn and recorded when omitted."
    )
    splits: SplitsSpec = Field(default_factory=SplitsSpec)
    promoter_length: int = Field(
        1, ge=0, le=16, description="Default promoter tokens per domain (0 = none)."
    )
    domains: list[DomainParams]

    @model_validator(mode="after")
    def _domains_consistent(self) -> DatasetSpecBase:
        if not self.domains:
            raise ValueError("domains: give at least one domain")
        if not sum(d.weight for d in self.domains) > 0:
            raise ValueError(
                "domains: all weights are zero; at least one domain needs a positive weight"
            )
        seen: dict[str, int] = {}
        for i, d in enumerate(self.domains):
            name = domain_name(d)
            if name in seen:
                raise ValueError(
                    f"domains {seen[name]} and {i} are both named {name!r}; give each a "
                    f"distinct `name`"
                )
            seen[name] = i
        return self

    def domain_names(self) -> list[str]:
        return [domain_name(d) for d in self.domains]

    def promoter_length_of(self, domain: DomainParams) -> int:
        return self.promoter_length if domain.promoter_length is None else domain.promoter_length


def domain_name(domain: DomainParams) -> str:
    return domain.name or domain.type  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def spec_schema() -> type[DatasetSpecBase]:
    """``DatasetSpec`` with ``domains`` typed as the union of every registered domain."""
    models = tuple(cls.Params for cls in load_domains().values())
    # Union over a runtime tuple of types: the X | Y syntax cannot spell it
    entry = Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    domains = (list[entry], ...)
    return create_model("DatasetSpec", __base__=DatasetSpecBase, domains=domains)  # type: ignore[call-overload]


def load_spec(
    source: str | Path | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    num_tokens: str | int | None = None,
    seed: int | None = None,
) -> DatasetSpecBase:
    """Read a spec file (or mapping), apply ``key=value`` overrides and flags, validate."""
    from synthlm.synth.seqthetic import from_seqthetic, in_own_terms, is_seqthetic

    label = "spec" if isinstance(source, Mapping) else str(source)
    raw = dict(source) if isinstance(source, Mapping) else load_yaml(source)
    if raw.get("format") == "synthlm-synthetic" and isinstance(raw.get("spec"), Mapping):
        raw, label = dict(raw["spec"]), f"{label} (spec of a generated dataset)"
    seqthetic = is_seqthetic(raw)
    if seqthetic:
        raw, label = from_seqthetic(raw, label), f"{label} (Seqthetic config)"
    origins: dict[KeyPath, str] = {}
    tree = deep_merge({}, raw, origins, label)
    flags = [*overrides]
    if num_tokens is not None:
        flags.append(f"num_tokens={num_tokens}")
    if seed is not None:
        flags.append(f"seed={seed}")
    for override in flags:
        apply_override(tree, override, origins)
    for key, flag, value in (("num_tokens", "--tokens", num_tokens), ("seed", "--seed", seed)):
        if value is not None:  # errors name the flag the user typed, not an override
            origins[(key,)] = f"{flag} {value}"
    try:
        check_types(tree, label)
        return validate(spec_schema(), tree, origins, source=label)
    except ConfigError as exc:
        message = _without_schema_names(str(exc))
        raise ConfigError(in_own_terms(message) if seqthetic else message) from None


def _without_schema_names(message: str) -> str:
    """Drop ``expected CopySpec or DyckSpec or ...: `` that the generic error text puts before
    checks spanning several keys of one domain (the message itself names the keys)."""
    union = " or ".join(cls.Params.__name__ for cls in load_domains().values())
    for noise in (f"expected {union}: ", f"expected {spec_schema().__name__}: "):
        message = message.replace(noise, "")
    return message


def check_types(tree: Mapping[str, Any], label: str) -> None:
    """Name an unknown or missing domain ``type`` before pydantic lists every schema."""
    domains = tree.get("domains")
    if not isinstance(domains, list):
        return
    known = load_domains()
    for i, entry in enumerate(domains):
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"{label}: domains.{i}: expected a mapping with a `type`, got {entry!r}"
            )
        if "type" not in entry:
            raise ConfigError(
                f"{label}: domains.{i}.type: required key is missing; known types: "
                f"{', '.join(sorted(known))}"
            )
        if entry["type"] not in known:
            raise ConfigError(f"{label}: domains.{i}.type: {unknown_type_message(entry['type'])}")


def resolve_seed(spec: DatasetSpecBase) -> DatasetSpecBase:
    """The spec with a seed: the user's, or a fresh random one to be recorded in the manifest."""
    if spec.seed is not None:
        return spec
    return spec.model_copy(update={"seed": secrets.randbits(63)})
