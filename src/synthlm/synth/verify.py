"""``synthlm synth verify DIR``: run every domain's ``verify`` over the stored sequences.

Besides each sequence's answer it checks the loss mask against the domain's policy (mask length
equals sequence length; under ``loss_mask: output`` it covers exactly the output), the document
counts against the manifest, and the data files against their recorded SHA-256.

A domain with no documents in a split has nothing verified there: its rate is None (shown as
n/a), never 100%, and a report that checked no sequence at all is not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthlm.synth.dataset import SyntheticDataset
from synthlm.synth.manifest import sha256_file
from synthlm.synth.spec import SPLITS


@dataclass
class DomainReport:
    checked: int = 0
    passed: int = 0
    bad_masks: int = 0
    first_failure: str | None = None

    @property
    def rate(self) -> float | None:
        """The share that passed; None when the split held no document of the domain."""
        return self.passed / self.checked if self.checked else None


@dataclass
class VerifyReport:
    splits: dict[str, dict[str, DomainReport]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def checked(self) -> int:
        """Sequences verified, over every split and domain."""
        return sum(r.checked for s in self.splits.values() for r in s.values())

    @property
    def ok(self) -> bool:
        """No problem, every checked sequence and mask right, and at least one checked."""
        return (
            not self.problems
            and self.checked > 0
            and all(
                r.passed == r.checked and not r.bad_masks
                for s in self.splits.values()
                for r in s.values()
            )
        )

    def unchecked_domains(self) -> list[str]:
        """Domains with no document in any verified split: nothing of theirs was verified."""
        names = dict.fromkeys(n for s in self.splits.values() for n in s)
        return [n for n in names if not any(n in s and s[n].checked for s in self.splits.values())]


def verify_dataset(
    directory: str | Path | SyntheticDataset,
    splits: tuple[str, ...] = SPLITS,
    progress=None,
    check_hashes: bool = True,
) -> VerifyReport:
    """Verify ``splits`` of the dataset (a directory, or one the caller already loaded so that
    a bad manifest stops it before any progress is shown); absent splits are skipped."""
    dataset = directory if isinstance(directory, SyntheticDataset) else SyntheticDataset(directory)
    report = VerifyReport()
    for split in splits:
        if dataset.manifest["splits"][split].get("absent"):
            continue  # not written: its fraction was 0 or its budget held no whole sequence
        if check_hashes:
            report.problems += _hash_problems(dataset, split)
        report.splits[split] = _verify_split(dataset, split, progress)
        for name, domain_report in report.splits[split].items():
            recorded = dataset.manifest["splits"][split]["domains"][name]["sequences"]
            if recorded != domain_report.checked:
                report.problems.append(
                    f"{split}: {domain_report.checked} {name} documents, the manifest says "
                    f"{recorded}"
                )
    return report


def _hash_problems(dataset: SyntheticDataset, split: str) -> list[str]:
    recorded = dataset.manifest["splits"][split]["sha256"]
    return [
        f"{split}: {name} does not match the SHA-256 in manifest.json (modified or corrupted)"
        for name, digest in recorded.items()
        if sha256_file(dataset.directory / name) != digest
    ]


def _verify_split(dataset: SyntheticDataset, split: str, progress) -> dict[str, DomainReport]:
    store, owners = dataset.split(split), np.asarray(dataset.domain_of(split))
    reports = {d.name: DomainReport() for d in dataset.domains}
    if len(owners) != len(store):
        raise ValueError(f"{split}: {len(owners)} domain labels for {len(store)} documents")
    for i in range(len(store)):
        domain = dataset.domains[int(owners[i])]
        report = reports[domain.name]
        sequence = np.asarray(store.document(i), dtype=np.int64)
        report.checked += 1
        try:
            domain.check(sequence)
            report.passed += 1
            mask = store.mask(i)
            if mask is None or not np.array_equal(
                np.asarray(mask), domain.expected_loss_mask(sequence)
            ):
                report.bad_masks += 1
        except Exception as exc:
            report.first_failure = report.first_failure or f"document {i}: {exc}"
        if progress is not None:
            progress.update(len(sequence))
    return reports
