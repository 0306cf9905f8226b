"""`synthlm report --equal-tokens`: runs compared at equal tokens of one source, interpolated
between evaluations, never extrapolated (hand-computed values)."""

from __future__ import annotations

import json

from cli_runner import run_cli


def write_run(path, evals, config="seed: 0\n"):
    """evals: (step, tokens of web, eval loss) records, as the trainer logs them."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(config)
    lines = [
        json.dumps({"step": s, "tokens": s * 100, "tokens/web": w, "eval/web/loss": v})
        for s, w, v in evals
    ]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_equal_tokens_table_and_json(tmp_path):
    write_run(tmp_path / "natural", [(1, 100, 5.0), (2, 200, 4.0), (3, 300, 3.0)])
    # synthetic first: no web tokens for two steps, then web only
    write_run(tmp_path / "synthfirst", [(2, 0, 7.0), (3, 100, 4.5), (4, 200, 3.5)])
    out = tmp_path / "report"
    done = run_cli(
        "report",
        str(tmp_path / "natural"),
        str(tmp_path / "synthfirst"),
        "--out",
        str(out),
        "--equal-tokens",
        "web",
        "--at",
        "150,200,250",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "equal_tokens.json").read_text())
    assert result["values"][0] == [4.5, 4.0, 3.5]
    assert result["values"][1] == [4.0, 3.5, None], "250 web tokens: not reached, not extrapolated"
    assert result["difference_vs_first"][1] == [-0.5, -0.5, None]
    assert "(-0.5000)" in done.stdout and "not reached" in done.stdout
    assert (out / "equal_tokens.png").stat().st_size > 1000


def test_runs_sharing_a_directory_name_get_rows_that_tell_them_apart(tmp_path):
    """Two sweeps' run0 (and names alike in their first 30 characters) used to make rows with
    the same label; each row is now named by as much of its path as tells it apart."""
    long = "lr_0.001_warmup_100_ratio_0.25_seed_"
    runs = [tmp_path / "a" / "run0", tmp_path / "b" / "run0", tmp_path / f"{long}1"]
    runs.append(tmp_path / f"{long}2")
    for i, run in enumerate(runs):
        write_run(run, [(1, 100, 5.0 - i), (2, 200, 4.0 - i)])
    out = tmp_path / "report"
    done = run_cli(
        "report", *map(str, runs), "--out", str(out), "--equal-tokens", "web", "--at", "150", "-q"
    )
    assert done.returncode == 0, done.stderr
    labels = json.loads((out / "equal_tokens.json").read_text())["labels"]
    assert labels == ["a/run0", "b/run0", f"{long}1", f"{long}2"]
    rows = done.stdout.splitlines()[2:6]
    assert [row.split()[0] for row in rows] == labels
    assert [float(row.split()[1]) for row in rows] == [4.5, 3.5, 2.5, 1.5]


def test_missing_values_say_why_in_the_table_and_the_json(tmp_path):
    """A budget before a run's first evaluation is not one the run "did not reach": the table
    and equal_tokens.json tell apart before the first eval, after the last eval (training went
    on) and past the end of training, with the token counts behind each."""
    write_run(tmp_path / "natural", [(1, 10_000, 5.0), (2, 20_000, 4.0), (3, 30_000, 3.0)])
    # first eval at step 10 (20,480 web tokens); trained on to 40,960 after its last eval
    late = tmp_path / "late"
    write_run(late, [(10, 20_480, 4.0), (15, 30_720, 3.0)])
    with (late / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 20, "tokens": 2000, "tokens/web": 40_960}) + "\n")
    (late / "final").mkdir()
    out = tmp_path / "report"
    runs = [str(tmp_path / "natural"), str(late)]
    args = ["--equal-tokens", "web", "--at", "15K,25.6K,35K,50K", "-q"]
    done = run_cli("report", *runs, "--out", str(out), *args)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "equal_tokens.json").read_text())
    assert result["values"][1] == [None, 3.5, None, None], "never extrapolated"
    assert result["missing"][1] == [
        "before_first_eval",
        None,
        "after_last_eval",
        "not_reached",
    ]
    assert result["missing"][0] == [None, None, "not_reached", "not_reached"]
    assert result["runs"][1] == {
        "first_eval": 20_480,
        "last_eval": 30_720,
        "reached": 40_960,
        "finished": True,
    }
    row = next(line for line in done.stdout.splitlines() if line.startswith("late "))
    assert row.split()[1:] == [
        *("before", "1st", "eval"),
        *("3.5000", "(+0.0600)"),
        *("after", "last", "eval"),
        *("not", "reached"),
    ]
    assert "before the first evaluation (first at 20.48K tokens)" in done.stdout
    assert "after the last evaluation (last at 30.72K tokens, trained to 40.96K)" in done.stdout
    assert "not reached (run ended at 40.96K tokens)" in done.stdout
    assert "natural: not reached (run so far at 30K tokens)" in done.stdout  # no final/: live


def test_unknown_source_names_what_is_logged(tmp_path):
    write_run(tmp_path / "a", [(1, 100, 5.0)])
    done = run_cli(
        "report",
        str(tmp_path / "a"),
        "--out",
        str(tmp_path / "r"),
        "--equal-tokens",
        "code",
        "--at",
        "1K",
        "-q",
    )
    assert done.returncode == 2 and "tokens/code" in done.stderr and "web" in done.stderr


def test_runs_trained_with_and_without_document_mask_are_not_compared(tmp_path):
    web = "{name: web, path: stores/web}"
    dyck = "{name: dyck, path: synth/dyck, kind: synthetic}"
    natural = f"data: {{sources: [{web}]}}\n"
    phased = f"data: {{sources: [{web}, {dyck}]}}\n"  # default: only the synthetic is masked
    masked = f"data: {{sources: [{web}, {dyck}], document_mask: true}}\n"  # natural text too
    evals = [(1, 100, 5.0), (2, 200, 4.0)]
    args = ["--equal-tokens", "web", "--at", "150", "-q"]
    for name, config in (("natural", natural), ("phased", phased), ("masked", masked)):
        write_run(tmp_path / name, evals, config)
    runs = [str(tmp_path / "natural"), str(tmp_path / "masked")]
    done = run_cli("report", *runs, "--out", str(tmp_path / "r1"), *args)
    assert done.returncode == 2
    assert "differ in masking their natural documents" in done.stderr
    assert "masked (on)" in done.stderr and "natural (off)" in done.stderr
    # the default keeps natural text GPT-style packed, as in the natural-only run: compared
    runs = [str(tmp_path / "natural"), str(tmp_path / "phased")]
    done = run_cli("report", *runs, "--out", str(tmp_path / "r2"), *args)
    assert done.returncode == 0, done.stderr


def test_a_run_config_that_no_longer_validates_is_named(tmp_path):
    evals = [(1, 100, 5.0), (2, 200, 4.0)]
    write_run(tmp_path / "good", evals, "data: {sources: [{name: web, path: stores/web}]}\n")
    write_run(tmp_path / "odd", evals, "data: {sources: nonsense}\n")
    runs = [str(tmp_path / "good"), str(tmp_path / "odd")]
    args = ["--equal-tokens", "web", "--at", "150", "-q"]
    done = run_cli("report", *runs, "--out", str(tmp_path / "r"), *args)
    assert done.returncode == 2
    assert "odd/config.yaml: cannot tell how this run trained" in done.stderr
    assert "--equal-tokens needs to know" in done.stderr


def two_runs(tmp_path, second_config="seed: 0\n"):
    write_run(tmp_path / "a", [(1, 100, 5.0), (2, 200, 4.0)])
    write_run(tmp_path / "b", [(1, 100, 4.5), (2, 200, 3.5)], second_config)
    return [str(tmp_path / "a"), str(tmp_path / "b")]


def assert_refused_before_writing(done, out, *needles):
    """Exit 2 with the flag named, and no report at all: bad input stops before any work."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr
    assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_unknown_source_writes_no_report(tmp_path):
    out = tmp_path / "r"
    args = ["--equal-tokens", "webb", "--at", "150", "-q"]
    done = run_cli("report", *two_runs(tmp_path), "--out", str(out), *args)
    assert_refused_before_writing(done, out, "--equal-tokens webb", "tokens/webb", "web")


