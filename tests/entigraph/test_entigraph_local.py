"""The local transformers backend end to end: a tiny Llama built here, no downloads, no server.

The model's weights make greedy decoding print a fixed entity-step JSON reply, so all three
steps run through the real chat template, batching, generation and token counting; the text
is nonsense for pairs and triples, and only the plumbing is under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from entigraph_fakes import DOCS, read_jsonl, write_docs
from tiny_chat_model import REPLY, build_tiny_chat_model

from synthlm.entigraph import EntiGraphConfig, run_entigraph

ENTITIES = json.loads(REPLY)["entities"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"))


def entigraph_local(docs: Path, out: Path, model: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "synthlm",
        "entigraph",
        "--docs",
        str(docs),
        "--out",
        str(out),
        "--backend",
        "local",
        "--model",
        str(model),
        "--device",
        "cpu",
        "--temperature",
        "0",
        "--max-tokens",
        "16",
        "--concurrency",
        "4",
        "--quiet",
        *extra,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)  # the local backend needs no key
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_local_model_produces_every_record_with_tokenizer_counts(tiny_model, tmp_path):
    docs, out = write_docs(tmp_path / "docs.jsonl"), tmp_path / "out"
    # The dry run in-process (transformers is already imported here): exact tokenizer counts.
    cfg = EntiGraphConfig(
        docs=docs,
        out=out,
        backend="local",
        model=str(tiny_model),
        max_tokens=16,
        dry_run=True,
        assumed_entities=3,
    )
    planned = run_entigraph(cfg).estimate.to_dict()
    assert not out.exists()

    result = entigraph_local(docs, out, tiny_model)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out / "generations.jsonl")
    per_doc = 1 + 3 + 1  # entities, C(3,2) pairs, C(3,3) triple
    assert (
        len({r["key"] for r in records})
        == len(records)
        == per_doc * len(DOCS)
        == planned["total"]["requests"]
    )
    entity_records = [r for r in records if r["step"] == "entities"]
    assert all(r["entity_list"] == ENTITIES and r["summary"] == "A tale." for r in entity_records)
    assert Counter(tuple(r["entities"]) for r in records if r["step"] == "triple") == {
        tuple(ENTITIES): 2
    }

    # Token counts come from the tokenizer: 7 reply tokens + </s>; prompts exactly as the dry run counted.
    assert all(r["usage"]["completion_tokens"] == 8 and not r["usage_estimated"] for r in records)
    assert (
        sum(r["usage"]["prompt_tokens"] for r in entity_records)
        == planned["entities"]["prompt_tokens"]
    )
    corpus = read_jsonl(out / "corpus.jsonl")
    assert len(corpus) == len(records) and corpus[0]["text"] == "A tale."
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"]["backend"] == "local" and manifest["complete"]


def test_local_backend_rejects_a_directory_without_a_model(tmp_path):
    docs = write_docs(tmp_path / "docs.jsonl")
    result = entigraph_local(docs, tmp_path / "out", tmp_path, "--dry-run")
    assert result.returncode == 2 and "not a local transformers model directory" in result.stderr
