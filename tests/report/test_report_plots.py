"""Which metrics are drawn together, and that drawing yields real PNGs written atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from report_fixtures import write_run

from cli_runner import run_cli
from synthlm.report import plots
from synthlm.report.comparable import differences
from synthlm.report.load import load_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runs(tmp_path):
    return [
        load_run(write_run(tmp_path / "a", weight=0.1, qa={"acc": 0.4, "f1": 0.5, "count": 120})),
        load_run(write_run(tmp_path / "b", weight=0.2, torn=True)),
    ]


def _specs(runs) -> dict[str, plots.FigureSpec]:
    return {spec.slug: spec for spec in plots.figure_specs(runs)}


def _keys(spec: plots.FigureSpec) -> dict[str, list[tuple[str, str]]]:
    return {panel.title: [(c.key, c.style) for c in panel.curves] for panel in spec.panels}


def test_natural_and_synthetic_losses_are_separate_figures_with_train_and_eval(runs):
    specs = _specs(runs)
    assert _keys(specs["loss_natural"]) == {
        "shakespeare": [("loss/shakespeare", "train"), ("eval/shakespeare/loss", "eval")]
    }
    assert _keys(specs["loss_synthetic"]) == {
        "dyck": [("loss/dyck", "train"), ("eval/dyck/loss", "eval")]
    }


def test_accuracy_has_one_panel_per_domain(runs):
    spec = _specs(runs)["accuracy_dyck"]
    assert [p.title for p in spec.panels] == ["all domains", "dyck", "copy"]
    assert all(p.unit_range for p in spec.panels)


def test_known_series_are_plotted_and_unknown_ones_are_not(runs):
    specs = _specs(runs)
    assert {"loss", "lr", "grad_norm", "throughput", "perplexity"} <= set(specs)
    plotted = {c.key for s in specs.values() for p in s.panels for c in p.curves}
    assert "mystery_metric" not in plotted
    assert [p.title for p in specs["throughput"].panels] == [
        "Tokens per second",
        "Model FLOPs utilisation",
    ]


def test_result_bars_keep_scores_apart_from_counts(runs):
    spec = _specs(runs)["results_qa"]
    assert [(p.results, p.metrics) for p in spec.panels] == [
        ("qa", ("acc", "f1")),
        ("qa", ("count",)),
    ]


def test_kind_comes_from_accuracy_when_no_config_names_the_set(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    records = [  # two points each: single-point curves are not plotted
        {
            "step": step,
            "tokens": 8 * step,
            "eval/mystery/loss": 1.0,
            "eval/mystery/acc": 0.5,
            "eval/text/loss": 2.0,
        }
        for step in (1, 2)
    ]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    specs = _specs([load_run(run_dir)])
    assert [p.title for p in specs["loss_synthetic"].panels] == ["mystery"]
    assert [p.title for p in specs["loss_natural"].panels] == ["text"]


def test_x_axis_falls_back_to_steps_when_tokens_are_missing(tmp_path, runs):
    assert plots.x_axis(runs) == "tokens"
    run_dir = tmp_path / "steps_only"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    assert plots.x_axis([*runs, load_run(run_dir)]) == "step"


def test_every_figure_renders_to_a_png_with_no_temp_files_left(tmp_path, runs):
    out = tmp_path / "out"
    out.mkdir()
    drawn = plots.render_all(runs, ["a", "b"], out)
    assert len(drawn) == len(plots.figure_specs(runs)) >= 9
    for figure in drawn:
        data = figure.path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, figure.path
    assert sorted(p.name for p in out.iterdir()) == sorted(d.path.name for d in drawn)


def test_colours_are_distinct_for_many_runs():
    for count in (1, 2, 10, 15, 30):
        assert len(set(plots.run_colors(count))) == count


def test_registering_a_builder_adds_a_figure(runs, monkeypatch):
    @plots.panel_builder("mystery")
    def _mystery(runs):
        return [
            plots.FigureSpec(
                "mystery", "Mystery", (plots.Panel("m", (plots.Curve("mystery_metric"),)),)
            )
        ]

    try:
        assert "mystery" in _specs(runs)
    finally:
        del plots.PANEL_BUILDERS["mystery"]


def test_metrics_logged_once_go_to_the_table_not_to_one_dot_panels(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    records = [{"step": s, "tokens": 8 * s, "loss": 3.0 / s} for s in range(1, 5)]
    records.append({"step": 4, "tokens": 32, "lm_eval/hellaswag/acc": 0.3, "eval/text/loss": 2.0})
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    specs = _specs([load_run(run_dir)])
    assert "loss" in specs and "lm_eval" not in specs and "loss_natural" not in specs


def test_smoothing_is_tensorboards_debiased_ema():
    values = np.array([1.0, 2.0, 4.0, float("nan"), 0.0])
    w = 0.5
    expected, last, n = [], 0.0, 0  # s_t = w s_{t-1} + (1 - w) v_t, reported as s_t / (1 - w^t)
    for v in values:
        if np.isnan(v):
            expected.append(np.nan)
            continue
        last, n = w * last + (1 - w) * v, n + 1
        expected.append(last / (1 - w**n))
    np.testing.assert_allclose(plots.smooth(values, w), expected)
    assert plots.smooth(values, w)[0] == 1.0  # debiased: the first point is the value itself


def test_report_of_runs_with_long_config_differences_lays_out_without_warning(tmp_path):
    """Runs named after many differing config keys (a natural baseline against a run with
    synthetic sources) get long, wrapped legend labels; the figure grows to hold them instead
    of squeezing the axes to nothing ("constrained_layout not applied")."""
    import yaml
    from report_fixtures import synthlm

    for name, value in (("natural", "web"), ("synth_first", "dyck")):
        run = write_run(tmp_path / name, steps=20)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["notes"] = {f"key_{i}": f"{value}_{i}" for i in range(60)}  # 60 differing keys
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    runs = [str(tmp_path / "natural"), str(tmp_path / "synth_first")]
    done = synthlm("report", *runs, "--out", str(tmp_path / "r"), "-q")
    assert done.returncode == 0, done.stderr
    assert "constrained_layout" not in done.stderr and "Warning" not in done.stderr, done.stderr
    legend_height = (tmp_path / "r" / "loss.png").read_bytes()[20:24]  # PNG IHDR height
    assert 350 < int.from_bytes(legend_height, "big") < 700, "labels shortened, not listed whole"


def test_a_run_with_one_point_beside_longer_runs_is_drawn_as_a_marker(tmp_path, runs):
    """A line through one point draws nothing: without a marker a run just started would
    vanish from every figure while still being named in the legend."""
    from matplotlib.figure import Figure

    short = load_run(write_run(tmp_path / "short", weight=0.3, steps=1))
    ax = Figure().subplots()
    spec = _specs([*runs, short])["loss"]
    plots._draw_lines(ax, spec.panels[0], [*runs, short], plots.run_colors(3), "tokens", set())
    single = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert len(single) == 1 and single[0].get_marker() == "o"


def test_why_no_figures_names_the_reason(tmp_path):
    one = load_run(write_run(tmp_path / "one", steps=1))
    assert plots.figure_specs([one]) == []
    assert "no metric logged more than once" in plots.why_no_figures([one])
    started = write_run(tmp_path / "started", steps=1)
    (started / "metrics.jsonl").write_text("")
    assert plots.why_no_figures([load_run(started)]) == "no metrics logged yet"


def test_fine_tuning_and_objective_metrics_get_a_figure_per_eval_set(tmp_path):
    """Scores that no other figure draws (a fine-tuning run's accuracy and ROUGE-L, DEPTH's
    sentence accuracy) are curves over training; their per-task breakdowns stay in the table."""
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    records = [{"step": s, "tokens": 8 * s, "loss": 3.0 / s} for s in range(1, 5)]
    records += [
        {
            "step": s,
            "tokens": 8 * s,
            "eval/valid/loss": 2.0 / s,
            "eval/valid/accuracy": 0.2 * s,
            "eval/valid/pearson": -0.5 + 0.1 * s,
            "eval/valid/rouge_l_stemmed_max/task/task001_x": 0.1 * s,
            "eval/c4/loss": 3.0 / s,
            "eval/c4/sentence_accuracy": 0.1 * s,
        }
        for s in (2, 4)
    ]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    runs = [load_run(run_dir)]
    specs = _specs(runs)
    assert _keys(specs["eval_metrics_valid"]) == {
        "accuracy": [("eval/valid/accuracy", "eval")],
        "pearson": [("eval/valid/pearson", "eval")],
    }
    assert [p.unit_range for p in specs["eval_metrics_valid"].panels] == [True, False]
    assert _keys(specs["eval_metrics_c4"]) == {
        "sentence_accuracy": [("eval/c4/sentence_accuracy", "eval")]
    }
    plotted = {c.key for s in specs.values() for p in s.panels for c in p.curves}
    assert not any("/task/" in key for key in plotted)
    out = tmp_path / "out"
    out.mkdir()
    drawn = plots.render_all(runs, ["r"], out)
    assert {d.spec.slug for d in drawn} >= {"eval_metrics_valid", "eval_metrics_c4"}
    assert all(d.path.read_bytes().startswith(PNG_MAGIC) for d in drawn)


def test_eval_sets_whose_names_clean_to_one_file_name_get_a_figure_each(tmp_path):
    """``a b`` and ``a_b`` both clean to ``a_b``; one PNG used to overwrite the other."""
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    records = [
        {"step": s, "tokens": 100 * s, "eval/a b/acc": 0.1 * s, "eval/a_b/acc": 0.9 - 0.1 * s}
        for s in (1, 2, 3)
    ]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    drawn = plots.render_all([load_run(run_dir)], ["r"], out)
    accuracy = [d for d in drawn if d.spec.title.startswith("Synthetic-task accuracy")]
    assert sorted(d.spec.title for d in accuracy) == [
        "Synthetic-task accuracy: a b",
        "Synthetic-task accuracy: a_b",
    ]
    assert len({d.path for d in accuracy}) == 2
    assert all(d.path.is_file() for d in accuracy)
    assert "accuracy_a_b" in {d.spec.slug for d in accuracy}, "a clean name keeps its file name"


def _with_config(run_dir, **changes):
    """Edit a fixture run's config.yaml: ``data__seq_len=128`` sets data.seq_len."""
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        section = config
        for part in parents:
            section = section.setdefault(part, {})
        section[last] = value
    path.write_text(yaml.safe_dump(config))
    return run_dir


