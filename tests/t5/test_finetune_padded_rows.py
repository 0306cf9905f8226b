"""Generation for text pairs never emits ids the tokenizer lacks, even when the model's padded
embedding rows (the vocabulary is rounded up to a multiple of 64) would win greedy decoding.

Once, ``predict_only`` and ``eval_only`` crashed in sentencepiece (``piece id is out of range``)
on such ids; now they are suppressed in generation, as a saved checkpoint's generation_config
suppresses them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from t5_run_helpers import TINY_T5, corpus, subprocess_env, write_config

from cli_runner import run_cli
from synthlm.tokenizers import load_tokenizer, train_tokenizer

pytestmark = pytest.mark.slow

BIG = 1.0e4


def sentencepiece_tokenizer(root: Path) -> Path:
    """A 700-id sentencepiece tokenizer: the T5 has 704 rows, 4 of them padding."""
    text = root / "corpus.txt"
    text.write_text(corpus(150_000), encoding="utf-8")
    train_tokenizer([text], "sentencepiece", 700, root / "tok", quiet=True)
    return root / "tok"


def ft_config(run_dir: Path, glue: dict[str, Path], model: dict, **extra) -> dict:
    return {
        "run_dir": str(run_dir),
        "seed": 0,
        "mode": "ft",
        "model": model,
        "finetune": {
            "task": "sst2",
            **{k: str(v) for k, v in glue.items()},
            "max_input_length": 32,
            "max_target_length": 8,
            **extra.pop("finetune", {}),
        },
        "optim": {"name": "adamwscale", "lr": 2e-2, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "train": {"max_steps": 2, "batch_size": 8, "log_every": 1, "eval_every": 0},
        "logging": {"tensorboard": False, "progress": False},
        **extra,
    }


def make_padding_win(checkpoint: Path, natural: int) -> None:
    """Rewrite the head so a padded row has the highest logit at every step.

    The decoder's final norm keeps only hidden dim 0, and the first two padded rows are
    +-BIG on that dim: whatever the sign of the hidden value, one of them beats every real row.
    """
    from safetensors.torch import load_file, save_file

    path = checkpoint / "model.safetensors"
    weights = load_file(path)
    norm = torch.zeros_like(weights["decoder.final_layer_norm.weight"])
    norm[0] = 1.0
    head = weights["lm_head.weight"].clone()
    assert head.shape[0] > natural + 1, "the model needs padded rows for this test"
    head[natural:] = 0.0
    head[natural, 0], head[natural + 1, 0] = BIG, -BIG
    weights.update({"decoder.final_layer_norm.weight": norm, "lm_head.weight": head})
    save_file(weights, path, metadata={"format": "pt"})


def unsuppressed_first_id(checkpoint: Path, text: str) -> int:
    """The first id plain greedy decoding picks, nothing suppressed (proves the setup)."""
    from transformers import AutoModelForSeq2SeqLM

    tok = load_tokenizer(checkpoint)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    ids = torch.tensor([[*tok.encode(text), tok.eos_id]])
    out = model.generate(input_ids=ids, max_new_tokens=1, do_sample=False, suppress_tokens=None)
    return int(out[0, -1])


@pytest.fixture(scope="module")
def padded_winner(tmp_path_factory, glue) -> tuple[Path, int]:
    """A synthlm-trained T5 (sentencepiece tokenizer) whose padded rows win greedy decoding."""
    root = tmp_path_factory.mktemp("padded")
    tok = sentencepiece_tokenizer(root)
    config = ft_config(root / "run", glue, TINY_T5, finetune={"tokenizer": str(tok)})
    done = run_cli("train", str(write_config(root / "ft.yaml", config)), env=subprocess_env())
    assert done.returncode == 0, done.stderr
    final = root / "run" / "final"
    natural = load_tokenizer(final).vocab_size
    make_padding_win(final, natural)
    return final, natural


def test_predict_only_never_generates_ids_past_the_tokenizer(tmp_path, glue, padded_winner):
    final, natural = padded_winner
    assert unsuppressed_first_id(final, "sst2 sentence: hello") >= natural
    model = {"arch": "t5", "init_from": str(final)}
    config = write_config(
        tmp_path / "predict.yaml",
        ft_config(tmp_path / "run", glue, model, predict_only=True),
    )
    done = run_cli("train", str(config), env=subprocess_env())
    assert done.returncode == 0, done.stderr
    assert "tie_word_embeddings" not in done.stderr, "init_from of a synthlm T5 loads quietly"
    lines = (tmp_path / "run" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 20 and all(isinstance(r["prediction"], str) for r in records)


def test_eval_only_scores_a_model_whose_padded_rows_would_win(tmp_path, glue, padded_winner):
    final, _ = padded_winner
    model = {"arch": "t5", "init_from": str(final)}
    config = write_config(
        tmp_path / "eval.yaml", ft_config(tmp_path / "run", glue, model, eval_only=True)
    )
    done = run_cli("train", str(config), env=subprocess_env())
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout[done.stdout.index("{") : done.stdout.rindex("}") + 1])
    assert 0.0 <= printed["eval/valid/accuracy"] <= 1.0
