"""``synthlm generate -o FILE`` says what it wrote in the same words, on the same stream, for
text prompts and for ``--synthetic`` symbol prompts (real subprocesses)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))  # the shared tiny-model helpers

from tiny_lm import EOS, bigram_checkpoint, byte_id

from cli_runner import run_cli
from synthlm.synth import build_dataset, load_spec

SPEC = {
    "num_tokens": 400,
    "seed": 1,
    "splits": {"train": 0.5, "valid": 0.5, "test": 0.0},
    "domains": [{"type": "copy", "vocab": {"num_vocab": 8}, "length": {"min": 1, "max": 4}}],
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    a, b = byte_id("a"), byte_id("b")
    return bigram_checkpoint(tmp_path_factory.mktemp("run") / "final", {a: b, b: EOS})


def generate(checkpoint: Path, out: Path, *args: str):
    result = run_cli("generate", str(checkpoint), "-o", str(out), "--temperature", "0", *args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_text_and_synthetic_prompts_print_the_same_wrote_line(checkpoint, tmp_path):
    text_out = tmp_path / "text.jsonl"
    text = generate(checkpoint, text_out, "-p", "a", "-p", "ab", "-q")
    assert text.stdout.splitlines() == [f"wrote 2 samples to {text_out}"]
    one = generate(checkpoint, tmp_path / "one.jsonl", "-p", "a", "-q")
    assert one.stdout.splitlines() == [f"wrote 1 sample to {tmp_path / 'one.jsonl'}"]
    dataset = tmp_path / "tasks"
    build_dataset(load_spec(SPEC), dataset, quiet=True)
    synth_out = tmp_path / "synthetic.jsonl"
    synthetic = generate(
        checkpoint, synth_out, "--synthetic", str(dataset), "-p", "1 2", "-p", "3", "-n", "2", "-q"
    )
    assert synthetic.stdout.splitlines() == [f"wrote 2 samples to {synth_out}"]
    assert "wrote" not in text.stderr + synthetic.stderr
