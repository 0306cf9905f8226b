"""Tiny T5 runs for the encoder-decoder tests: a byte tokenizer, Shakespeare speeches as a natural
store, GLUE-style pair files and run configs. Imports nothing from pytest (subprocess drivers
may use it)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from run_helpers import (  # noqa: F401 (re-exported)
    merge,
    read_records,
    reproducible,
    subprocess_env,
    synthlm,
    write_config,
)
from synthlm.data.store import write_store
from synthlm.tokenizers import load_tokenizer, train_tokenizer

SHAKESPEARE = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare.txt"
TINY_T5 = {
    "arch": "t5",
    "preset": "tiny",
    "overrides": {"d_model": 32, "d_ff": 64, "d_kv": 8, "num_heads": 4},
}


def corpus(chars: int = 120_000) -> str:
    path = SHAKESPEARE
    if not path.is_file():
        from synthlm.data.corpus import shipped_corpus

        path = shipped_corpus()
    return path.read_text(encoding="utf-8")[:chars]


def make_data(root: Path) -> dict[str, Path]:
    """A byte tokenizer and train / valid stores with one document per speech."""
    root.mkdir(parents=True, exist_ok=True)
    train_tokenizer([], "byte", None, root / "tok", quiet=True)
    tok = load_tokenizer(root / "tok")
    speeches = [s for s in corpus().split("\n\n") if s.strip()]
    ids = tok.encode_batch(speeches)
    write_store(root / "train", ids[:-100], vocab_size=tok.vocab_size)
    write_store(root / "valid", ids[-100:], vocab_size=tok.vocab_size)
    return {"tok": root / "tok", "train": root / "train", "valid": root / "valid"}


def pt_config(
    root: Path, paths: dict[str, Path], objective: dict[str, Any], **sections: Any
) -> dict[str, Any]:
    """Pretraining a d_model-32 T5 with AdamWScale + nanoT5's cosine, seq 64, micro-batch 8."""
    config: dict[str, Any] = {
        "run_dir": str(root / "run"),
        "seed": 1,
        "model": TINY_T5,
        "data": {
            "sources": [{"name": "shakespeare", "path": str(paths["train"])}],
            "eval": [{"name": "valid", "path": str(paths["valid"]), "max_tokens": 1500}],
            "seq_len": 64,
            "tokenizer": str(paths["tok"]),
        },
        "objective": objective,
        "optim": {"name": "adamwscale", "lr": 2e-2, "weight_decay": 0.0},
        "schedule": {"name": "cosine", "warmup_steps": 4, "warmup_start": 0.5},
        "train": {
            "max_steps": 24,
            "batch_size": 8,
            "log_every": 4,
            "checkpoint_every": 8,
            "keep_last": 2,
        },
        "logging": {"tensorboard": False, "progress": False},
    }
    return merge(config, sections)


def glue_files(root: Path) -> dict[str, Path]:
    """An SST-2-shaped task anyone can learn: a word is 'positive' when it starts with a vowel.

    Train and valid are HF-export jsonl (integer labels), test is an original-GLUE TSV without
    labels, so one run covers both file shapes of the task table.
    """
    words = sorted({w.strip(".,;:!?'\"-").lower() for w in corpus(200_000).split()})
    words = [w for w in words if w.isalpha() and 3 <= len(w) <= 7]
    random.Random(0).shuffle(words)

    def rows(chosen: list[str]) -> str:
        return "".join(
            json.dumps({"sentence": w, "label": int(w[0] in "aeiou"), "idx": i}) + "\n"
            for i, w in enumerate(chosen)
        )

    root.mkdir(parents=True, exist_ok=True)
    (root / "train.jsonl").write_text(rows(words[:600]), encoding="utf-8")
    (root / "valid.jsonl").write_text(rows(words[600:680]), encoding="utf-8")
    (root / "test.tsv").write_text(
        "index\tsentence\n" + "".join(f"{i}\t{w}\n" for i, w in enumerate(words[680:700])),
        encoding="utf-8",
    )
    return {"train": root / "train.jsonl", "valid": root / "valid.jsonl", "test": root / "test.tsv"}
