"""Optimizers: weight decay on matrices only, registry names, options passed through."""

from __future__ import annotations

import pytest
import torch

from synthlm.config import validate
from synthlm.errors import ConfigError
from synthlm.models import ModelConfig, build_model
from synthlm.train.optim import OptimConfig, build_optimizer


@pytest.fixture(scope="module")
def model():
    return build_model(
        validate(
            ModelConfig,
            {"overrides": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32}},
        ),
        vocab_size=64,
    )


def test_adamw_decays_matrices_but_not_norm_gains(model):
    optimizer = build_optimizer(model, validate(OptimConfig, {"lr": 1e-3, "weight_decay": 0.1}))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(
        p.ndim == 1 for p in no_decay["params"]
    )
    norms = {id(p) for n, p in model.named_parameters() if "norm" in n}
    assert norms and norms == {id(p) for p in no_decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["betas"] == (0.9, 0.95) and decay["lr"] == 1e-3


def test_adafactor_trains_a_step(model):
    optimizer = build_optimizer(model, validate(OptimConfig, {"name": "adafactor", "lr": 1e-2}))
    assert isinstance(optimizer, torch.optim.Adafactor)
    before = model.lm_head.weight.detach().clone()
    model(torch.arange(8)[None], labels=torch.arange(8)[None]).loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.lm_head.weight)


def test_unknown_names_and_options_fail_clearly(model):
    with pytest.raises(
        ConfigError,
        match=r"name: .*unknown optimizer 'adam' \(did you mean 'adamw'\?\); known: "
        r"adafactor, adamw",
    ):
        validate(OptimConfig, {"name": "adam"})
    with pytest.raises(
        ConfigError, match=r"options\.momentum: unknown key \(allowed keys here: amsgrad, .*fused"
    ):
        validate(OptimConfig, {"options": {"momentum": 0.9}})  # when the config loads, not at build
    for key, value in (("betas", [0.9, 0.99]), ("eps", 1e-8)):  # at load: --dry-run says it
        with pytest.raises(ConfigError, match="adafactor takes no betas/eps"):
            validate(OptimConfig, {"name": "adafactor", key: value})


def test_each_optimizer_types_its_own_options_and_errors_name_the_file(tmp_path):
    from synthlm.config import load_config

    path = tmp_path / "optim.yaml"
    path.write_text("name: adafactor\noptions:\n  beta2decay: -0.8\n")
    with pytest.raises(
        ConfigError,
        match=r"optim\.yaml: options\.beta2decay: unknown key \(did you mean "
        r"'optim\.options\.beta2_decay'\?\)",
    ):
        load_config(OptimConfig, [path])
    with pytest.raises(
        ConfigError, match=r"override 'options\.fused=maybe': options\.fused: expected bool"
    ):
        load_config(OptimConfig, [], ["options.fused=maybe"])
    assert validate(
        OptimConfig, {"name": "adamwscale", "options": {"correct_bias": False}}
    ).typed_options() == {"correct_bias": False}
