"""A tokenizer name that is no local path: the HF cache, then the Hub, failing fast.

A mistyped local dir (``-t tok_nonexist``) looks like a Hub name; offline, huggingface_hub used to
retry for about a minute before the error. No test here touches the network: the "online" cases
point ``HF_ENDPOINT`` at a closed port on this machine, which refuses at once, as an unreachable
Hub does.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.tokenizers import load_tokenizer, train_tokenizer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def online_env(tmp_path: Path) -> dict[str, str]:
    """Online mode, an empty private HF cache, and a Hub that cannot be reached."""
    return {
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_CACHE": str(tmp_path / "hf_home" / "hub"),
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
    }


def test_a_name_that_cannot_be_a_hub_name_fails_at_once():
    with pytest.raises(UserError, match="no such file or directory, and not a Hugging Face Hub"):
        load_tokenizer("my tokenizer")


def test_offline_an_uncached_hub_name_fails_at_once():
    """conftest sets HF_HUB_OFFLINE=1: nothing but the cache is asked."""
    start = time.monotonic()
    with pytest.raises(
        UserError, match="not in the local HF cache .HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set"
    ):
        load_tokenizer("tok_nonexist")
    assert time.monotonic() - start < 20  # importing transformers is most of it


def test_an_unreachable_hub_fails_at_once_and_says_what_it_tried(tmp_path):
    start = time.monotonic()
    result = run_cli("tokenizer", "info", "tok_nonexist", env=online_env(tmp_path))
    elapsed = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("tokenizer tok_nonexist: not a local file or directory")
    assert "looking it up on the Hugging Face Hub" in lines[0]
    assert lines[-1].startswith("error: tokenizer tok_nonexist: no such file or directory here")
    assert "cannot be reached" in lines[-1] and "Retrying" not in result.stderr
    assert elapsed < 40  # huggingface_hub's own retries take ~46 s


@pytest.fixture(scope="module")
def cached_hub(tmp_path_factory, shakespeare: Path) -> Path:
    """An HF cache holding "synthlm-test/tiny" as huggingface_hub lays it out: refs/main, the
    snapshot's files, and config.json recorded as absent from the repo."""
    root = tmp_path_factory.mktemp("hf_cache")
    corpus = root / "corpus.txt"
    corpus.write_text(shakespeare.read_text(encoding="utf-8")[:50_000], encoding="utf-8")
    tok = root / "tok"
    train_tokenizer([corpus], "bpe", 400, tok, quiet=True)
    repo = root / "hub" / "models--synthlm-test--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(tok, repo / "snapshots" / COMMIT)
    (repo / ".no_exist" / COMMIT).mkdir(parents=True)
    (repo / ".no_exist" / COMMIT / "config.json").touch()
    return root


@pytest.mark.parametrize("offline", ["1", "0"])
def test_a_cached_hub_name_loads_without_the_network(tmp_path, cached_hub, offline):
    """Offline, and online with an unreachable Hub: the cache answers, no request is made."""
    env = {**online_env(tmp_path), "HF_HUB_CACHE": str(cached_hub / "hub")}
    env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = offline
    result = run_cli("tokenizer", "info", "synthlm-test/tiny", "--encode", "To be", env=env)
    assert result.returncode == 0, result.stderr
    assert "Hugging Face Hub" not in result.stderr
    expected = load_tokenizer(cached_hub / "tok").encode("To be")
    assert json.loads(result.stdout)["encoded"]["ids"] == expected