def test_unknown_metric_is_named_with_the_logged_ones_and_writes_no_report(tmp_path):
    out = tmp_path / "r"
    args = ["--equal-tokens", "web", "--metric", "eval/web/nope", "--at", "150", "-q"]
    done = run_cli("report", *two_runs(tmp_path), "--out", str(out), *args)
    assert_refused_before_writing(done, out, "--metric eval/web/nope", "eval/web/loss")


def test_equal_tokens_without_budgets_writes_no_report(tmp_path):
    out = tmp_path / "r"
    done = run_cli("report", *two_runs(tmp_path), "--out", str(out), "--equal-tokens", "web")
    assert_refused_before_writing(done, out, "--at")


def test_runs_differing_in_masking_write_no_report(tmp_path):
    web, dyck = "{name: web, path: stores/web}", "{name: dyck, path: synth/dyck, kind: synthetic}"
    masked = f"data: {{sources: [{web}, {dyck}], document_mask: true}}\n"
    runs = two_runs(tmp_path, masked)
    (tmp_path / "a" / "config.yaml").write_text(f"data: {{sources: [{web}]}}\n")
    out = tmp_path / "r"
    done = run_cli("report", *runs, "--out", str(out), "--equal-tokens", "web", "--at", "150")
    assert_refused_before_writing(done, out, "differ in masking their natural documents")


def test_equal_tokens_flags_without_equal_tokens_are_refused(tmp_path):
    runs = two_runs(tmp_path)
    out = tmp_path / "r"
    done = run_cli("report", *runs, "--out", str(out), "--at", "5K")
    assert_refused_before_writing(done, out, "--at", "--equal-tokens")
    done = run_cli("report", *runs, "--out", str(out), "--metric", "eval/web/loss", "--at", "5K")
    assert_refused_before_writing(done, out, "--metric and --at", "--equal-tokens")


def test_watch_with_equal_tokens_is_refused(tmp_path):
    out = tmp_path / "r"
    args = ["--equal-tokens", "web", "--at", "150", "--watch", "1"]
    done = run_cli("report", *two_runs(tmp_path), "--out", str(out), *args, timeout=60)
    assert_refused_before_writing(done, out, "--watch", "--equal-tokens")


def test_tied_token_counts_use_the_latest_eval(tmp_path):
    """A synthetic-first phase evaluates the natural set several times at 0 web tokens; the
    model at 0 web tokens is the latest of those evals (step 100), and between 0 and the next
    eval the value is interpolated from it, not from whichever tied eval had the largest loss."""
    from synthlm.report.equal_tokens import compare
    from synthlm.report.load import load_run

    evals = [(0, 0, 7.75), (50, 0, 9.5), (100, 0, 9.0), (150, 6400, 6.0)]
    write_run(tmp_path / "r", evals)
    run = load_run(tmp_path / "r")
    result = compare([run], ["r"], "eval/web/loss", "web", [0, 3200, 6400])
    # by hand: 0 -> step 100's 9.0; 3200 -> halfway from 9.0 to 6.0 = 7.5; 6400 -> 6.0
    assert result.values == [[9.0, 7.5, 6.0]]
