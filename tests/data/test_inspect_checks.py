"""``synthlm data inspect`` decodes only with the tokenizer that wrote the store, and refuses
negative counts, as every command refuses bad input: exit 2 and one line naming what is wrong.

Decoding a BPE store with a SentencePiece tokenizer used to print fluent-looking garbage and
exit 0, the very mistake inspect is run to catch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_runner import run_cli
from synthlm.data.tokenization import tokenize
from synthlm.tokenizers import train_tokenizer

LINE = "To be, or not to be, that is the question"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shakespeare: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    text = root / "corpus.txt"
    text.write_text(shakespeare.read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    for kind in ("bpe", "sentencepiece"):
        train_tokenizer([text], kind, 400, root / kind, quiet=True)
    docs = root / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"{LINE} {i}"}) + "\n" for i in range(5)))
    tokenize([docs], root / "bpe", root / "web", workers=1, quiet=True)
    shutil.copytree(root / "bpe", root / "bpe_copy")  # the same tokenizer, saved elsewhere
    return {"root": root, "store": root / "web_text_document"}


def inspect(store: Path, *args: str):
    return run_cli("data", "inspect", str(store), *args)


def test_another_tokenizer_is_refused_naming_both(setup):
    root = setup["root"]
    done = inspect(setup["store"], "-t", str(root / "sentencepiece"))
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr
    assert message.startswith("error: --tokenizer ") and message.count("\n") == 1, message
    assert f"{setup['store']} was tokenized by another tokenizer (bpe," in message
    assert str(root / "bpe") in message and str(root / "sentencepiece") in message
    assert "than this one reads it with (sentencepiece," in message
    assert done.stdout == "", "no garbage samples before the error"


def test_the_writing_tokenizer_decodes(setup):
    for args in ((), ("-t", str(setup["root"] / "bpe")), ("-t", str(setup["root"] / "bpe_copy"))):
        done = inspect(setup["store"], "-n", "1", *args)
        assert done.returncode == 0, done.stderr
        assert f"{LINE} 0" in done.stdout, done.stdout


@pytest.mark.parametrize("flag", ["-n", "--sample", "--max-chars"])
def test_negative_counts_are_refused(setup, flag):
    done = inspect(setup["store"], flag, "-1")
    assert done.returncode == 2, done.stdout
    assert "greater than or equal to 0" in done.stderr and flag in done.stderr, done.stderr


def test_zero_counts_are_fine(setup):
    none = inspect(setup["store"], "-n", "0")
    assert none.returncode == 0 and "[doc " not in none.stdout, none.stderr
    empty = inspect(setup["store"], "-n", "1", "--max-chars", "0")
    assert empty.returncode == 0 and "tokens] ' ...'" in empty.stdout, empty.stdout


def test_the_library_refuses_negative_counts_too(setup):
    from synthlm.data.summary import inspect_report
    from synthlm.errors import UserError

    with pytest.raises(UserError, match="--max-chars: -1 is negative"):
        inspect_report(setup["store"], max_chars=-1)


def test_a_synthetic_split_is_not_read_as_a_tokenizers_text(tmp_path):
    """Its ids are a synthetic dataset's symbols: decoding them with -t printed garbage."""
    from synthlm.synth import build_dataset, load_spec

    spec = {"num_tokens": 2000, "seed": 0, "domains": [{"type": "copy", "vocab": {"num_vocab": 9}}]}
    build_dataset(load_spec(spec), tmp_path / "d", quiet=True)
    train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)
    refused = run_cli("data", "inspect", str(tmp_path / "d" / "train"), "-t", str(tmp_path / "tok"))
    assert refused.returncode == 2
    assert "is a split of a synthetic dataset (synthlm synth)" in refused.stderr
