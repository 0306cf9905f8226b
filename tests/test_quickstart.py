"""`synthlm quickstart` runs the whole pipeline in a subprocess and can be rerun safely."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM

from cli_runner import run_cli
from synthlm.data.store import TokenStore


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
