"""Model presets: HF configs with random weights and no download, a registry for new archs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPTNeoXForCausalLM, LlamaForCausalLM

from synthlm.config import validate
from synthlm.errors import ConfigError, UserError
from synthlm.models import (
    ARCHS,
    LLAMA,
    PYTHIA,
    ModelConfig,
    build_model,
    count_parameters,
    model_config,
    planned_parameters,
    register_arch,
)


def config(**fields):
    return validate(ModelConfig, fields)


def test_pythia_14m_has_the_published_shape_and_parameter_count():
    model = build_model(config(arch="gpt_neox", preset="14m"), vocab_size=50304)
    assert isinstance(model, GPTNeoXForCausalLM)
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (
        128,
        6,
        4,
        512,
    )
    assert c.rope_parameters["partial_rotary_factor"] == 0.25 and c.use_parallel_residual
    assert count_parameters(model) == 14_067_712  # EleutherAI/pythia-14m
    assert model.config._attn_implementation == "sdpa"


# EleutherAI's Pythia table (total; non-embedding, which leaves out both the input embedding
# and the untied output layer), for a vocabulary padded to 50,304 rows
PYTHIA_PUBLISHED = {
    "14m": (14_067_712, 1_189_888),
    "31m": (30_494_720, 4_739_072),
    "70m": (70_426_624, 18_915_328),
    "160m": (162_322_944, 85_056_000),
    "410m": (405_334_016, 302_311_424),
    "1b": (1_011_781_632, 805_736_448),
}


@pytest.mark.parametrize("preset", list(PYTHIA_PUBLISHED))
def test_every_pythia_preset_has_the_published_parameter_counts(preset):
    cfg = config(arch="gpt_neox", preset=preset)
    built = model_config(cfg, vocab_size=50304)
    total, non_embedding = PYTHIA_PUBLISHED[preset]
    assert planned_parameters(cfg, built) == total
    embedding_rows = 2 * 50304 * built.hidden_size  # embed_in and the untied embed_out
    assert total - embedding_rows == non_embedding


@pytest.mark.parametrize(("arch", "presets"), [("gpt_neox", PYTHIA), ("llama", LLAMA)])
def test_every_preset_resolves_to_a_consistent_config(arch, presets):
    for preset, shape in presets.items():
        hf = model_config(config(arch=arch, preset=preset), vocab_size=32000)
        assert (
            hf.hidden_size == shape["hidden_size"]
            and hf.num_hidden_layers == shape["num_hidden_layers"]
        )
        assert hf.hidden_size % hf.num_attention_heads == 0 and hf.vocab_size == 32000


def test_overrides_change_dimensions_and_special_ids_reach_the_config():
    model = build_model(
        config(
            arch="llama",
            preset="tiny",
            overrides={"hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 3},
        ),
        vocab_size=128,
        special_ids={"bos": 1, "eos": 2, "pad": 3},
    )
    assert isinstance(model, LlamaForCausalLM)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (48, 1)
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        1,
        2,
        3,
    )
    assert model.get_input_embeddings().weight.shape == (128, 48)


def test_unknown_names_fail_with_the_allowed_values():
    with pytest.raises(
        ConfigError,
        match=r"preset: .*unknown value '14M' \(did you mean '14m'\?\); allowed: 14m, 31m",
    ):
        config(arch="gpt_neox", preset="14M")
    with pytest.raises(
        ConfigError, match=r"arch: .*unknown model architecture 'lama' \(did you mean 'llama'\?\)"
    ):
        config(arch="lama")
    with pytest.raises(
        ConfigError,
        match=r"model\.overrides\.hiden_size: not a field of the llama config \(did you "
        r"mean 'model\.overrides\.hidden_size'\?\)",
    ):
        model_config(config(overrides={"hiden_size": 8}), vocab_size=64)
    with pytest.raises(
        ConfigError,
        match=r"model: llama preset tiny with overrides \{'hidden_size': 50\}: .*hidden "
        r"size \(50\) is not a multiple of the number of attention heads \(4\)",
    ):
        model_config(config(overrides={"hidden_size": 50}), vocab_size=64)


def test_random_init_is_reproducible_under_a_seed():
    torch.manual_seed(0)
    first = build_model(config(), vocab_size=64).state_dict()
    torch.manual_seed(0)
    second = build_model(config(), vocab_size=64).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_init_from_loads_a_local_checkpoint_and_grows_the_vocabulary_for_meta_ids(tmp_path):
    torch.manual_seed(0)
    base = build_model(config(), vocab_size=64)
    base.save_pretrained(tmp_path / "base")
    grown = build_model(config(init_from=tmp_path / "base"), vocab_size=128)
    old, new = base.get_input_embeddings().weight, grown.get_input_embeddings().weight
    assert new.shape == (128, 64) and torch.equal(new[:64], old)
    assert torch.equal(
        grown.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight
    )
    with pytest.raises(
        UserError, match=r"model\.init_from: .*nothing is not a Hugging Face model dir"
    ):
        build_model(config(init_from=tmp_path / "nothing"), vocab_size=64)


def test_init_from_takes_dropout_overrides_and_refuses_shape_ones(tmp_path):
    """DEPTH's continued pretraining loads google/t5-v1_1-base with dropout 0.0 (its 0.1 in
    config.json): a dropout rate changes no weight, so init_from may override it."""
    from synthlm.models import resolved_config

    torch.manual_seed(0)
    base = build_model(config(arch="t5", preset="tiny"), vocab_size=64)
    assert base.config.dropout_rate == 0.0  # presets train without dropout; make the file 0.1
    base.config.dropout_rate = 0.1
    base.save_pretrained(tmp_path / "base")
    tuned = config(arch="t5", init_from=tmp_path / "base", overrides={"dropout_rate": 0.0})
    model = build_model(tuned, vocab_size=64)
    assert model.config.dropout_rate == 0.0 and model.encoder.dropout.p == 0.0
    assert resolved_config(tuned, vocab_size=64).dropout_rate == 0.0
    assert (
        build_model(
            config(arch="t5", init_from=tmp_path / "base"), vocab_size=64
        ).config.dropout_rate
        == 0.1
    )
    shaped = config(
        arch="t5", init_from=tmp_path / "base", overrides={"d_model": 8, "dropout_rate": 0}
    )
    with pytest.raises(ConfigError, match=r"model\.overrides: d_model cannot change an init_from"):
        build_model(shaped, vocab_size=64)


def test_dtype_and_gradient_checkpointing_options():
    model = build_model(config(dtype="bf16", gradient_checkpointing=True), vocab_size=64)
    assert model.dtype == torch.bfloat16
    assert all(layer.gradient_checkpointing for layer in model.model.layers)


def test_a_new_architecture_is_one_registered_function(request):
    from transformers import MistralConfig

    request.addfinalizer(lambda: ARCHS.__delitem__("mistral"))  # keep the registry clean afterwards
    register_arch(
        "mistral",
        {
            "toy": {
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "intermediate_size": 64,
            }
        },
    )(lambda **kw: MistralConfig(**kw))
    model = build_model(config(arch="mistral", preset="toy"), vocab_size=64)
    assert type(model).__name__ == "MistralForCausalLM"
    assert isinstance(model, type(AutoModelForCausalLM.from_config(model.config)))
