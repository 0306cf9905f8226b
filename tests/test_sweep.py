"""Sweeps: one correct config per grid point, nothing written on bad input, SLURM array, local runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from synthlm.errors import ConfigError, UserError
from synthlm.sweep import parse_grid, plan_sweep, split_values, write_sweep
from synthlm.sweep_launch import (
    parse_slurm_options,
    run_local,
    slurm_script,
    write_slurm_script,
)

BASE = {
    "run_dir": "runs/base",
    "seed": 1,
    "data": {
        "sources": [
            {"name": "text", "path": "stores/text", "weight": 1.0, "kind": "natural"},
            {"name": "dyck", "path": "synth/dyck", "weight": 0.1, "kind": "synthetic"},
        ]
    },
    "optim": {"lr": 1e-3},
    "train": {"max_steps": 10},
}

# Stands in for `synthlm train CONFIG`: writes what the real trainer writes (final/ last), fails
# (seed 13) or stops early as a stop signal makes it (seed 15: exit 0, no final/) on request.
FAKE_TRAINER = textwrap.dedent(
    """
    import json, pathlib, sys, yaml
    cfg = yaml.safe_load(open(sys.argv[1]))
    run = pathlib.Path(cfg["run_dir"]); run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    w = cfg["data"]["sources"][1]["weight"]
    lines = [json.dumps({"step": s, "tokens": 64 * s, "loss": 3 - w * s}) for s in range(1, 6)]
    (run / "metrics.jsonl").write_text("\\n".join(lines) + "\\n")
    with open(run.parent.parent / "calls.txt", "a") as f: f.write(run.name + "\\n")
    if cfg.get("seed") == 13: sys.exit(3)
    if cfg.get("seed") != 15: (run / "final").mkdir(exist_ok=True)  # 15: stopped by a signal
    sys.exit(0)
    """
)


@pytest.fixture
def base(tmp_path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    return path


@pytest.fixture
def fake_trainer(tmp_path) -> list[str]:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAINER)
    return [sys.executable, str(script)]


def synthlm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---------------------------------------------------------------------------------------------
# Grid syntax


def test_values_split_on_top_level_commas_only():
    assert split_values("1e-3, 3e-4") == ["1e-3", "3e-4"]
    assert split_values("[1,2],[3,4]") == ["[1,2]", "[3,4]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert split_values("{x: 1, y: 2}") == ["{x: 1, y: 2}"]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["optim.lr=1e-3,,3e-4"], "empty value"),
        (["optim.lr="], "empty value"),
        (["run_dir=a,b"], "run_dir is set by the sweep"),
        (["optim.lr=1,1"], "repeated"),
        (["optim.lr=1,2", "optim.lr=3"], "given twice"),
        (["optim.lr"], "KEY=VALUE"),
    ],
)
def test_bad_grids_are_rejected(items, message):
    with pytest.raises(UserError, match=message):
        parse_grid(items)


def test_slurm_options():
    assert parse_slurm_options(["partition=gpu", "--time=1:00:00", "exclusive"]) == [
        ("partition", "gpu"),
        ("time", "1:00:00"),
        ("exclusive", ""),
    ]
    with pytest.raises(UserError, match="sets --array itself"):
        parse_slurm_options(["array=0-3"])
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_slurm_options(["bad key=1"])


# ---------------------------------------------------------------------------------------------
# Planning and writing


def test_each_grid_point_gets_its_own_complete_config(base, tmp_path):
    sweep = plan_sweep(
        [base],
        ["data.sources.1.weight=0.1,0.2", "optim.lr=1e-3,3e-4", "train.max_steps=5"],
        tmp_path / "sw",
    )
    write_sweep(sweep)
    assert [p.name for p in sweep.points] == [
        "000_weight-0.1_lr-1e-3",
        "001_weight-0.1_lr-3e-4",
        "002_weight-0.2_lr-1e-3",
        "003_weight-0.2_lr-3e-4",
    ]
    seen = set()
    for point in sweep.points:
        config = yaml.safe_load(point.config.read_text())
        weight, lr = config["data"]["sources"][1]["weight"], config["optim"]["lr"]
        seen.add((weight, lr))
        assert point.config.parent == tmp_path / "sw" / "configs"
        assert config["run_dir"] == str(tmp_path / "sw" / "runs" / point.name)
        assert config["train"]["max_steps"] == 5 and config["seed"] == 1
        assert config["data"]["sources"][0] == BASE["data"]["sources"][0]
    assert seen == {(0.1, 1e-3), (0.1, 3e-4), (0.2, 1e-3), (0.2, 3e-4)}
    manifest = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert manifest["grid"] == {
        "data.sources.1.weight": ["0.1", "0.2"],
        "optim.lr": ["1e-3", "3e-4"],
        "train.max_steps": ["5"],
    }
    assert [p["overrides"] for p in manifest["points"]][1] == [
        "data.sources.1.weight=0.1",
        "optim.lr=3e-4",
        "train.max_steps=5",
    ]


def test_names_disambiguate_keys_with_the_same_last_part(base, tmp_path):
    sweep = plan_sweep(
        [base], ["data.sources.0.weight=1,2", "data.sources.1.weight=0.1,0.2"], tmp_path / "sw"
    )
    assert sweep.points[1].name == "001_0.weight-1_1.weight-0.2"


@pytest.mark.parametrize("grid", ["optim.lr=1e-3,0.001", "train.max_steps=6,6.0"])
def test_grid_values_that_parse_to_one_setting_are_refused(base, tmp_path, grid):
    with pytest.raises(UserError, match="000_.* and 001_.* are the same config"):
        plan_sweep([base], [grid], tmp_path / "sw")


def test_points_the_trainer_resolves_to_one_config_are_refused(base, tmp_path):
    class Resolved:  # what load_run_config returns: a model with model_dump()
        def __init__(self, overrides):
            self.seq_len = int(overrides[0].split("=")[1].strip("'"))

        def model_dump(self):
            return {"seq_len": self.seq_len, "run_dir": "differs per point"}

    sweep = plan_sweep([base], ["data.seq_len=32,'32'"], tmp_path / "sw")
    with pytest.raises(UserError, match="are the same config"):
        write_sweep(sweep, validator=lambda files, overrides: Resolved(overrides))
    assert not (tmp_path / "sw").exists()


def test_a_bad_override_fails_before_anything_is_written(base, tmp_path):
    with pytest.raises(ConfigError, match="out of range"):
        plan_sweep([base], ["data.sources.5.weight=0.1,0.2"], tmp_path / "sw")
    assert not (tmp_path / "sw").exists()


def test_every_point_is_validated_before_writing(base, tmp_path):
    calls = []

    def validator(files, overrides):
        calls.append(list(overrides))
        if "optim.lr=-1" in overrides:
            raise ConfigError("optim.lr: must be positive")

    sweep = plan_sweep([base], ["optim.lr=1e-3,-1"], tmp_path / "sw")
    with pytest.raises(ConfigError, match="sweep point 001_lr--1"):
        write_sweep(sweep, validator=validator)
    assert not (tmp_path / "sw").exists()
    assert calls[0] == ["optim.lr=1e-3", f"run_dir={tmp_path / 'sw' / 'runs' / '000_lr-1e-3'}"]


def test_a_different_sweep_is_not_overwritten_without_force(base, tmp_path):
    write_sweep(plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw"))
    write_sweep(plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw"))  # the same sweep again: fine
    other = plan_sweep([base], ["seed=1,2,3"], tmp_path / "sw")
    with pytest.raises(UserError, match="different sweep"):
        write_sweep(other)
    write_sweep(other, force=True)
    assert sorted(p.name for p in (tmp_path / "sw" / "configs").iterdir()) == [
        "000_seed-1.yaml",
        "001_seed-2.yaml",
        "002_seed-3.yaml",
    ]


def test_force_retrains_from_scratch_and_keeps_the_earlier_runs_aside(base, tmp_path, fake_trainer):
    sweep = plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw")
    write_sweep(sweep)
    run_local(sweep, fake_trainer, echo=lambda _: None)
    said: list[str] = []
    write_sweep(sweep, force=True, echo=said.append)
    for point in sweep.points:
        assert not point.run_dir.exists() and not sweep.done_marker(point).exists()
        (aside,) = point.run_dir.parent.glob(f"{point.name}.replaced-*")
        assert (aside / "final").is_dir()  # nothing deleted
        assert any(str(aside) in line for line in said)
    assert [o.status for o in run_local(sweep, fake_trainer, echo=lambda _: None)] == [
        "done",
        "done",
    ]
    assert len((tmp_path / "sw" / "calls.txt").read_text().split()) == 4


def test_a_base_config_edited_in_place_is_refused_once_points_started(base, tmp_path, fake_trainer):
    write_sweep(plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw"))
    base.write_text(yaml.safe_dump({**BASE, "seed": 7}))
    write_sweep(plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw"))  # nothing ran yet: fine
    sweep = plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw")
    run_local(sweep, fake_trainer, echo=lambda _: None)
    base.write_text(yaml.safe_dump({**BASE, "seed": 8}))
    changed = plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw")
    with pytest.raises(UserError, match="base config changed since 2 point.*--force.*new --out"):
        write_sweep(changed)
    assert yaml.safe_load(changed.points[0].config.read_text())["seed"] == 7  # not rewritten
    write_sweep(changed, force=True, echo=lambda _: None)


# ---------------------------------------------------------------------------------------------
# Launching


def test_slurm_array_task_trains_its_point_and_skips_when_done(base, tmp_path, fake_trainer):
    sweep = plan_sweep([base], ["optim.lr=1e-3,3e-4,1e-4"], tmp_path / "sw")
    write_sweep(sweep)
    script = write_slurm_script(
        sweep,
        fake_trainer,
        options=[("partition", "gpu")],
        setup=["export FOO=1"],
        max_parallel=2,
        workdir=tmp_path,
    )
    text = script.read_text()
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --partition=gpu" in text
    assert (
        f'#SBATCH --output="{tmp_path / "sw" / "logs"}/%x-%A_%a.out"' in text
        and (tmp_path / "sw" / "logs").is_dir()
    )
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1"}
    first = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "sw" / "calls.txt").read_text().split() == ["001_lr-3e-4"]
    assert (
        yaml.safe_load((tmp_path / "sw" / "runs" / "001_lr-3e-4" / "config.yaml").read_text())[
            "optim"
        ]["lr"]
        == 3e-4
    )
    again = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert "already finished" in again.stdout
    assert (tmp_path / "sw" / "calls.txt").read_text().split() == ["001_lr-3e-4"]


def test_slurm_task_stopped_by_a_signal_leaves_its_point_pending(base, tmp_path, fake_trainer):
    """A preempted task's trainer saves a checkpoint and exits 0; the requeued task must resume
    it, so only RUN/final/ (not the exit status) marks a point finished."""
    sweep = plan_sweep([base], ["seed=15,14"], tmp_path / "sw")
    write_sweep(sweep)
    sweep.done_marker(sweep.points[0]).parent.mkdir()
    sweep.done_marker(sweep.points[0]).touch()  # as older versions marked a stopped task
    script = write_slurm_script(sweep, fake_trainer, workdir=tmp_path)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0"}
    for _ in range(2):
        task = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        assert task.returncode == 0, task.stderr
        assert "stopped before finishing" in task.stdout and "already finished" not in task.stdout
    assert (tmp_path / "sw" / "calls.txt").read_text().split() == ["000_seed-15"] * 2
    env["SLURM_ARRAY_TASK_ID"] = "1"
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True)
    assert sweep.done_marker(sweep.points[1]).is_file()


def test_slurm_script_keeps_user_job_name_and_output(base, tmp_path):
    sweep = plan_sweep([base], ["optim.lr=1,2"], tmp_path / "sw")
    text = slurm_script(sweep, ["train"], options=[("job-name", "mine"), ("output", "x.out")])
    assert text.count("--job-name") == 1 and "#SBATCH --job-name=mine" in text
    assert text.count("--output") == 1


def test_local_runs_go_in_turn_and_failures_do_not_stop_the_rest(base, tmp_path, fake_trainer):
    sweep = plan_sweep([base], ["seed=13,14"], tmp_path / "sw")
    write_sweep(sweep)
    outcomes = run_local(sweep, fake_trainer, echo=lambda _: None)
    assert [(o.point.name, o.status, o.returncode) for o in outcomes] == [
        ("000_seed-13", "failed", 3),
        ("001_seed-14", "done", 0),
    ]
    again = run_local(sweep, fake_trainer, echo=lambda _: None)
    assert [o.status for o in again] == ["failed", "skipped"]
    assert (tmp_path / "sw" / "calls.txt").read_text().split() == [
        "000_seed-13",
        "001_seed-14",
        "000_seed-13",
    ]


def test_a_failed_point_is_recorded_until_an_attempt_does_not_fail(base, tmp_path, fake_trainer):
    """SWEEPDIR/failed/<point>.json keeps the exit status (the terminal that showed it is
    gone by the time someone reads the report); a later attempt that finishes removes it."""
    sweep = plan_sweep([base], ["seed=13,14"], tmp_path / "sw")
    write_sweep(sweep)
    run_local(sweep, fake_trainer, echo=lambda _: None)
    record = tmp_path / "sw" / "failed" / "000_seed-13.json"
    written = json.loads(record.read_text())
    assert (written["point"], written["exit_status"], written["runner"]) == (
        "000_seed-13",
        3,
        "local",
    )
    assert written["time"][:4].isdigit() and "T" in written["time"]
    assert [p.name for p in (tmp_path / "sw" / "failed").iterdir()] == ["000_seed-13.json"]
    config = yaml.safe_load(sweep.points[0].config.read_text())
    sweep.points[0].config.write_text(yaml.safe_dump({**config, "seed": 14}))  # fixed by hand
    assert [o.status for o in run_local(sweep, fake_trainer, echo=lambda _: None)] == [
        "done",
        "skipped",
    ]
    assert not record.exists()


def test_force_drops_the_failure_record_of_the_run_it_moves_aside(base, tmp_path, fake_trainer):
    sweep = plan_sweep([base], ["seed=13"], tmp_path / "sw")
    write_sweep(sweep)
    run_local(sweep, fake_trainer, echo=lambda _: None)
    assert sweep.failure_record(sweep.points[0]).is_file()
    write_sweep(sweep, force=True, echo=lambda _: None)
    assert not sweep.failure_record(sweep.points[0]).exists()


def test_slurm_task_records_a_failure_and_exits_with_its_status(base, tmp_path, fake_trainer):
    sweep = plan_sweep([base], ["seed=13,14"], tmp_path / "sw")
    write_sweep(sweep)
    script = write_slurm_script(sweep, fake_trainer, workdir=tmp_path)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "777"}
    task = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert task.returncode == 3, task.stderr
    assert "sweep point 000_seed-13 failed with exit status 3" in task.stderr
    record = json.loads(sweep.failure_record(sweep.points[0]).read_text())
    assert record["point"] == "000_seed-13" and record["exit_status"] == 3
    assert (record["runner"], record["job"]) == ("slurm", "777_0") and "T" in record["time"]
    assert [p.name for p in (tmp_path / "sw" / "failed").iterdir()] == ["000_seed-13.json"]
    config = yaml.safe_load(sweep.points[0].config.read_text())
    sweep.points[0].config.write_text(yaml.safe_dump({**config, "seed": 15}))  # now: stopped
    again = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "stopped before finishing" in again.stdout, again.stderr
    assert not sweep.failure_record(sweep.points[0]).exists()


def test_a_stopped_point_stays_pending_and_ends_the_local_sweep(base, tmp_path, fake_trainer):
    """Exit 0 without RUN/final/ is a stop signal's checkpoint, not a finished run."""
    sweep = plan_sweep([base], ["seed=15,14"], tmp_path / "sw")
    write_sweep(sweep)
    said: list[str] = []
    outcomes = run_local(sweep, fake_trainer, echo=said.append)
    assert [(o.point.name, o.status) for o in outcomes] == [("000_seed-15", "stopped")]
    assert "stopped before finishing" in said[-1]
    assert not (tmp_path / "sw" / "done").exists()
    assert [o.status for o in run_local(sweep, fake_trainer, echo=said.append)] == ["stopped"]
    assert (tmp_path / "sw" / "calls.txt").read_text().split() == ["000_seed-15"] * 2


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_dry_run_and_slurm_write_configs_only(base, tmp_path):
    done = synthlm(
        "sweep",
        str(base),
        "--grid",
        "optim.lr=1e-3,3e-4",
        "seed=1,2",
        "--out",
        "sw",
        "--dry-run",
        "--no-validate",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "sw" / "configs").glob("*.yaml"))) == 4
    assert not (tmp_path / "sw" / "sweep.slurm").exists() and not list(
        (tmp_path / "sw" / "runs").iterdir()
    )
    slurm = synthlm(
        "sweep",
        str(base),
        "--grid",
        "optim.lr=1e-3,3e-4",
        "seed=1,2",
        "--out",
        "sw",
        "--slurm",
        "--no-validate",
        cwd=tmp_path,
    )
    assert slurm.returncode == 0, slurm.stderr
    assert "#SBATCH --array=0-3" in (tmp_path / "sw" / "sweep.slurm").read_text()
    assert "sbatch" in slurm.stdout


