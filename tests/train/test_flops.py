"""FLOPs per token (PaLM's 6N + 12 L d T) and MFU."""

from __future__ import annotations

import pytest
import torch

from synthlm.config import validate
from synthlm.models import ModelConfig, build_model
from synthlm.train.flops import (
    attention_width,
    flops_per_token,
    matmul_params,
    mfu,
    mfu_record,
    seq2seq_flops_per_token,
)


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


# -- the formula against torch's own count -------------------------------------------------------
# torch.utils.flop_counter counts, op by op, the FLOPs of every matmul a real forward + backward
# runs (2 m n k each). It knows nothing of PaLM's rule, so it checks the formula independently.
# Two known gaps: PaLM's 6N also prices the 1-D parameters (norm scales, biases), which no
# matmul touches, and rotary embeddings run one tiny matmul without a gradient (2 x head_dim/2
# per token and layer at most); the tolerance covers the second, the first is subtracted.


def _counted_training_flops(model: torch.nn.Module, **batch: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    return float(counter.get_total_flops())


def _one_dim_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.dim() == 1)


@pytest.mark.parametrize(
    ("arch", "preset", "overrides"),
    [
        ("llama", "tiny", {}),
        ("llama", "tiny", {"num_key_value_heads": 2, "head_dim": 32}),  # GQA, heads x 32 != hidden
        ("llama", "tiny", {"tie_word_embeddings": True}),
        ("gpt_neox", "14m", {}),
    ],
)
def test_decoder_flops_per_token_equal_torchs_count_of_a_training_step(arch, preset, overrides):
    torch.manual_seed(0)
    cfg = {"arch": arch, "preset": preset, "attn_implementation": "eager", "overrides": overrides}
    model = build_model(validate(ModelConfig, cfg), vocab_size=160)
    batch, seq = 2, 96
    ids = torch.randint(0, 160, (batch, seq))
    counted = _counted_training_flops(model, input_ids=ids, labels=ids)
    formula = flops_per_token(model, seq) * batch * seq
    matmuls_only = formula - 6.0 * _one_dim_params(model) * batch * seq
    attention = 12.0 * model.config.num_hidden_layers * attention_width(model.config) * seq
    assert attention * batch * seq > 0.1 * counted  # the attention term matters at this shape
    assert matmuls_only == pytest.approx(counted, rel=2e-3)


def test_t5_flops_per_input_token_equal_torchs_count_of_a_training_step():
    torch.manual_seed(0)
    cfg = {"arch": "t5", "preset": "tiny", "attn_implementation": "eager"}
    model = build_model(validate(ModelConfig, cfg), vocab_size=160)
    batch, inputs, targets = 2, 96, 24  # nanoT5's 512 / 114, scaled down
    labels = torch.randint(0, 160, (batch, targets))
    counted = _counted_training_flops(
        model,
        input_ids=torch.randint(0, 160, (batch, inputs)),
        decoder_input_ids=labels.roll(1, dims=1),  # the shift right; T5 starts from id 0
        labels=labels,
    )
    formula = seq2seq_flops_per_token(model, inputs, targets) * batch * inputs
    encoder_1d = _one_dim_params(model.get_encoder())
    decoder_1d = _one_dim_params(model) - encoder_1d
    matmuls_only = formula - 6.0 * batch * (encoder_1d * inputs + decoder_1d * targets)
    assert matmuls_only == pytest.approx(counted, rel=2e-3)
