"""model.compile with compile_scope blocks: every repeated layer compiled in place (state-dict
keys unchanged), the same loss as eager; a model without repeated layers is refused."""

from __future__ import annotations

import pytest
import torch

from synthlm.errors import ConfigError
from synthlm.models import ModelConfig, build_model, compile_model, repeated_blocks


@pytest.mark.parametrize(
    ("arch", "preset", "count"), [("llama", "tiny", 2), ("gpt_neox", "14m", 6), ("t5", "tiny", 4)]
)
def test_repeated_blocks_are_the_decoder_and_encoder_layers(arch, preset, count):
    model = build_model(ModelConfig(arch=arch, preset=preset), vocab_size=64)
    blocks = repeated_blocks(model)
    assert len(blocks) == count
    assert len({type(b).__name__ for b in blocks}) == 1 and type(blocks[0]).__name__.endswith(
        ("Layer", "Block")
    )


def test_blocks_compile_in_place_and_give_the_eager_loss():
    cfg = ModelConfig(
        arch="llama", preset="tiny", compile=True, compile_scope="blocks", compile_backend="eager"
    )
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=64)
    keys = list(model.state_dict())
    ids = torch.randint(0, 64, (2, 12))
    eager = model(input_ids=ids, labels=ids).loss
    assert compile_model(model, cfg) == 2
    assert list(model.state_dict()) == keys  # no _orig_mod prefixes: checkpoints stay plain
    torch.testing.assert_close(model(input_ids=ids, labels=ids).loss, eager)


def test_compile_off_compiles_nothing_and_no_repeated_layers_is_an_error():
    assert compile_model(torch.nn.Linear(2, 2), ModelConfig()) == 0
    with pytest.raises(ConfigError, match="compile_scope=blocks: found no repeated layers"):
        compile_model(torch.nn.Linear(2, 2), ModelConfig(compile=True, compile_scope="blocks"))
