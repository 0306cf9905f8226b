"""Every shipped T5 example config validates, in the mode and with the objective it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthlm.train import load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


@pytest.mark.parametrize(
    ("files", "mode", "objective"),
    [
        (["t5_span_corruption.yaml"], "pt", "span_corruption"),
        (["t5_depth.yaml"], "pt", "depth"),
        (["t5_glue.yaml"], "ft", "text_to_text"),
        (["t5_synthetic_pairs.yaml"], "ft", "text_to_text"),
    ],
)
def test_shipped_t5_configs_validate(files, mode, objective):
    config = load_run_config([CONFIGS / f for f in files])
    assert (config.mode, config.objective.name, config.model.arch) == (mode, objective, "t5")


def test_every_t5_example_is_covered():
    assert {p.name for p in CONFIGS.glob("t5_*.yaml")} == {"t5_span_corruption.yaml", "t5_depth.yaml", "t5_glue.yaml", "t5_synthetic_pairs.yaml"}
