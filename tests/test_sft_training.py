"""``objective: sft`` end to end: ``synthlm tokenize --chat`` -> ``synthlm train`` on one padded
conversation per sample (``data.packing: false``) -> ``synthlm chat`` on the result.

The invariants: the loss goes down; the only targets are the assistant's answers (never the
system or user text, the role headers, the separator EOS or the padding); and the checkpoint is
prompted with the template it was trained on even though checkpoints do not store templates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthlm.objectives import IGNORE_INDEX
from synthlm.tokenizers import load_tokenizer, train_tokenizer

TEMPLATE = (
    "{% for m in messages %}{{ '### ' + m['role'] + ':\\n' + m['content'] + eos_token + "
    "'\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}"
)
COLORS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "blood": "red"}
SEQ_LEN = 128  # the longest conversation (107 tokens with its EOS) fits: none is truncated


def conversation(i: int) -> list[dict[str, str]]:
    things = list(COLORS)
    first, second = things[i % 5], things[(i // 5) % 5]
    messages = [
        {"role": "system", "content": "Name colors."},
        {"role": "user", "content": f"{first}?"},
        {"role": "assistant", "content": COLORS[first]},
    ]
    if i % 2:
        messages += [
            {"role": "user", "content": f"{second}?"},
            {"role": "assistant", "content": COLORS[second]},
        ]
    return messages


def synthlm(
    *args: str, stdin: str | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    """Tokenize 50 conversations with a custom template, then train 40 SFT steps (subprocesses)."""
    root = tmp_path_factory.mktemp("sft")
    tok = root / "tok"
    train_tokenizer([], "byte", None, tok, quiet=True)
    (tok / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")
    chats = root / "chat.jsonl"
    chats.write_text(
        "".join(json.dumps({"messages": conversation(i)}) + "\n" for i in range(50)),
        encoding="utf-8",
    )
    done = synthlm(
        "tokenize", str(chats), "--chat", "-t", str(tok), "-o", str(root / "data" / "colors"), "-q"
    )
    assert done.returncode == 0, done.stderr
    config = root / "sft.yaml"
    config.write_text(json.dumps(sft_config(root, tok)), encoding="utf-8")  # JSON is YAML
    done = synthlm("train", str(config))
    assert done.returncode == 0, done.stderr
    return {"root": root, "tok": tok, "config": config, "run": root / "run"}


def sft_config(root: Path, tok: Path) -> dict:
    return {
        "run_dir": str(root / "run"),
        "seed": 1,
        "model": {
            "arch": "llama",
            "preset": "tiny",
            "overrides": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2},
        },
        "data": {
            "tokenizer": str(tok),
            "seq_len": SEQ_LEN,
            "packing": False,
            "sources": [
                {"name": "colors", "path": str(root / "data" / "colors_messages_document")}
            ],
        },
        "objective": {"name": "sft"},
        "optim": {"lr": 1e-2, "weight_decay": 0.0},
        "schedule": {"name": "cosine", "warmup_steps": 2},
        "train": {"max_steps": 40, "batch_size": 8, "log_every": 5, "checkpoint_every": 0},
        "logging": {"tensorboard": False, "progress": False},
    }


def test_loss_goes_down(run):
    records = [
        json.loads(line)
        for line in (run["run"] / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) >= 6
    assert losses[-1] < 0.5 * losses[0], losses  # answers are a fixed function of the question


def test_only_assistant_answers_are_targets_in_the_training_batches(run):
    """The exact batches ``synthlm train`` built (same config, same plan), decoded."""
    from synthlm.train import load_run_config, plan_run

    plan = plan_run(load_run_config([run["config"]]), 1)
    tok = load_tokenizer(run["tok"])
    samples = [plan.mixture.sample(i) for i in range(16)]
    labels = plan.objective.collate(samples)["labels"].numpy()
    seen = set()
    for sample, row in zip(samples, labels):
        real = sample.segment_ids >= 0
        assert (row[~real] == IGNORE_INDEX).all(), "padding is never a target"
        text = tok.decode(sample.input_ids[real].tolist())
        assert text.count("### system:") == 1 and text.endswith("</s>\n</s>"), (
            "one whole conversation per sample"
        )
        questions = [
            line.removesuffix("?</s>") for line in text.split("\n") if line.endswith("?</s>")
        ]
        expected = "".join(f"{COLORS[q]}</s>\n" for q in questions)
        assert tok.decode(sample.input_ids[row != IGNORE_INDEX].tolist()) == expected
        seen.add(len(questions))
    assert seen == {1, 2}, "both one- and two-turn conversations were checked"


def test_the_tuned_model_is_prompted_with_its_training_template(run, tmp_path):
    final = run["run"] / "final"
    assert (
        "### assistant:" in (final / "chat_template.jinja").read_text()
    )  # saved with the checkpoint
    done = synthlm(
        "chat",
        str(final),
        "--system",
        "Name colors.",
        "--temperature",
        "0",
        "--max-new-tokens",
        "8",
        "--show-prompt",
        stdin="sky?\n/exit\n",
    )
    assert done.returncode == 0, done.stderr
    assert "### system:\nName colors.</s>\n### user:\nsky?</s>\n### assistant:\n" in done.stderr
    assert len(done.stdout.splitlines()) == 1


def test_the_run_dir_can_move_without_breaking_chat(run, tmp_path):
    """A copied checkpoint whose training stores are gone still chats with its training template."""
    copy = tmp_path / "final"
    shutil.copytree(run["run"] / "final", copy)
    config = (copy / "config.yaml").read_text(encoding="utf-8")
    (copy / "config.yaml").write_text(
        config.replace(str(run["root"] / "data"), str(tmp_path / "gone")), encoding="utf-8"
    )
    done = synthlm(
        "chat",
        str(copy),
        "--temperature",
        "0",
        "--max-new-tokens",
        "4",
        "--show-prompt",
        stdin="sky?\n",
    )
    assert done.returncode == 0, done.stderr
    assert "### user:\nsky?</s>\n### assistant:\n" in done.stderr
    from transformers import AutoTokenizer

    assert (
        "### assistant:" in AutoTokenizer.from_pretrained(copy).chat_template
    )  # plain transformers too
