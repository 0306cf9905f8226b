"""Runs are named after what differs in their configs, never after noise like run_dir."""

from __future__ import annotations

from synthlm.report.diff import MISSING, describe, differing_keys, flatten, run_labels


def _config(weight: float, run_dir: str = "runs/a", **optim: float) -> dict:
    return {
        "run_dir": run_dir,
        "data": {"sources": [{"name": "text", "weight": 1.0}, {"name": "dyck", "weight": weight}]},
        "optim": {"lr": 1e-3, **optim},
        "logging": {"tensorboard_dir": f"{run_dir}/tb", "level": "info"},
    }


def test_flatten_indexes_lists_like_overrides():
    assert flatten(
        {"data": {"sources": [{"weight": 1}, {"weight": 2}]}, "tags": [], "x": None}
    ) == {
        "data.sources.0.weight": 1,
        "data.sources.1.weight": 2,
        "tags": [],
        "x": None,
    }


def test_only_meaningful_differences_are_reported():
    configs = [_config(0.1, "runs/a"), _config(0.2, "runs/b")]
    assert differing_keys(configs) == ["data.sources.1.weight"]


def test_label_reads_as_an_override():
    labels = run_labels([_config(0.1, "runs/a"), _config(0.2, "runs/b", lr=3e-4)], ["a", "b"])
    assert labels == [
        "data.sources.1.weight=0.1, optim.lr=0.001",
        "data.sources.1.weight=0.2, optim.lr=0.0003",
    ]


def test_close_floats_stay_distinct():
    labels = run_labels([_config(0.1, lr=1e-4), _config(0.1, lr=1.00001e-4)], ["a", "b"])
    assert labels[0] != labels[1]


def test_keys_missing_in_one_run_count_as_differences():
    shorter = _config(0.1)
    shorter["data"]["sources"].pop()
    configs = [shorter, _config(0.1)]
    assert "data.sources.1.name" in differing_keys(configs)
    assert describe(shorter, ["data.sources.1.weight"]) == f"data.sources.1.weight={MISSING}"


def test_identical_or_missing_configs_fall_back_to_names_and_stay_unique():
    assert run_labels([_config(0.1), _config(0.1)], ["a", "b"]) == ["a", "b"]
    assert run_labels([{}, _config(0.1)], ["a", "b"]) == ["a", "b"]
    assert run_labels([_config(0.1), _config(0.1), _config(0.2)], ["x", "y", "z"]) == [
        "data.sources.1.weight=0.1 [x]",
        "data.sources.1.weight=0.1 [y]",
        "data.sources.1.weight=0.2",
    ]
    assert run_labels([_config(0.1), _config(0.1)], ["x", "x"]) == ["x [#1]", "x [#2]"]