def test_curves_that_do_not_compare_never_share_axes(tmp_path):
    """Eval sets scored at seq_len 64 and 128: each loss panel of an eval set is drawn once
    per group of runs that compare; synthetic exact match, lr and throughput still overlay."""
    a = write_run(tmp_path / "a", weight=0.1)
    b = _with_config(write_run(tmp_path / "b", weight=0.2), data__seq_len=128)
    c = write_run(tmp_path / "c", weight=0.3)
    runs = [load_run(path) for path in (a, b, c)]
    specs = {s.slug: s for s in plots.figure_specs(runs, differences(runs))}
    natural = specs["loss_natural"]
    assert [(p.title, p.runs) for p in natural.panels] == [
        ("shakespeare\nseq_len 64", (0, 2)),
        ("shakespeare\nseq_len 128", (1,)),
    ]
    assert "separate panels: shakespeare." in natural.caption
    assert [p.runs for p in specs["perplexity"].panels] == [(0, 2), (1,)]
    assert [p.runs for p in specs["loss_synthetic"].panels] == [(0, 2), (1,)]
    assert {p.runs for s in ("accuracy_dyck", "lr", "throughput") for p in specs[s].panels} == {
        None
    }
    assert [p.runs for p in plots.figure_specs(runs)[0].panels] == [None], "nothing given"


