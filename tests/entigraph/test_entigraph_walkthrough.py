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


def rehearsal_script() -> str:
    """The README's CPU rehearsal block, continuation lines joined."""
    section = README.read_text(encoding="utf-8").split("## Rehearsal on a CPU", 1)[1]
    return re.sub(r"\s*\\\n\s*", " ", section.split("```bash\n", 1)[1].split("```", 1)[0])


@pytest.mark.slow
def test_cpu_rehearsal_runs_as_written(tmp_path):
    """Every line of the rehearsal as pasted, but one: the corpus comes from the fake server
    instead of a local instruct model (none is shipped). The continued pretraining from the
    quickstart model, the instruction tuning from that, and the chat must all run."""
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    for name in ("entigraph", "configs"):
        (work / "examples" / name).symlink_to(REPO / "examples" / name)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OPENAI_API_KEY": FAKE_KEY}
    script = rehearsal_script()
    local = "--backend local --model path/to/Qwen2.5-0.5B-Instruct"
    assert script.count(local) == 1
    with FakeOpenAI(expected_key=FAKE_KEY) as fake:
        script = script.replace(local, f"--model fake-model --base-url {fake.url} --quiet")
        prelude = f'synthlm() {{ "{sys.executable}" -m synthlm "$@"; }}\n'
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", prelude + script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / "runs" / "entigraph-cpt" / "eval" / "qa.json").is_file()
    info = json.loads((work / "runs" / "entigraph-instruct" / "final" / "synthlm.json").read_text())
    assert info["layout"]["meta_size"] == 256  # the quickstart model's meta rows, kept throughout
    assert "[prompt:" in result.stderr  # chat ran (--show-prompt), with its default reply budget
