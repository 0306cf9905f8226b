"""A real sweep end to end: points validated by the trainer's own config loader, two points
trained for real by ``synthlm train``, then ``synthlm report SWEEPDIR`` names each curve after
the key that differs between them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_runner import run_cli
from synthlm.data.store import write_store
from synthlm.tokenizers import load_tokenizer, train_tokenizer

ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture
def base(tmp_path, shakespeare) -> Path:
    """A byte tokenizer, a store of the first 300 lines of tinyshakespeare, a tiny-Llama config."""
    tok = tmp_path / "tok"
    train_tokenizer([], "byte", None, tok, quiet=True)
    tokenizer = load_tokenizer(tok)
    lines = [
        line for line in shakespeare.read_text(encoding="utf-8").splitlines()[:300] if line.strip()
    ]
    write_store(tmp_path / "text", tokenizer.encode_batch(lines), vocab_size=tokenizer.vocab_size)
    config = {
        "run_dir": str(tmp_path / "unused"),
        "seed": 0,
        "model": {
            "arch": "llama",
            "preset": "tiny",
            "overrides": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_attention_heads": 2,
                "num_hidden_layers": 2,
            },
        },
        "data": {
            "sources": [{"name": "text", "path": str(tmp_path / "text")}],
            "seq_len": 32,
            "tokenizer": str(tok),
        },
        "optim": {"lr": 1e-3},
        "train": {"max_steps": 3, "batch_size": 4, "log_every": 1, "checkpoint_every": 0},
        "logging": {"tensorboard": False, "progress": False},
    }
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_an_invalid_point_fails_the_whole_sweep_before_anything_is_written(tmp_path, base):
    result = run_cli(
        "sweep",
        str(base),
        "optim.lr=1e-3,-1",
        "train.max_step=5",
        "--out",
        str(tmp_path / "sw"),
        env=ENV,
    )
    assert result.returncode == 2
    assert "sweep point 000_lr-1e-3" in result.stderr  # the first point already fails on the typo
    assert "train.max_step: unknown key (did you mean 'train.max_steps'?)" in result.stderr
    assert not (tmp_path / "sw").exists()

    bad_value = run_cli(
        "sweep", str(base), "optim.lr=1e-3,-1", "--out", str(tmp_path / "sw"), env=ENV
    )
    assert (
        bad_value.returncode == 2
        and "sweep point 001_lr--1" in bad_value.stderr
        and "optim.lr" in bad_value.stderr
    )
    assert not (tmp_path / "sw").exists()


def test_a_missing_data_path_fails_the_whole_sweep_before_anything_is_written(tmp_path, base):
    """The pre-flight checks of `synthlm train --dry-run` run for every point up front."""
    result = run_cli(
        "sweep",
        str(base),
        "optim.lr=1e-3,3e-4",
        "--grid",
        f"data.sources.0.path={tmp_path / 'text'},/nonexist2",
        "--out",
        str(tmp_path / "sw"),
        env=ENV,
    )
    assert result.returncode == 2, result.stderr
    assert "sweep point 002_path-nonexist2_lr-1e-3" in result.stderr  # 000, 001 pass
    assert "/nonexist2 is not a token store" in result.stderr
    assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_two_points_train_for_real_and_the_report_compares_them(tmp_path, base):
    sweep = tmp_path / "sw"
    result = run_cli("sweep", str(base), "optim.lr=3e-3,3e-4", "--out", str(sweep), env=ENV)
    assert result.returncode == 0, result.stderr
    runs = sorted((sweep / "runs").iterdir())
    assert [r.name for r in runs] == ["000_lr-3e-3", "001_lr-3e-4"]
    for run, lr in zip(runs, (3e-3, 3e-4)):
        assert (run / "final" / "model.safetensors").is_file()
        assert yaml.safe_load((run / "config.yaml").read_text())["optim"]["lr"] == lr
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert sorted(p.name for p in (sweep / "done").iterdir()) == ["000_lr-3e-3", "001_lr-3e-4"]

    report = run_cli("report", str(sweep), "--out", str(sweep / "report"), "-q", env=ENV)
    assert report.returncode == 0, report.stderr
    manifest = json.loads((sweep / "report" / "report.json").read_text())
    assert manifest["differing"] == ["optim.lr"]
    assert manifest["labels"] == ["optim.lr=0.003", "optim.lr=0.0003"]
    assert "loss.png" in manifest["figures"]
    page = (sweep / "report" / "index.html").read_text()
    assert "optim.lr=0.003" in page and "optim.lr=0.0003" in page