def test_cli_bad_grid_exits_2_and_writes_nothing(base, tmp_path):
    done = synthlm(
        "sweep",
        str(base),
        "optim.lr=1e-3,,3",
        "--out",
        "sw",
        "--dry-run",
        "--no-validate",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "error:" in done.stderr and "empty value" in done.stderr
    missing = synthlm(
        "sweep",
        "nope.yaml",
        "optim.lr=1,2",
        "--out",
        "sw",
        "--dry-run",
        "--no-validate",
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
    assert not (tmp_path / "sw").exists()


def test_cli_local_sweep_then_report_compares_the_runs(base, tmp_path, fake_trainer):
    command = " ".join(fake_trainer)
    done = synthlm(
        "sweep",
        str(base),
        "data.sources.1.weight=0.1,0.3",
        "--out",
        "sw",
        "--command",
        command,
        "--no-validate",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "[2/2] 001_weight-0.3" in done.stdout
        and len(list((tmp_path / "sw" / "done").iterdir())) == 2
    )
    report = synthlm("report", "sw", "--out", "sw/report", "-q", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "sw" / "report" / "index.html").read_text()
    assert "data.sources.1.weight=0.1" in page and "data.sources.1.weight=0.3" in page
    assert "run_dir</code></td>" in page  # listed among the configs, but not as a difference
    assert json.loads((tmp_path / "sw" / "report" / "report.json").read_text())["differing"] == [
        "data.sources.1.weight"
    ]


def test_cli_says_what_happened_and_refuses_flags_it_would_ignore(base, tmp_path, fake_trainer):
    command = ["--command", " ".join(fake_trainer), "--no-validate", "--out", "sw"]
    stopped = synthlm("sweep", str(base), "seed=15,14", *command, cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr  # as a stopped `synthlm train`
    assert "sweep stopped at 000_seed-15: 2 of 2 points not finished" in stopped.stdout
    assert "001_seed-14" not in stopped.stdout
    failed = synthlm("sweep", str(base), "seed=13", *command[:-1], "sw2", cwd=tmp_path)
    assert failed.returncode == 1 and "wrote 1 config to" in failed.stdout
    assert failed.stderr.startswith("error: 1 of 1 sweep points failed: 000 (exit 3)")
    report = synthlm("report", "sw2", "--out", "sw2/report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "1 run of 1 sweep points (1 failed: 000 (exit 3));" in report.stdout
    for flag in (["--max-parallel", "2"], ["--slurm-option", "time=1:00"], ["--slurm-setup", "x"]):
        ignored = synthlm("sweep", str(base), "seed=1,2", *flag, "--out", "sw3", cwd=tmp_path)
        assert ignored.returncode == 2 and f"{flag[0]}: only used with --slurm" in ignored.stderr
    assert not (tmp_path / "sw3").exists()
    dry = synthlm("sweep", str(base), "seed=1", "--dry-run", "--force", "--out", "sw", cwd=tmp_path)
    assert dry.returncode == 2 and "--force moves every point's earlier run dir" in dry.stderr
