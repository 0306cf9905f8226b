"""Install a real plugin distribution for a subprocess: modules plus ``NAME.dist-info`` with the
``entry_points.txt`` pip would write, in a folder put on ``PYTHONPATH``. ``importlib.metadata``
finds it there exactly as it finds an installed wheel, so no test mocks it."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def install_plugin(
    site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]
) -> dict[str, str]:
    """Write ``modules`` (name -> source) and the distribution ``dist`` whose ``synthlm.plugins``
    entry points are ``entry_points`` (name -> module) into ``site``; the env to run with."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text(
        "[synthlm.plugins]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    return plugin_env(site)


def plugin_env(site: Path) -> dict[str, str]:
    """The environment of a subprocess that sees ``site`` (and one intra-op thread)."""
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }


def doc_recipe(decorator: str) -> str:
    """The ```python block of docs/architecture.md that uses ``decorator``, as written."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if decorator in b]
    assert len(blocks) == 1, f"docs/architecture.md: {len(blocks)} recipes use {decorator}"
    return blocks[0]
