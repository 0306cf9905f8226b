"""Loading a synthlm-saved T5 v1.1 (``init_from``) keeps its own output layer and prints no
"tie shared.weight to lm_head.weight ... update the config with `tie_word_embeddings=False`"
warning: the saved config already says false (transformers 5's T5Config resets it to true)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from t5_run_helpers import TINY_T5

from synthlm.models import ModelConfig, build_model

VOCAB = 320
WARNING = "tie_word_embeddings=False"


class Captured(logging.Handler):
    """Every record transformers logs (its own handler writes them to stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def transformers_log():
    handler, logger = Captured(), logging.getLogger("transformers")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture
def saved(tmp_path) -> Path:
    """A fresh T5 v1.1 saved as synthlm saves it (untied head, tie_word_embeddings: false)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY_T5), vocab_size=VOCAB)
    model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text(encoding="utf-8"))
    assert config["tie_word_embeddings"] is False
    return tmp_path / "ckpt"


def test_init_from_a_saved_t5_is_quiet_and_keeps_its_head(saved, transformers_log):
    from safetensors.torch import load_file

    weights = load_file(saved / "model.safetensors")
    model = build_model(ModelConfig(arch="t5", init_from=str(saved)), vocab_size=VOCAB)
    assert not [m for m in transformers_log if WARNING in m], transformers_log
    assert model.lm_head.weight is not model.shared.weight
    assert torch.equal(model.lm_head.weight, weights["lm_head.weight"])
    assert torch.equal(model.shared.weight, weights["shared.weight"])
    assert model.encoder.embed_tokens.weight is model.shared.weight, "inputs stay tied"


def test_a_checkpoint_saved_tied_still_warns(saved, transformers_log):
    """Only untied (v1.1) configs are muted: a config asking for tying whose two tensors differ
    is a real inconsistency and transformers still says so."""
    path = saved / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    tied = {**config, "tie_word_embeddings": True, "scale_decoder_outputs": True}  # T5 v1.0
    path.write_text(json.dumps(tied), encoding="utf-8")
    build_model(ModelConfig(arch="t5", init_from=str(saved)), vocab_size=VOCAB)
    assert [m for m in transformers_log if WARNING in m], transformers_log
