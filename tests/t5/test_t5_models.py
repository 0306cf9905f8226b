"""The t5 architecture: T5 v1.1 shapes with random init and no download, or init_from a local
HF T5 dir (its embedding grown for extra ids, the tokenizer's ids written into its config)."""

from __future__ import annotations

import pytest
from transformers import T5Config, T5ForConditionalGeneration

from synthlm.config import validate
from synthlm.errors import ConfigError
from synthlm.models import (
    T5,
    ModelConfig,
    build_model,
    count_parameters,
    is_seq2seq,
    model_config,
    resolved_config,
)


def config(**fields):
    return validate(ModelConfig, {"arch": "t5", **fields})


def test_presets_have_the_t5_v1_1_shapes():
    shapes = {name: model_config(config(preset=name), vocab_size=32128) for name in T5}
    small, base, large = shapes["small"], shapes["base"], shapes["large"]
    assert (small.d_model, small.d_ff, small.num_heads, small.num_layers, small.num_decoder_layers) == (512, 1024, 6, 8, 8)
    assert (base.d_model, base.d_ff, base.num_heads, base.num_layers) == (768, 2048, 12, 12)
    assert (large.d_model, large.d_ff, large.num_heads, large.num_layers) == (1024, 2816, 16, 24)
    for hf in shapes.values():
        assert hf.feed_forward_proj == "gated-gelu" and hf.is_gated_act and hf.dropout_rate == 0.0
        assert not hf.scale_decoder_outputs  # v1.1: no d_model**-0.5 rescaling before the output layer
    assert is_seq2seq(config()) and not is_seq2seq(validate(ModelConfig, {"arch": "llama"}))


def test_t5_small_has_the_v1_1_parameter_count_less_the_lm_head():
    """google/t5-v1_1-small has 76,961,152 parameters with its own 32128 x 512 output layer;
    transformers 5 ties that layer to the input embedding, so 16,449,536 fewer here."""
    model = build_model(config(preset="small"), vocab_size=32128)
    assert count_parameters(model) == 76_961_152 - 32128 * 512


def test_tiny_t5_is_a_seq2seq_model_with_the_tokenizer_ids():
    ids = {"bos": 1, "eos": 2, "pad": 3, "decoder_start": 3}
    model = build_model(config(), vocab_size=384, special_ids=ids)
    assert isinstance(model, T5ForConditionalGeneration)
    assert (model.config.pad_token_id, model.config.eos_token_id, model.config.decoder_start_token_id) == (3, 2, 3)
    assert model.get_input_embeddings().weight.shape == (384, 64)


def test_init_from_a_local_t5_grows_the_embedding_and_takes_the_tokenizer_ids(tmp_path):
    T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1)).save_pretrained(tmp_path / "t5")
    ids = {"eos": 5, "pad": 6, "decoder_start": 6}
    model = build_model(config(init_from=tmp_path / "t5"), vocab_size=128, special_ids=ids)
    assert model.get_input_embeddings().num_embeddings == 128 and model.get_output_embeddings().weight.shape[0] == 128
    assert (model.config.decoder_start_token_id, model.generation_config.decoder_start_token_id, model.config.eos_token_id) == (6, 6, 5)
    with pytest.raises(ConfigError, match=r"model\.arch=llama: model\.init_from .* is an encoder-decoder t5 model; set model\.arch to one of: t5"):
        resolved_config(validate(ModelConfig, {"arch": "llama", "init_from": tmp_path / "t5"}), vocab_size=128)
