"""`synthlm quickstart` runs the whole pipeline in a subprocess and can be rerun safely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from cli_runner import run_cli
from synthlm.data.store import TokenStore

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_end_to_end_then_rerun_continues(tmp_path):
    out = tmp_path / "qs"
    first = run_cli("quickstart", "--out", str(out), "--steps", "12", "-q")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "quickstart finished" in first.stdout and "report" in first.stdout
    store = TokenStore(out / "data" / "shakespeare_text_document")
    assert store.num_tokens > 200_000 and store.metadata["append_eod"] is True
    assert (
        json.loads((out / "data" / "synthetic" / "manifest.json").read_text())["layout"][
            "vocab_size"
        ]
        > 0
    )
    train, valid = (
        TokenStore(out / "data" / f"shakespeare_text_document_{part}")
        for part in ("train", "valid")
    )
    assert len(train) + len(valid) == len(store) and 0 < len(valid) < len(train), (
        "held-out documents"
    )
    config = (out / "run" / "config.yaml").read_text()
    assert "shakespeare_text_document_valid" in config.split("eval:")[1], (
        "natural loss is measured on held-out text"
    )
    records = [
        json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[-1]["step"] == 12 and any("eval/shakespeare/loss" in r for r in records)
    assert (out / "report" / "index.html").stat().st_size > 1000
    AutoModelForCausalLM.from_pretrained(out / "run" / "final")  # plain HF dir
    second = run_cli("quickstart", "--out", str(out), "--steps", "12", "-q")
    assert second.returncode == 0, second.stderr[-2000:]
    assert len((out / "run" / "metrics.jsonl").read_text().splitlines()) == len(records), (
        "finished stages are not redone"
    )
    # outputs that exist but are not what the stage makes are not silently used
    longer = run_cli("quickstart", "--out", str(out), "--steps", "20", "-q")
    assert longer.returncode == 2 and "is a run of 12 steps, not 20; use another" in longer.stderr
    other = run_cli(
        "synth",
        "generate",
        str(REPO / "examples/synth/tilt.yaml"),
        "--out",
        str(out / "data" / "synthetic"),
        "--tokens",
        "20K",
        "--overwrite",
    )
    assert other.returncode == 0, other.stderr
    again = run_cli("quickstart", "--out", str(out), "--steps", "12", "-q")
    assert again.returncode == 2 and "holds another synthetic dataset" in again.stderr


def test_the_example_spec_and_config_are_the_quickstarts_own():
    """README's walkthrough redoes the quickstart's stages with the shipped example files: they
    must make the same dataset and train the same run, or the walkthrough trains on data the
    quickstart's checkpoint never saw."""
    import yaml

    from synthlm.quickstart import _packaged, train_config
    from synthlm.synth import load_spec
    from synthlm.train import load_run_config

    example = load_spec(REPO / "examples/synth/quickstart.yaml")
    assert example.model_dump() == load_spec(_packaged("synth.yaml")).model_dump()
    out, data = Path("quickstart"), Path("quickstart/data")
    stores = (data / "shakespeare_text_document_train", data / "shakespeare_text_document_valid")
    ours = train_config(out, out / "tokenizer", stores, data / "synthetic").model_dump()
    config = REPO / "examples/configs/quickstart.yaml"
    theirs = load_run_config([config]).model_dump()
    assert yaml.safe_load(config.read_text())["run_dir"] == "runs/quickstart"
    ours["run_dir"] = theirs["run_dir"]
    assert ours == theirs
