"""Runs are named after what differs in their configs, never after noise like run_dir."""

from __future__ import annotations

from synthlm.report.diff import (
    MISSING,
    describe,
    differing_keys,
    flatten,
    run_labels,
    value_text,
)


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


def _with_overrides(overrides: dict | None, tags: list) -> dict:
    model = {"arch": "gpt2"} if overrides is None else {"arch": "gpt2", "overrides": overrides}
    return {"model": model, "tags": tags}


def test_an_empty_parent_is_not_listed_beside_its_differing_children():
    configs = [_with_overrides({}, []), _with_overrides({"hidden_size": 64}, ["x"])]
    assert differing_keys(configs) == ["model.overrides.hidden_size", "tags.0"]
    assert run_labels(configs, ["a", "b"]) == [
        f"model.overrides.hidden_size={MISSING}, tags.0={MISSING}",
        "model.overrides.hidden_size=64, tags.0=x",
    ]
    unset = [_with_overrides(None, []), _with_overrides({"hidden_size": 64}, [])]
    assert differing_keys(unset) == ["model.overrides.hidden_size"]


def test_a_parent_that_is_the_whole_difference_is_kept():
    assert differing_keys([_with_overrides({}, []), _with_overrides(None, [])]) == [
        "model.overrides"
    ]
    assert differing_keys([{"tags": []}, {"tags": None}]) == ["tags"]


def test_a_parent_with_a_meaningful_value_is_kept_and_labels_stay_unique():
    # empty in one run, unset in another: the parent tells those two apart
    three = [
        _with_overrides({}, []),
        _with_overrides({"hidden_size": 64}, []),
        _with_overrides(None, []),
    ]
    assert differing_keys(three) == ["model.overrides", "model.overrides.hidden_size"]
    labels = run_labels(three, ["a", "b", "c"])
    assert labels == [
        f"model.overrides={{}}, model.overrides.hidden_size={MISSING}",
        "model.overrides.hidden_size=64",  # its child key says it; {...} is no override
        f"model.overrides={MISSING}, model.overrides.hidden_size={MISSING}",
    ]
    # a scalar replaced by a mapping: the scalar is a value, not an empty parent
    scalar = [{"sched": "cosine"}, {"sched": {"name": "cosine"}}]
    assert differing_keys(scalar) == ["sched", "sched.name"]
    assert run_labels(scalar, ["a", "b"]) == [
        f"sched=cosine, sched.name={MISSING}",
        "sched.name=cosine",
    ]


def test_table_cells_show_a_nested_value_as_such():
    assert value_text(flatten({"m": {"o": {"h": 1}}}), "m.o") == "{...}"
    assert value_text(flatten({"tags": ["x"]}), "tags") == "[...]"
    assert value_text(flatten({"tags": []}), "tags") == "[]"
    assert value_text(flatten({}), "tags") == MISSING


def test_source_weights_are_compared_as_shares():
    """The trainer normalises the weights: one source of weight 0.5 and one of 1.0 (or none,
    the default 1.0) are both 100% of training; 1:0.25 and 4:1 are the same 80/20 mixture."""
    single = [{"data": {"sources": [{"name": "web", "weight": w}]}} for w in (0.5, 1.0)]
    single.append({"data": {"sources": [{"name": "web"}]}})
    assert differing_keys(single) == []
    pairs = [
        {"data": {"sources": [{"name": "web", "weight": a}, {"name": "dyck", "weight": b}]}}
        for a, b in ((1.0, 0.25), (4, 1), (0.8, 0.2))
    ]
    assert differing_keys(pairs) == []
    other = {"data": {"sources": [{"name": "web", "weight": 1.0}, {"name": "dyck"}]}}
    assert differing_keys([pairs[0], other]) == ["data.sources.1.weight"], "raw keys that differ"
