"""Reading runs: forgiving about what a live run legitimately lacks, strict about wrong paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_fixtures import write_run

from synthlm.errors import UserError
from synthlm.report.load import expand_run_paths, load_run, read_metrics, read_results, to_columns


def test_torn_last_line_is_silent_but_damage_elsewhere_is_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "loss": 2.0}\n{"step": 2, "lo\n{"step": 3, "loss": 1.5}\n{"step": 4, "lo'
    )
    columns, bad = read_metrics(path)
    assert columns["loss"].steps.tolist() == [1, 3]
    assert bad == 1


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0}')
    assert read_metrics(path)[0]["loss"].values.tolist() == [2.0, 1.0]


RECORD = st.fixed_dictionaries(
    {},
    optional={
        "step": st.one_of(st.integers(0, 50), st.just(float("nan"))),
        "tokens": st.integers(0, 10**6),
        "loss": st.floats(allow_nan=True, allow_infinity=False, width=32),
        "lr": st.one_of(st.integers(0, 3), st.floats(0, 1)),
        "eval/x/acc": st.floats(0, 1),
        "phase": st.sampled_from(["train", "eval"]),
        "flag": st.booleans(),
    },
)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(RECORD, max_size=30))
def test_fast_reader_matches_the_tolerant_one(tmp_path_factory, records):
    """pyarrow is only a speed-up: both readers must produce the same columns."""
    path = tmp_path_factory.mktemp("m") / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    fast, bad = read_metrics(path)
    slow = to_columns(records)
    assert bad == 0 and sorted(fast) == sorted(slow)
    for key, column in slow.items():
        for field in ("steps", "tokens", "values"):
            np.testing.assert_array_equal(
                getattr(fast[key], field), getattr(column, field), err_msg=f"{key}.{field}"
            )


def test_live_run_reads_every_complete_record(tmp_path):
    run = load_run(write_run(tmp_path / "run", steps=20, torn=True))
    assert run.columns["loss"].steps.tolist() == list(range(1, 21))
    assert run.bad_lines == 0
    assert run.status().startswith("in progress")
    assert run.last("eval/dyck/acc/copy") == pytest.approx(min(1.0, 20 * 0.1 / 5))


def test_resumed_run_keeps_the_later_records_for_repeated_steps(tmp_path):
    """After a restart from step 5 the trainer logs 6.. again; curves must not go back in time."""
    records = [{"step": s, "loss": 10.0 + s} for s in range(1, 9)] + [
        {"step": s, "loss": 20.0 + s} for s in range(6, 11)
    ]
    column = to_columns(records)["loss"]
    assert column.steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert column.values.tolist() == [11, 12, 13, 14, 15, 26, 27, 28, 29, 30]


def test_only_finite_numbers_become_columns():
    records = [
        {
            "step": 1,
            "tokens": 64,
            "loss": 2.0,
            "phase": "train",
            "ok": True,
            "bad": float("nan"),
            "x": 3,
        }
    ]
    columns = to_columns(records)
    assert sorted(columns) == ["loss", "x"]
    assert np.isnan(to_columns([{"step": 1, "loss": 1.0}])["loss"].tokens).all()


def test_eval_result_files_are_flattened_and_broken_ones_skipped(tmp_path):
    (tmp_path / "qa.json").write_text(
        json.dumps({"acc": 0.5, "n": 20, "name": "qa", "results": {"hellaswag": {"acc,none": 0.3}}})
    )
    (tmp_path / "partial.json").write_text('{"acc": 0.')
    assert read_results(tmp_path) == {
        "qa": {"acc": 0.5, "n": 20.0, "results/hellaswag/acc,none": 0.3}
    }


def test_run_without_metrics_yet_loads_with_its_config(tmp_path):
    run_dir = write_run(tmp_path / "run")
    (run_dir / "metrics.jsonl").unlink()
    run = load_run(run_dir)
    assert run.columns == {} and run.status() == "no metrics yet"
    assert run.source_kinds == {"shakespeare": "natural", "dyck": "synthetic"}


def test_finished_run_is_reported_finished(tmp_path):
    assert load_run(write_run(tmp_path / "run", finished=True)).status() == "finished"


def test_sweep_dir_expands_to_its_started_runs_in_grid_order(tmp_path):
    sweep = tmp_path / "sweep"
    names = ["001_b", "000_a", "002_c"]
    points = [{"name": n, "run_dir": str(sweep / "runs" / n)} for n in names]
    (sweep / "runs").mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"points": points}))
    for name in names[:2]:
        write_run(sweep / "runs" / name)
    assert [p.name for p in expand_run_paths([sweep])] == ["001_b", "000_a"]


def test_folder_of_runs_expands_sorted(tmp_path):
    for name in ("b", "a"):
        write_run(tmp_path / "runs" / name)
    (tmp_path / "runs" / "notes").mkdir()
    assert [p.name for p in expand_run_paths([tmp_path / "runs"])] == ["a", "b"]
    assert [p.name for p in expand_run_paths([tmp_path])] == ["a", "b"]


@pytest.mark.parametrize("make", ["missing", "empty", "unstarted_sweep"])
def test_wrong_paths_are_user_errors(tmp_path, make):
    target = tmp_path / "x"
    if make == "empty":
        target.mkdir()
    if make == "unstarted_sweep":
        target.mkdir()
        (target / "sweep.json").write_text(
            json.dumps({"points": [{"name": "a", "run_dir": str(target / "runs" / "a")}]})
        )
    with pytest.raises(UserError, match=str(target)):
        expand_run_paths([target])


def test_objective_defaults_are_no_difference_between_old_and_new_run_configs(tmp_path):
    """A run saved before config.yaml held the objective's defaults differs from a newer one
    only where an option really differs."""
    import yaml

    from synthlm.report.diff import differing_keys
    from synthlm.report.load import load_runs

    def with_objective(name: str, objective: dict) -> None:
        run = write_run(tmp_path / name)
        config = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**config, "objective": objective}))

    with_objective("old", {"name": "depth", "noise_density": 0.3})
    with_objective(
        "new",
        {
            "name": "depth",
            "noise_density": 0.3,
            "splitter": "pysbd",
            "construction": "synthlm",
            "mean_noise_span_length": 3.0,
        },
    )
    with_objective("rules", {"name": "depth", "noise_density": 0.3, "splitter": "rules"})
    runs = load_runs([tmp_path / "old", tmp_path / "new"])
    assert not [k for k in differing_keys([r.config for r in runs]) if k.startswith("objective")]
    runs = load_runs([tmp_path / "old", tmp_path / "rules"])
    assert [k for k in differing_keys([r.config for r in runs]) if k.startswith("objective")] == [
        "objective.splitter"
    ]


def test_keys_added_since_a_run_was_saved_are_no_difference(tmp_path):
    """model.init came after some runs were saved: a run that lacks it trained with its default
    and must not be labelled by it; a run that set another value still is."""
    import yaml

    from synthlm.report.diff import differing_keys
    from synthlm.report.load import load_runs

    def with_model(name: str, model: dict) -> None:
        run = write_run(tmp_path / name)
        config = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**config, "model": model}))

    with_model("old", {"arch": "gpt_neox", "preset": "14m"})
    with_model("new", {"arch": "gpt_neox", "preset": "14m", "init": "hf"})
    with_model("neox", {"arch": "gpt_neox", "preset": "14m", "init": "neox"})
    runs = load_runs([tmp_path / "old", tmp_path / "new"])
    assert differing_keys([r.config for r in runs]) == []
    runs = load_runs([tmp_path / "old", tmp_path / "neox"])
    assert differing_keys([r.config for r in runs]) == ["model.init"]
