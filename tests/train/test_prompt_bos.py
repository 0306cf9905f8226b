"""A checkpoint's tokenizer prompts the model the way its training documents started.

Stores tokenized with ``--prepend-bos`` start every document with BOS, so the model learned text
after BOS; a prompt without it is a context the model never saw (and the other way round for a
tokenizer that adds BOS, like Llama 2's, over stores without one). Every tool that prompts a
saved model encodes with ``add_special_tokens=True``, so the saved tokenizer.json decides.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from train_helpers import subprocess_env, synthlm, tiny_config

from synthlm.data.store import write_store
from synthlm.train import load_run_config
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run

BOS = 1  # the byte tokenizer's <s>

# transformers alone (no synthlm import), as a user of the saved model would encode a prompt
HF_ENCODE = """
import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
print(json.dumps([tok("hi")["input_ids"], tok("hi", add_special_tokens=False)["input_ids"]]))
"""


def bos_stores(root, vocab: int, *, prepend_bos: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    sources = []
    for name in ("a", "b"):
        docs = [rng.integers(4, vocab, size=int(rng.integers(5, 40))) for _ in range(60)]
        if prepend_bos:
            docs = [np.concatenate([[BOS], doc]) for doc in docs]
        prefix = root / f"{name}_{prepend_bos}"
        write_store(prefix, docs, vocab_size=vocab, prepend_bos=prepend_bos)
        sources.append({"name": name, "path": str(prefix), "weight": 0.5})
    return sources


def train(root, data, sources, tokenizer) -> Trainer:
    config = tiny_config(root, data, train={"max_steps": 2, "checkpoint_every": 0})
    config["data"]["sources"] = sources
    config["data"]["tokenizer"] = str(tokenizer)
    trainer = Trainer(plan_run(load_run_config([config]), 1), progress=False)
    trainer.start(None)
    trainer.fit()
    return trainer


def hf_encode(model_dir) -> tuple[list[int], list[int]]:
    done = subprocess.run(
        [sys.executable, "-c", HF_ENCODE, str(model_dir)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    special, plain = json.loads(done.stdout.strip().splitlines()[-1])
    return special, plain


def llama2_style(tokenizer_dir, out):
    """The byte tokenizer as a plain HF dir whose post-processor adds ``<s>`` (Llama 2's rule)."""
    out.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tokenizer_dir / name, out / name)
    data = json.loads((out / "tokenizer.json").read_text())
    data["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<s>", "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]}},
    }
    (out / "tokenizer.json").write_text(json.dumps(data))
    return out


@pytest.mark.slow
def test_stores_with_bos_give_a_tokenizer_and_generate_that_prompt_with_bos(tmp_path, data):
    vocab = 260
    trainer = train(tmp_path, data, bos_stores(tmp_path, vocab, prepend_bos=True), data["tok"])
    final = trainer.run_dir / "final"
    special, plain = hf_encode(final)
    assert special == [BOS, *plain], "AutoTokenizer on the checkpoint adds the BOS it trained on"
    assert json.loads((final / "synthlm.json").read_text())["prompt_bos"] is True

    out = tmp_path / "gen.jsonl"
    done = synthlm(
        "generate", str(final), "-p", "hi", "-n", "2", "--temperature", "0", "-q", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text().splitlines()[0])
    assert record["prompt_tokens"] == 1 + len(plain)


@pytest.mark.slow
def test_a_bos_adding_tokenizer_over_stores_without_bos_saves_one_that_adds_none(tmp_path, data):
    tokenizer = llama2_style(data["tok"], tmp_path / "llama2_style")
    special, plain = hf_encode(tokenizer)
    assert special == [BOS, *plain], "the starting tokenizer adds <s>"
    trainer = train(tmp_path, data, bos_stores(tmp_path, 260, prepend_bos=False), tokenizer)
    final = trainer.run_dir / "final"
    assert hf_encode(final) == (plain, plain)
    assert json.loads((final / "synthlm.json").read_text())["prompt_bos"] is False


def test_stores_that_disagree_keep_the_tokenizers_rule_and_say_so(tmp_path, data):
    with_bos = bos_stores(tmp_path, 260, prepend_bos=True)[:1]
    without = bos_stores(tmp_path, 260, prepend_bos=False)[1:]
    config = tiny_config(tmp_path, data)
    config["data"]["sources"] = with_bos + without
    plan = plan_run(load_run_config([config]), 1)
    assert plan.prompt_bos is None
    (warning,) = [w for w in plan.warnings() if "BOS" in w]
    assert "'a'" in warning and "'b'" in warning


def test_a_tokenizer_that_already_prompts_as_trained_is_saved_unchanged(data):
    """Its files, and so the digest that stores record, stay those it tokenized them with."""
    from synthlm.tokenizers import load_tokenizer
    from synthlm.tokenizers.prompt_bos import with_prompt_bos

    backend = load_tokenizer(data["tok"]).hf_backend()
    assert with_prompt_bos(backend, "<s>", False).to_str() == backend.to_str()
    with_bos = with_prompt_bos(backend, "<s>", True)
    assert with_bos.to_str() != backend.to_str()
    assert with_prompt_bos(with_bos, "<s>", True).to_str() == with_bos.to_str()
