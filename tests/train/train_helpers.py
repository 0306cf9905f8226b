"""Tiny runs for the training tests: a byte tokenizer, two random-id stores, a 2-layer Llama.

Also used by the subprocess drivers (DDP worker, kill/resume), so it imports nothing from pytest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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

TRAIN_DIR = Path(__file__).resolve().parent
# numbers that must be reproducible; not part of the comparison


def make_data(root: Path, *, seed: int = 0) -> dict[str, Path]:
    """A byte tokenizer and two natural stores: random bytes, and a predictable cycle with loss masks."""
    root.mkdir(parents=True, exist_ok=True)
    tok_dir = root / "tok"
    if not (tok_dir / "tokenizer.json").is_file():
        train_tokenizer([], "byte", None, tok_dir, quiet=True)
    vocab = load_tokenizer(tok_dir).vocab_size
    rng = np.random.default_rng(seed)
    web = [rng.integers(4, vocab, size=int(rng.integers(5, 60))) for _ in range(150)]
    cyclic = [(np.arange(int(rng.integers(5, 40))) % 17 + 40) for _ in range(150)]
    # loss masks make target counts differ between sequences, so normalising by the wrong
    # count (per micro-batch or per rank instead of per global batch) changes the gradient
    masks = [(rng.random(len(doc)) < 0.6).astype(np.uint8) for doc in cyclic]
    write_store(root / "web", web, vocab_size=vocab)
    write_store(root / "cyclic", cyclic, vocab_size=vocab, masks=masks)
    return {"tok": tok_dir, "web": root / "web", "cyclic": root / "cyclic"}


def tiny_config(root: Path, paths: dict[str, Path], **sections: Any) -> dict[str, Any]:
    """A run config dict: tiny Llama, seq 32, micro-batch 4; ``sections`` deep-merge over it."""
    config: dict[str, Any] = {
        "run_dir": str(root / "run"),
        "seed": 3,
        "model": {
            "arch": "llama",
            "preset": "tiny",
            "overrides": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2},
        },
        "data": {
            "sources": [
                {"name": "web", "path": str(paths["web"]), "weight": 0.6},
                {"name": "cyclic", "path": str(paths["cyclic"]), "weight": 0.4},
            ],
            "seq_len": 32,
            "tokenizer": str(paths["tok"]),
        },
        "optim": {"lr": 3e-3},
        "schedule": {"name": "cosine", "warmup_steps": 2},
        "train": {
            "max_steps": 12,
            "batch_size": 4,
            "log_every": 1,
            "checkpoint_every": 4,
            "keep_last": 2,
        },
        "logging": {"tensorboard": False, "progress": False},
    }
    return merge(config, sections)


def final_weights(run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(Path(run_dir) / "final" / "model.safetensors"))


def deepspeed_accelerator(ds_config: dict[str, Any]) -> Any:
    """The part of an accelerator ``configure_deepspeed`` reads: a DeepSpeed plugin's config."""
    import types

    plugin = types.SimpleNamespace(deepspeed_config=ds_config)
    return types.SimpleNamespace(state=types.SimpleNamespace(deepspeed_plugin=plugin))
