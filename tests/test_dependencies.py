"""pyproject declares only the dependency versions the suite actually runs against."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# major versions whose behaviour differs in what synthlm writes or reads
MAJOR_SENSITIVE = ("transformers",)


def declared() -> dict[str, Requirement]:
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    return {req.name: req for req in map(Requirement, deps)}


def test_declared_lower_bound_is_the_major_version_tested():
    from importlib.metadata import version

    for name in MAJOR_SENSITIVE:
        req = declared()[name]
        installed = Version(version(name))
        assert req.specifier.contains(installed), f"{name} {installed} is outside {req.specifier}"
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", ">", "~=", "==")]
        assert lows and min(lows).major == installed.major, (
            f"{name}{req.specifier} admits major {min(lows).major}, but the tests run {installed}"
        )
