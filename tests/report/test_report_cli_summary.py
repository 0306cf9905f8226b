"""The summary line ``synthlm report`` prints: counts in words a user reads, and why a report
has no figure, through the real command."""

from __future__ import annotations

from pathlib import Path

import yaml
from report_fixtures import tiny_config, write_run

from cli_runner import run_cli


def test_one_short_run_says_one_run_and_why_there_is_no_figure(tmp_path):
    run = write_run(tmp_path / "r1", steps=1)
    done = run_cli("report", str(run), "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        f"wrote {tmp_path / 'out' / 'index.html'} (0 figures, 1 run; differing keys: none)",
        "no figures: no metric logged more than once yet; single values are in the Final "
        "metrics table",
    ]


def _with_overrides(run_dir: Path, overrides: dict) -> Path:
    write_run(run_dir, steps=2)
    config = tiny_config(run_dir)
    config["model"]["overrides"] = overrides
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run_dir


def test_differing_keys_name_children_not_also_their_empty_parent(tmp_path):
    runs = [
        _with_overrides(tmp_path / "a", {}),
        _with_overrides(tmp_path / "b", {"hidden_size": 64}),
    ]
    done = run_cli("report", *map(str, runs), "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "figures, 2 runs; differing keys: model.overrides.hidden_size)" in done.stdout
