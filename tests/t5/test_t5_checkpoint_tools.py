"""The checkpoint tools on a T5 run's RUN/final: `synthlm generate` feeds the prompt to the encoder
and returns what the decoder writes; `synthlm eval --data` and `synthlm chat`, which need a
decoder-only model, refuse it with a clear message (exit 2) instead of crashing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from t5_run_helpers import pt_config, subprocess_env, synthlm, write_config

from cli_runner import run_cli

PROMPTS = ["First Citizen: <extra_id_0> proceed any further", "Speak, <extra_id_0>."]


@pytest.fixture(scope="module")
def t5_final(tmp_path_factory, t5_data) -> Path:
    """RUN/final of a 4-step span-corruption run (a real `synthlm train` export, ~5 s)."""
    root = tmp_path_factory.mktemp("t5-ckpt")
    config = pt_config(
        root,
        t5_data,
        {"name": "span_corruption"},
        train={"max_steps": 4, "log_every": 2, "checkpoint_every": 4},
    )
    config["data"]["eval"] = []
    done = synthlm("train", str(write_config(root / "run.yaml", config)), "--quiet")
    assert done.returncode == 0, done.stderr
    return root / "run" / "final"


def direct_greedy(final: Path, prompt: str, max_new_tokens: int) -> str:
    """What the decoder writes for ``prompt`` alone, straight from transformers."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    layout = json.loads((final / "synthlm.json").read_text())["layout"]
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            suppress_tokens=list(range(layout["natural_size"], layout["model_vocab_size"])),
        )
    row = out[0, 1:].tolist()
    assert out[0, 0].item() == model.config.decoder_start_token_id
    ends = [i for i, t in enumerate(row) if t in (tokenizer.eos_token_id, tokenizer.pad_token_id)]
    return tokenizer.decode(row[: ends[0]] if ends else row, skip_special_tokens=False)


def generate(final: Path, out: Path, *args: str):
    prompts = [a for p in PROMPTS for a in ("-p", p)]
    done = run_cli(
        "generate",
        str(final),
        *prompts,
        "-n",
        "5",
        "--temperature",
        "0",
        "-q",
        "-o",
        str(out),
        *args,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_load_checkpoint_opens_a_t5_run_as_seq2seq(t5_final):
    from synthlm.evaluate.checkpoint import is_encoder_decoder, load_checkpoint

    ckpt = load_checkpoint(t5_final, device="cpu", quiet=True)
    assert ckpt.seq2seq and type(ckpt.model).__name__ == "T5ForConditionalGeneration"
    assert is_encoder_decoder(t5_final)
    assert ckpt.layout.natural_size == len(ckpt.tokenizer)  # the sentinels are text, not meta range


def test_detection_falls_back_to_the_architectures_field(tmp_path):
    from synthlm.evaluate.checkpoint import is_encoder_decoder

    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text(
        json.dumps({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]})
    )
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    assert is_encoder_decoder(tmp_path / "t5")
    assert not is_encoder_decoder(tmp_path / "llama")


def test_generate_returns_the_decoder_output_for_each_prompt(t5_final, tmp_path):
    records = generate(t5_final, tmp_path / "batched.jsonl", "-b", "2")
    assert [r["prompt"] for r in records] == PROMPTS
    assert any(r["text"] for r in records)  # the comparison below is not between empty strings
    for record in records:
        assert 1 <= record["completion_tokens"] <= 5
        assert record["text"] == direct_greedy(
            t5_final, record["prompt"], 5
        )  # no prompt inside, no start token
    alone = generate(t5_final, tmp_path / "alone.jsonl", "-b", "1")
    assert [r["text"] for r in alone] == [
        r["text"] for r in records
    ]  # padding the shorter prompt changes nothing


def test_generate_prints_a_completion_to_stdout(t5_final):
    done = run_cli(
        "generate", str(t5_final), "-p", PROMPTS[0], "-n", "5", "-q", env=subprocess_env()
    )
    assert done.returncode == 0, done.stderr
    assert "-" * 40 in done.stdout and done.stdout.strip() != "-" * 40
    assert not done.stdout.startswith(PROMPTS[0]), (
        "a seq2seq answer is printed alone, not glued to its prompt"
    )


def test_qa_eval_refuses_a_seq2seq_checkpoint(t5_final, tmp_path):
    qa = tmp_path / "qa.json"
    qa.write_text(
        '[{"article_id": "1", "title": "t", "article": "a", "questions": '
        '[{"question": "q?", "options": ["a", "b", "c", "d"], "gold_label": 1}]}]'
    )
    done = run_cli("eval", str(t5_final), "--qa", str(qa), "-q", env=subprocess_env())
    assert done.returncode == 2, done.stderr
    assert "synthlm eval --qa" in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def test_eval_on_a_natural_store_refuses_a_seq2seq_checkpoint(t5_final, t5_data, tmp_path):
    out = tmp_path / "eval.json"
    done = run_cli(
        "eval",
        str(t5_final),
        "--data",
        str(t5_data["valid"]),
        "-o",
        str(out),
        "-q",
        env=subprocess_env(),
    )
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert (
        "encoder-decoder" in message
        and "eval_only=true" in message
        and "Traceback" not in done.stderr
    )
    assert not out.exists()


def test_chat_refuses_a_seq2seq_checkpoint(t5_final):
    done = run_cli("chat", str(t5_final), env=subprocess_env(), timeout=120)
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert (
        "encoder-decoder" in message
        and "synthlm chat" in message
        and "Traceback" not in done.stderr
    )


def test_refusal_reads_only_the_config(t5_final, tmp_path):
    """The check happens before any weights are read: a config.json alone is enough to refuse."""
    from synthlm.errors import UserError
    from synthlm.evaluate.offline import evaluate_checkpoint

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(t5_final / "config.json", bare / "config.json")
    with pytest.raises(UserError, match="eval_only=true"):
        evaluate_checkpoint(bare, [tmp_path / "missing-store"])
