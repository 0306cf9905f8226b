"""A sweep's report lists every grid point, not only the runs that started: a sweep of three
with one begun used to read "1 run(s)" and "One run: nothing to compare", as if that was all."""

from __future__ import annotations

import json
from pathlib import Path

from report_fixtures import write_run

from cli_runner import run_cli
from synthlm.report import build_report

NAMES = ("000_lr-1e-3", "001_lr-2e-3", "002_lr-3e-3")


def make_sweep(root: Path, started: int = 1, finished: int = 0) -> Path:
    """A sweep dir as ``synthlm sweep`` writes it: configs/, runs/, done/ markers, sweep.json;
    the first ``started`` points have a run dir, the first ``finished`` also final/ (and the
    done/ marker the sweep leaves for people)."""
    sweep = root / "sweep"
    points = []
    for index, name in enumerate(NAMES):
        config = sweep / "configs" / f"{name}.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f"run_dir: {sweep / 'runs' / name}\n")
        points.append({"name": name, "config": str(config), "run_dir": f"runs/{name}"})
        if index < started:
            write_run(sweep / "runs" / name, lr=10 ** -(index + 2))
        if index < finished:
            (sweep / "runs" / name / "final").mkdir()
            (sweep / "done").mkdir(exist_ok=True)
            (sweep / "done" / name).write_text("2026-12-03T10:00:00+00:00\n")
    (sweep / "sweep.json").write_text(json.dumps({"points": points}))
    return sweep


def test_points_not_started_are_listed_on_the_page_and_in_report_json(tmp_path):
    sweep = make_sweep(tmp_path, started=1)
    out = tmp_path / "out"
    report = build_report([sweep], out)
    assert len(report.runs) == 1
    manifest = json.loads((out / "report.json").read_text())
    (listed,) = manifest["sweeps"]
    assert listed["not_started"] == ["001_lr-2e-3", "002_lr-3e-3"]
    assert [(p["name"], p["state"]) for p in listed["points"]] == [
        ("000_lr-1e-3", "started"),
        ("001_lr-2e-3", "not started"),
        ("002_lr-3e-3", "not started"),
    ]
    assert listed["points"][1]["config"] == str(sweep / "configs" / "001_lr-2e-3.yaml")
    page = (out / "index.html").read_text()
    assert "1 run(s) of 3 sweep points (2 not started yet)" in page
    assert 'id="sweep-points"' in page and "002_lr-3e-3" in page
    assert "One run: nothing to compare yet" in page


def test_finished_points_are_told_from_started_ones(tmp_path):
    sweep = make_sweep(tmp_path, started=2, finished=1)
    build_report([sweep], tmp_path / "out")
    listed = json.loads((tmp_path / "out" / "report.json").read_text())["sweeps"][0]
    assert [p["state"] for p in listed["points"]] == ["finished", "started", "not started"]


def test_a_point_marked_done_whose_run_dir_is_gone_is_listed(tmp_path):
    sweep = make_sweep(tmp_path, started=1)
    (sweep / "done").mkdir()
    (sweep / "done" / NAMES[2]).write_text("2026-12-03T10:00:00+00:00\n")
    build_report([sweep], tmp_path / "out")
    listed = json.loads((tmp_path / "out" / "report.json").read_text())["sweeps"][0]
    assert [p["state"] for p in listed["points"]][1:] == ["not started", "run dir missing"]
    page = (tmp_path / "out" / "index.html").read_text()
    assert "of 3 sweep points (1 not started yet, 1 with the run dir missing)" in page


def test_a_complete_sweep_and_plain_runs_say_nothing_more(tmp_path):
    sweep = make_sweep(tmp_path, started=3)
    build_report([sweep], tmp_path / "out")
    assert (
        json.loads((tmp_path / "out" / "report.json").read_text())["sweeps"][0]["not_started"] == []
    )
    assert "sweep points (" not in (tmp_path / "out" / "index.html").read_text()
    plain = build_report([sweep / "runs" / NAMES[0]], tmp_path / "out2")
    assert plain.sweeps == []
    assert json.loads((tmp_path / "out2" / "report.json").read_text())["sweeps"] == []


def test_the_summary_line_counts_the_points_not_started(tmp_path):
    sweep = make_sweep(tmp_path, started=1)
    done = run_cli("report", str(sweep), "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 run of 3 sweep points (2 not started yet);" in done.stdout


def fail(sweep: Path, name: str, status: int, when: str = "2026-12-03T11:00:00+00:00") -> None:
    """The record ``synthlm sweep`` leaves for a point whose trainer exited non-zero."""
    (sweep / "failed").mkdir(exist_ok=True)
    record = {"point": name, "exit_status": status, "time": when, "runner": "local"}
    (sweep / "failed" / f"{name}.json").write_text(json.dumps(record))


def test_failed_points_are_listed_with_their_exit_status(tmp_path):
    """A failed run dir looks like one still training; the sweep's record tells them apart,
    including a point that failed before writing any run dir (a bad config)."""
    sweep = make_sweep(tmp_path, started=2)
    fail(sweep, NAMES[1], 3)
    fail(sweep, NAMES[2], -9)  # killed by a signal before its run dir existed
    out = tmp_path / "out"
    report = build_report([sweep], out)
    assert len(report.runs) == 2, "a failed point's curves up to the failure are still drawn"
    listed = json.loads((out / "report.json").read_text())["sweeps"][0]
    assert [p["state"] for p in listed["points"]] == ["started", "failed", "failed"]
    assert listed["failed"] == [
        {"name": NAMES[1], "exit_status": 3, "failed_at": "2026-12-03T11:00:00+00:00"},
        {"name": NAMES[2], "exit_status": -9, "failed_at": "2026-12-03T11:00:00+00:00"},
    ]
    assert listed["not_started"] == []
    page = (out / "index.html").read_text()
    assert (
        f"2 run(s) of 3 sweep points (2 failed: {NAMES[1]} (exit 3), "
        f"{NAMES[2]} (killed by signal 9))" in page
    )
    assert "<td>failed</td><td>exit 3 at 2026-12-03T11:00:00+00:00</td>" in page


def test_a_finished_point_is_not_failed_by_an_old_record(tmp_path):
    sweep = make_sweep(tmp_path, started=1, finished=1)
    fail(sweep, NAMES[0], 1)
    build_report([sweep], tmp_path / "out")
    listed = json.loads((tmp_path / "out" / "report.json").read_text())["sweeps"][0]
    assert listed["points"][0]["state"] == "finished" and listed["failed"] == []


def test_the_summary_line_names_the_failed_points(tmp_path):
    sweep = make_sweep(tmp_path, started=1)
    fail(sweep, NAMES[1], 2)
    done = run_cli("report", str(sweep), "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert (
        f"1 run of 3 sweep points (1 not started yet, 1 failed: {NAMES[1]} (exit 2));"
        in done.stdout
    )
