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
    assert (
        small.d_model,
        small.d_ff,
        small.num_heads,
        small.num_layers,
        small.num_decoder_layers,
    ) == (512, 1024, 6, 8, 8)
    assert (base.d_model, base.d_ff, base.num_heads, base.num_layers) == (768, 2048, 12, 12)
    assert (large.d_model, large.d_ff, large.num_heads, large.num_layers) == (1024, 2816, 16, 24)
    for hf in shapes.values():
        assert hf.feed_forward_proj == "gated-gelu" and hf.is_gated_act and hf.dropout_rate == 0.0
        assert (
            not hf.scale_decoder_outputs
        )  # v1.1: no d_model**-0.5 rescaling before the output layer
    assert is_seq2seq(config()) and not is_seq2seq(validate(ModelConfig, {"arch": "llama"}))


def v1_1_parameters(vocab: int, d: int, d_ff: int, heads: int, d_kv: int, layers: int) -> int:
    """T5 v1.1's parameter count from its definition (Raffel et al.; the v1.1 checkpoints):
    an input embedding and a separate output layer (vocab x d each); per encoder block a
    self-attention (q, k, v, o), a gated-GELU feed-forward (wi_0, wi_1, wo) and two RMS norms;
    per decoder block also a cross-attention and a third norm; a final norm per stack; the
    relative-position bias (32 buckets x heads) in each stack's first self-attention."""
    attention, ff, bias = 4 * d * heads * d_kv, 3 * d * d_ff, 32 * heads
    encoder = layers * (attention + ff + 2 * d) + bias + d
    decoder = layers * (2 * attention + ff + 3 * d) + bias + d
    return 2 * vocab * d + encoder + decoder


@pytest.mark.parametrize(
    ("preset", "shape", "published"),
    [
        ("small", (512, 1024, 6, 64, 8), 76_961_152),  # google/t5-v1_1-small
        ("base", (768, 2048, 12, 64, 12), 247_577_856),  # google/t5-v1_1-base, nanoT5's model
        ("large", (1024, 2816, 16, 64, 24), 783_150_080),  # google/t5-v1_1-large
    ],
)
def test_presets_have_the_t5_v1_1_parameter_counts_with_an_untied_output_layer(
    preset, shape, published
):
    """Built on the meta device (no memory, no init): counts only. transformers 5 alone would
    tie the output layer to the embedding and report 32128 x d_model fewer."""
    import torch

    assert v1_1_parameters(32128, *shape) == published
    with torch.device("meta"):
        model = build_model(config(preset=preset), vocab_size=32128)
    assert count_parameters(model) == published
    assert model.lm_head.weight is not model.get_input_embeddings().weight
    assert (
        model.encoder.embed_tokens.weight
        is model.decoder.embed_tokens.weight
        is model.shared.weight
    )


def test_untied_tiny_t5_saves_a_v1_1_checkpoint_that_stock_transformers_loads_untied(tmp_path):
    """The saved config says tie_word_embeddings: false (transformers 4 then neither ties nor
    applies v1.0's output rescale), the file holds lm_head.weight, and AutoModelForSeq2SeqLM
    loads the same function with the head still its own matrix."""
    import json

    import torch
    from safetensors import safe_open
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(0)
    model = build_model(config(), vocab_size=96).eval()
    head, embedding = model.lm_head.weight, model.shared.weight
    assert head is not embedding and not torch.equal(head, embedding)
    assert 0.8 < head.std().item() < 1.2  # N(0, initializer_factor): T5's and nanoT5's head init
    assert count_parameters(model) == v1_1_parameters(96, 64, 128, 4, 16, 2)
    model.save_pretrained(tmp_path / "t5")
    saved = json.loads((tmp_path / "t5" / "config.json").read_text())
    assert saved["tie_word_embeddings"] is False
    with safe_open(tmp_path / "t5" / "model.safetensors", "pt") as weights:
        assert {"lm_head.weight", "shared.weight"} <= set(weights.keys())
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "t5").eval()
    assert loaded.lm_head.weight is not loaded.shared.weight
    assert not loaded.config.scale_decoder_outputs
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        want = model(input_ids=ids, decoder_input_ids=ids).logits
        assert torch.allclose(loaded(input_ids=ids, decoder_input_ids=ids).logits, want)
    again = build_model(config(init_from=tmp_path / "t5"), vocab_size=128)  # continued pretraining
    assert again.lm_head.weight is not again.shared.weight and again.lm_head.weight.shape == (
        128,
        64,
    )
    assert again.config.tie_word_embeddings is False
    assert torch.equal(again.lm_head.weight[:96], model.lm_head.weight)


def test_tiny_t5_is_a_seq2seq_model_with_the_tokenizer_ids():
    ids = {"bos": 1, "eos": 2, "pad": 3, "decoder_start": 3}
    model = build_model(config(), vocab_size=384, special_ids=ids)
    assert isinstance(model, T5ForConditionalGeneration)
    assert (
        model.config.pad_token_id,
        model.config.eos_token_id,
        model.config.decoder_start_token_id,
    ) == (3, 2, 3)
    assert model.get_input_embeddings().weight.shape == (384, 64)


def test_init_from_a_local_t5_grows_the_embedding_and_takes_the_tokenizer_ids(tmp_path):
    T5ForConditionalGeneration(
        T5Config(vocab_size=64, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1)
    ).save_pretrained(tmp_path / "t5")
    ids = {"eos": 5, "pad": 6, "decoder_start": 6}
    model = build_model(config(init_from=tmp_path / "t5"), vocab_size=128, special_ids=ids)
    assert (
        model.get_input_embeddings().num_embeddings == 128
        and model.get_output_embeddings().weight.shape[0] == 128
    )
    assert (
        model.config.decoder_start_token_id,
        model.generation_config.decoder_start_token_id,
        model.config.eos_token_id,
    ) == (6, 6, 5)
    with pytest.raises(
        ConfigError,
        match=r"model\.arch=llama: model\.init_from .* is an encoder-decoder t5 model; set "
        r"model\.arch to one of: t5",
    ):
        resolved_config(
            validate(ModelConfig, {"arch": "llama", "init_from": tmp_path / "t5"}), vocab_size=128
        )
