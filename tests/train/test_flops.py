"""FLOPs per token (PaLM's 6N + 12 L d T) and MFU."""

from __future__ import annotations

import pytest
import torch

from synthlm.config import validate
from synthlm.models import ModelConfig, build_model
from synthlm.train.flops import flops_per_token, matmul_params, mfu, mfu_record


def test_flops_count_matmuls_and_attention_but_not_the_embedding_lookup():
    model = build_model(
        validate(ModelConfig, {"arch": "gpt_neox", "preset": "14m"}), vocab_size=50304
    )
    n = (
        sum(p.numel() for p in model.parameters()) - 50304 * 128
    )  # embed_out is a matmul, embed_in is not
    assert matmul_params(model) == n
    assert flops_per_token(model, 1024) == 6 * n + 12 * 6 * 128 * 1024


def test_tied_embeddings_count_once_as_the_output_matmul():
    model = build_model(
        validate(ModelConfig, {"overrides": {"tie_word_embeddings": True}}), vocab_size=128
    )
    total = sum(p.numel() for p in model.parameters())
    assert matmul_params(model) == total  # the shared matrix is the lm head


def test_mfu_divides_by_the_peak_of_every_device():
    assert mfu(
        flops_per_tok=1e9, tokens_per_s=1e5, peak_flops=1e15, num_devices=2
    ) == pytest.approx(0.05)


def test_mfu_is_logged_only_against_a_known_peak():
    cpu = torch.device("cpu")
    assert mfu_record(1e9, 1e5, None, cpu, 1) == {}  # no CPU peak: no number against an H100's
    assert mfu_record(1e9, 1e5, 1e15, cpu, 2) == {"mfu": pytest.approx(0.05)}  # a configured peak


def test_attention_flops_use_heads_times_head_dim_when_the_config_sets_head_dim_apart():
    from synthlm.models import ModelConfig, build_model
    from synthlm.train.flops import flops_per_token, matmul_params

    cfg = ModelConfig(
        arch="llama", preset="tiny", overrides={"head_dim": 32}
    )  # 4 heads x 32 = 128, hidden 64
    model = build_model(cfg, vocab_size=96)
    layers, seq = model.config.num_hidden_layers, 50
    assert (
        flops_per_token(model, seq) == 6.0 * matmul_params(model) + 12.0 * layers * (4 * 32) * seq
    )
