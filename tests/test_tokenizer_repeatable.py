"""Which kinds repeat a training run, and how the one that cannot says so.

``bpe`` and ``sentencepiece`` (here its unigram model, the repeatable alternative the warning
names) give byte-identical files from two processes. ``--kind unigram`` (HF tokenizers'
UnigramTrainer, whose word counts live in a randomly seeded hash map) cannot: its run warns once
on stderr and is saved with ``"repeatable": false``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli

WARNING = "warning: --kind unigram is not repeatable"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare: Path) -> Path:
    path = tmp_path_factory.mktemp("repeatable") / "corpus.txt"
    path.write_text(shakespeare.read_text(encoding="utf-8")[:100_000], encoding="utf-8")
    return path


def train(corpus: Path, out: Path, *args: str):
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(corpus),
        "--vocab-size",
        "500",
        "--out",
        str(out),
        *args,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(
    "args",
    [("--kind", "bpe"), ("--kind", "sentencepiece", "--sp-model-type", "unigram")],
    ids=["bpe", "sentencepiece-unigram"],
)
def test_repeatable_kinds_give_identical_files_in_two_processes(tmp_path, corpus, args):
    runs = [train(corpus, tmp_path / name, *args, "-q") for name in ("a", "b")]
    assert all(WARNING not in run.stderr for run in runs)
    for file in sorted(p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert json.loads((tmp_path / "a" / "synthlm_tokenizer.json").read_text())["repeatable"]


def test_unigram_warns_once_and_is_saved_as_not_repeatable(tmp_path, corpus):
    run = train(corpus, tmp_path / "u", "--kind", "unigram", "-q")
    [line] = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert line.startswith(WARNING) and "hash map" in line
    assert "use --kind sentencepiece --sp-model-type unigram" in line
    assert '"repeatable": false' in line
    meta = json.loads((tmp_path / "u" / "synthlm_tokenizer.json").read_text())
    assert meta["repeatable"] is False and "hash map" in meta["not_repeatable_because"]


def test_byte_is_repeatable_and_not_warned(tmp_path):
    result = run_cli("tokenizer", "train", "--kind", "byte", "--out", str(tmp_path / "b"))
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads((tmp_path / "b" / "synthlm_tokenizer.json").read_text())["repeatable"]