def test_another_objective_splits_what_it_computes_only(tmp_path):
    a = write_run(tmp_path / "a")
    t5 = _with_config(write_run(tmp_path / "t5"), objective__name="span_corruption")
    runs = [load_run(a), load_run(t5)]
    specs = {s.slug: s for s in plots.figure_specs(runs, differences(runs))}
    assert [p.title for p in specs["loss"].panels] == [
        "Training loss\nobjective clm",
        "Training loss\nobjective span_corruption",
    ]
    assert [p.runs for p in specs["lr"].panels] == [None]


def test_a_split_panel_draws_only_its_runs(tmp_path):
    from matplotlib.figure import Figure

    runs = [load_run(write_run(tmp_path / name)) for name in ("a", "b", "c")]
    panel = plots.Panel("loss", (plots.Curve("lr", smooth=False),), runs=(0, 2))
    ax = Figure().subplots()
    used = plots._draw_lines(ax, panel, runs, plots.run_colors(3), "step", set())
    assert used == {0, 2} and len(ax.get_lines()) == 2


def test_the_report_page_says_which_panels_are_split(tmp_path):
    a = write_run(tmp_path / "a")
    b = _with_config(write_run(tmp_path / "b"), data__seq_len=128)
    out = tmp_path / "out"
    done = run_cli("report", str(a), str(b), "--out", str(out), "-q", timeout=120)
    assert done.returncode == 0, done.stderr
    page = (out / "index.html").read_text()
    assert "are in separate panels: shakespeare." in page
    assert (out / "loss_natural.png").read_bytes().startswith(PNG_MAGIC)
