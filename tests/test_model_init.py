"""``model.init: neox``: GPT-NeoX's small_init / wang_init, as the Pythia suite was trained.

The expected scales and which layer takes which are written out here from GPT-NeoX itself
(v1.0, megatron/model/init_functions.py and the layers that call them), not from synthlm:

- small_init: N(0, sqrt(2 / (5 * hidden_size))); ``init_method`` in the Pythia configs. Used by
  the word embedding (word_embeddings.py), attention ``query_key_value`` and MLP
  ``dense_h_to_4h`` (transformer.py), and the output layer (``ParallelLinear``'s
  ``final_linear``, given ``init_method``).
- wang_init: N(0, 2 / num_layers / sqrt(hidden_size)); ``output_layer_init_method``. Used by
  attention ``dense`` and MLP ``dense_4h_to_h``.
- every bias zero (mpu/layers.py: "Always initialize bias to zero"), layer norms weight 1, bias 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from cli_runner import run_cli
from synthlm.config import validate
from synthlm.errors import ConfigError
from synthlm.models import LLAMA, ModelConfig, build_model, model_config

REPO = Path(__file__).resolve().parents[1]
WIDTH, LAYERS, VOCAB = 128, 8, 1024
SMALL = math.sqrt(2 / (5 * WIDTH))  # 0.0559
WANG = 2 / LAYERS / math.sqrt(WIDTH)  # 0.0221


def neox_role(name: str) -> str | None:
    """GPT-NeoX's init for an HF GPTNeoX parameter name, from the module that owns it."""
    if name.endswith(".bias"):
        return "zero"
    if "layernorm" in name or "final_layer_norm" in name:
        return "one"
    if name.endswith(("attention.dense.weight", "mlp.dense_4h_to_h.weight")):
        return "wang"
    if name.endswith(
        ("embed_in.weight", "query_key_value.weight", "dense_h_to_4h.weight", "lm_head.weight")
    ):
        return "small"
    return None


def llama_role(name: str) -> str | None:
    """The same roles for Llama blocks, as GPT-NeoX's llama configs place them."""
    if name.endswith("norm.weight"):
        return "one"
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        return "wang"
    if name.endswith(
        ("embed_tokens.weight", "q_proj.weight", "k_proj.weight", "v_proj.weight"),
    ) or name.endswith(("gate_proj.weight", "up_proj.weight", "lm_head.weight")):
        return "small"
    return None


def build(arch: str, init: str, seed: int = 0):
    torch.manual_seed(seed)
    overrides = {"hidden_size": WIDTH, "num_hidden_layers": LAYERS, "num_attention_heads": 4}
    if arch == "gpt_neox":
        overrides["intermediate_size"] = 4 * WIDTH
    cfg = validate(
        ModelConfig,
        {
            "arch": arch,
            "preset": "14m" if arch == "gpt_neox" else "tiny",
            "overrides": overrides,
            "init": init,
        },
    )
    return build_model(cfg, vocab_size=VOCAB)


@pytest.mark.parametrize(("arch", "role_of"), [("gpt_neox", neox_role), ("llama", llama_role)])
def test_neox_init_draws_each_layer_at_gpt_neoxs_scale(arch, role_of):
    model = build(arch, "neox")
    roles: dict[str, int] = {}
    for name, param in model.named_parameters():
        role = role_of(name)
        assert role is not None, f"{name}: no GPT-NeoX role"
        roles[role] = roles.get(role, 0) + 1
        if role == "zero":
            assert torch.count_nonzero(param) == 0, name
        elif role == "one":
            assert torch.all(param == 1), name
        else:
            expected = SMALL if role == "small" else WANG
            assert param.mean().abs() < expected * 0.05, name
            assert param.std().item() == pytest.approx(expected, rel=0.03), name
    assert roles["wang"] == 2 * LAYERS and roles["small"] >= 2 + 2 * LAYERS


def test_neox_init_is_reproducible_and_differs_from_hf():
    first, again, hf = build("gpt_neox", "neox"), build("gpt_neox", "neox"), build("gpt_neox", "hf")
    for (name, a), b, c in zip(
        first.named_parameters(), again.parameters(), hf.parameters(), strict=True
    ):
        assert torch.equal(a, b), name
        if name.endswith("attention.dense.weight"):  # hf: N(0, 0.02), ~0.9x the wang scale here
            assert c.std().item() == pytest.approx(0.02, rel=0.03)
            assert not torch.equal(a, c)


def test_neox_init_refuses_what_it_cannot_do():
    with pytest.raises(ConfigError, match=r"init: neox is defined for .* not t5"):
        validate(ModelConfig, {"arch": "t5", "preset": "tiny", "init": "neox"})
    with pytest.raises(ConfigError, match=r"init: neox draws random weights.*init_from"):
        validate(ModelConfig, {"init_from": "some/checkpoint", "init": "neox"})


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_torch_init_is_each_layers_pytorch_default(arch):
    """``model.init: torch`` restated from PyTorch's documented defaults (torch.nn.Linear: weight
    and bias U(-1/sqrt(in_features), 1/sqrt(in_features)); torch.nn.Embedding: N(0, 1), the
    padding_idx row 0), and norm weights 1: what Rocket's model.py starts from."""
    if arch == "t5":
        torch.manual_seed(0)
        model = build_model(
            validate(ModelConfig, {"arch": "t5", "init": "torch"}), vocab_size=VOCAB
        )
    else:
        model = build(arch, "torch")
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    checked = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in embeddings:
            bound = 1 / math.sqrt(module.in_features)
            w = module.weight
            assert w.abs().max().item() <= bound, name
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1), name
            if module.bias is not None:
                assert module.bias.abs().max().item() <= bound and module.bias.any(), name
            checked += 1
        elif isinstance(module, torch.nn.Embedding) and module.num_embeddings > 100:
            rows = module.weight
            if module.padding_idx is not None:
                assert not rows[module.padding_idx].any(), name
                rows = rows[torch.arange(len(rows)) != module.padding_idx]
            assert rows.std().item() == pytest.approx(1.0, rel=0.05), name
            checked += 1
        elif (
            "norm" in type(module).__name__.lower() and getattr(module, "weight", None) is not None
        ):
            assert torch.all(module.weight == 1), name
    assert checked > 5
    again = build(arch, "torch")
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_the_galore_llama_presets_have_galores_norm_epsilon():
    # jiaweizzhao/GaLore configs/llama_{60m,130m,350m,1b}.json: rms_norm_eps 1e-06; Llama 2 7B's
    # config.json: 1e-05.
    expected = {"60m": 1e-6, "125m": 1e-6, "350m": 1e-6, "1b": 1e-6, "7b": 1e-5}
    for preset, eps in expected.items():
        cfg = validate(ModelConfig, {"arch": "llama", "preset": preset})
        assert model_config(cfg, vocab_size=32000).rms_norm_eps == eps, preset
    assert set(expected) | {"tiny"} == set(LLAMA)


def test_a_wrong_init_stops_the_cli_with_exit_2_before_any_work(tmp_path):
    config = REPO / "examples/configs/quickstart.yaml"
    bad = run_cli(
        "train", str(config), "--dry-run", "model.arch=t5", "model.init=neox", cwd=tmp_path
    )
    assert bad.returncode == 2, bad.stderr
    assert "model.init: neox is defined for decoder-only archs" in bad.stderr
    assert "expected one of" not in bad.stderr  # the value has the right type; only the reason
    assert "Traceback" not in bad.stderr
