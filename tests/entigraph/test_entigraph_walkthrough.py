"""examples/entigraph/README.md runs as written against an OpenAI-compatible server on 127.0.0.1.

The commands are read out of the README itself (only the server's port and the tokenizer path
are replaced: the fake server listens on an ephemeral port, and the byte tokenizer stands in for
Llama 3's), so the page cannot drift from what works. The server honours JSON mode strictly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from entigraph_fakes import FAKE_KEY, FakeOpenAI, read_jsonl

REPO = Path(__file__).resolve().parents[2]
README = REPO / "examples" / "entigraph" / "README.md"


def readme_command(pattern: str) -> list[str]:
    """The README's shell command (continuation lines joined) whose text matches ``pattern``."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("synthlm ") and re.search(pattern, line)
    ]
    assert lines, f"README has no command matching {pattern!r}"
    return shlex.split(lines[0])


def run_synthlm(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.mark.slow
def test_walkthrough_generates_and_tokenizes_against_a_local_json_mode_server(tmp_path):
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    (work / "examples" / "entigraph").symlink_to(REPO / "examples" / "entigraph")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OPENAI_API_KEY": FAKE_KEY}
    with FakeOpenAI(expected_key=FAKE_KEY) as fake:
        generate = readme_command(r"--base-url http://127\.0\.0\.1:8000/v1")
        generate = [arg.replace("http://127.0.0.1:8000/v1", fake.url) for arg in generate] + [
            "--quiet"
        ]
        result = run_synthlm(generate, work, env)
        assert result.returncode == 0, result.stderr
        assert any(body.get("response_format") == {"type": "json_object"} for body in fake.bodies)
    corpus = read_jsonl(work / "runs" / "eg" / "corpus.jsonl")
    assert len(corpus) == 2 * (1 + 6 + 4)  # 2 documents, 4 entities each: summary, pairs, triples

    tokenize = readme_command(r"tokenize runs/eg/corpus\.jsonl -t models/llama-3-8b")
    tokenize[tokenize.index("-t") + 1] = "byte"
    result = run_synthlm([*tokenize, "--quiet"], work, env)
    assert result.returncode == 0, result.stderr
    from synthlm.data.store import TokenStore

    store = TokenStore(work / "data" / "entigraph_text_document")
    # the paper's tokenization: BOS + text + EOS per text (byte tokenizer: bos 1, eos 2, byte b -> b + 4)
    for index, line in enumerate(corpus):
        expected = [1, *(b + 4 for b in line["text"].encode("utf-8")), 2]
        assert np.asarray(store.document(index)).tolist() == expected
    assert json.loads((work / "runs" / "eg" / "manifest.json").read_text())["complete"] is True
