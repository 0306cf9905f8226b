"""``objective: sft`` with ``train_on: assistant`` takes its targets from the stores' loss masks:
a run none of whose sources has one (a store tokenized without ``--chat``) stops before step 0
with exit 2, naming the source, its path and the two fixes. It once trained on every token
without a word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.data.store import write_store
from synthlm.tokenizers import train_tokenizer

INSTRUCT = Path(__file__).resolve().parents[2] / "examples" / "configs" / "instruct.yaml"
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Path:
    """A byte tokenizer, a plain store and a chat store (the same documents, with a mask)."""
    root = tmp_path_factory.mktemp("sft-mask")
    train_tokenizer([], "byte", None, root / "tok", quiet=True)
    docs = [np.arange(5, 40) for _ in range(20)]
    masks = [np.r_[np.zeros(10, np.uint8), np.ones(25, np.uint8)] for _ in docs]
    write_store(root / "plain", docs, vocab_size=260)
    write_store(root / "chat", docs, vocab_size=260, masks=masks)
    return root


def train(root: Path, *overrides: str):
    """The shipped instruct.yaml, from scratch on a tiny llama, run from ``root``."""
    return run_cli(
        "train",
        str(INSTRUCT),
        f"data.tokenizer={root / 'tok'}",
        "model.init_from=null",
        *overrides,
        cwd=root,
        env=ENV,
    )


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_store_without_a_loss_mask_is_refused_before_step_0(stores, dry_run):
    plain = stores / "plain"
    # without the check, the real run (one step) would train on every token and exit 0
    mode = ["--dry-run"] if dry_run else ["train.max_steps=1"]
    done = train(stores, f"data.sources.0.path={plain}", *mode)
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    for part in (
        "objective.train_on=assistant",
        f"data.sources 'instruct' ({plain}) has no loss mask",
        "synthlm tokenize FILE --chat",
        "objective.train_on=all",
    ):
        assert part in error, error
    assert "Traceback" not in done.stderr
    assert not (stores / "runs").exists(), "refused before any work"


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.sources.0.path=chat"],  # a chat store: its mask marks the answers
        ["data.sources.0.path=plain", "objective.train_on=all"],  # every token, as asked
        [  # replay: a plain store beside a chat store trains on all its tokens, by design
            "data.sources=[{name: instruct, path: chat}, {name: replay, path: plain, weight: 0.1}]"
        ],
    ],
    ids=["chat-store", "train-on-all", "replay"],
)
def test_masked_stores_train_on_all_and_replay_still_plan(stores, overrides):
    done = train(stores, *overrides, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert '"objective": "sft"' in done.stdout
