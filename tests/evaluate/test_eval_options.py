"""``synthlm eval`` / ``generate`` options given where nothing reads them are refused (exit 2)
before any model is loaded, instead of being dropped while the run ends as if they had been
used; and the predictions file beside a results file is always that result's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_lm import NATURAL, byte_tokenizer, random_checkpoint

from cli_runner import run_cli
from synthlm.data.store import write_store

QUESTION = {"question": "Who?", "options": ["ab", "cd", "ef", "gh"], "gold_label": 1}
ARTICLE = {"article_id": "1", "title": "T", "author": "A", "article": "x", "questions": [QUESTION]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A random checkpoint (RUN/final), a natural store, a one-question QuALITY file."""
    run = tmp_path_factory.mktemp("run")
    random_checkpoint(run / "final")
    rng = np.random.default_rng(0)
    write_store(run / "valid", [rng.integers(0, 256, size=n) for n in (20, 30)], NATURAL)
    (run / "qa.json").write_text(json.dumps([ARTICLE]), encoding="utf-8")
    return run


REFUSED = [
    (["--qa", "{qa}", "-d", "{store}"], "--qa cannot be combined with --data"),
    (["-d", "{store}", "--qa-scorer", "cot"], "--qa-scorer: only for --qa, not eval sets"),
    (
        ["--qa", "{qa}", "--seq-len", "16", "-b", "2"],
        "--seq-len, --batch-size: only for eval sets (--data or the run's data.eval) or "
        "--lm-eval, not --qa",
    ),
    (
        ["--qa", "{qa}", "--max-tokens", "1K"],
        "--max-tokens: only for eval sets (--data or the "
        "run's data.eval), not --qa (use --qa-limit)",
    ),
    (["--qa", "{qa}", "--max-predictions", "3"], "data.eval), not --qa\n"),
    (
        ["--qa", "{qa}", "--qa-shots", "1", "--qa-temperature", "0.5"],
        "--qa-shots, --qa-temperature: only for the chain-of-thought scorer",
    ),
    (
        ["--qa", "{qa}", "--qa-scorer", "cot", "--qa-protocol", "entigraph", "--qa-shots", "3"],
        "--qa-shots: the entigraph protocol fixes its own shots and sampling",
    ),
    (
        ["--lm-eval", "hellaswag", "--predictions", "{tmp}/p.jsonl"],
        "--predictions: only for eval sets (--data or the run's data.eval) or --qa, not --lm-eval",
    ),
    (
        ["-d", "{store}", "--predictions", "{tmp}/p.jsonl"],
        "--predictions: predictions are written for synthetic sets only",
    ),
    (
        ["-d", "{store}", "--max-examples", "5"],
        "--max-examples: read by synthetic eval sets only, and none of these is (valid: natural)",
    ),
    (["-d", "{store}", "--seed", "3"], "--seed: only for --qa or --lm-eval, not eval sets"),
    (["-d", "{store}", "--device", "mps"], "--device mps: use auto, cpu, cuda or cuda:N"),
]


@pytest.mark.parametrize(("flags", "message"), REFUSED, ids=[m[:32] for _, m in REFUSED])
def test_an_option_nothing_reads_is_refused_before_any_work(inputs, tmp_path, flags, message):
    where = {"qa": inputs / "qa.json", "store": inputs / "valid", "tmp": tmp_path}
    out = tmp_path / "results.json"
    args = [flag.format(**where) for flag in flags]
    device = [] if "--device" in args else ["--device", "cpu"]
    result = run_cli("eval", str(inputs / "final"), *args, "-o", str(out), *device)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not out.exists() and not (tmp_path / "p.jsonl").exists()


def test_qa_reads_the_tokenizer_and_predictions_flags(inputs, tmp_path):
    """--qa used to drop --tokenizer (scoring with the checkpoint's own) and --predictions."""
    from synthlm.tokenizers import train_tokenizer

    train_tokenizer([], "byte", None, tmp_path / "other", quiet=True)  # bytes at other ids
    qa = ["--qa", str(inputs / "qa.json"), "--device", "cpu", "-o", str(tmp_path / "r.json")]
    final = str(inputs / "final")
    refused = run_cli("eval", final, *qa, "--tokenizer", str(tmp_path / "other"))
    assert refused.returncode == 2, refused.stderr
    assert "encodes text differently from the checkpoint's own tokenizer" in refused.stderr
    byte_tokenizer().save_pretrained(tmp_path / "same")
    target = tmp_path / "mine.json"
    done = run_cli(
        "eval", final, *qa, "--tokenizer", str(tmp_path / "same"), "--predictions", str(target)
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {target}" in done.stdout
    assert [record["question"] for record in json.loads(target.read_text())] == ["Who?"]
    assert not (tmp_path / "r.predictions.json").exists()


def test_generate_refuses_a_prompt_end_without_a_prompt_file(inputs):
    result = run_cli("generate", str(inputs / "final"), "-p", "hi", "--prompt-end", "###")
    assert result.returncode == 2, result.stderr
    assert "--prompt-end: only splits a prompt file; use it with --input FILE" in result.stderr
