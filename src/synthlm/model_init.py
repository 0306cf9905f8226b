"""Weight initialisation of a freshly built model: HF's own, or GPT-NeoX's (the Pythia runs).

``hf`` keeps what ``from_config`` drew: every linear and embedding weight from
N(0, ``initializer_range``), 0.02 for the gpt_neox and llama presets. That is the init of every
run that builds its model with ``AutoModelForCausalLM.from_config`` (Seqthetic's pretrain,
Hu et al. 2025), so it stays the default.

``neox`` is what GPT-NeoX's configs for the Pythia suite ask for (``init_method: small_init``,
``output_layer_init_method: wang_init``; ``megatron/model/init_functions.py``):

- small_init (Nguyen & Salazar 2019), std sqrt(2 / (5 d)): the token embedding, the output
  layer, and each block's input projections (attention QKV, MLP up / gate);
- wang_init, std 2 / (L sqrt(d)): the two projections that write into the residual stream
  (attention output, MLP down);
- biases 0, norm weights 1 (as HF already has them).

The two scales differ from 0.02 by 0.4-1.4x (small_init) and 0.3-7.7x (wang_init) across the
Pythia sizes, so a Pythia reproduction without them starts from another residual-stream scale
(2.8x larger at 160m before the final norm).

``torch`` is what a model written in plain PyTorch starts from when its code draws nothing
itself (Rocket's ``model.py``, for one): each layer's own ``reset_parameters``, i.e. linear
weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and embeddings from N(0, 1) with the
padding row 0; norm weights 1. For a 512-wide model that is linear weights of std 0.026 but an
embedding 50x larger than HF's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from synthlm.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

InitScheme = Literal["hf", "neox", "torch"]


def neox_stds(hidden_size: int, num_layers: int) -> tuple[float, float]:
    """(small_init, wang_init) standard deviations for a model of this width and depth."""
    small = math.sqrt(2.0 / (5.0 * hidden_size))
    wang = 2.0 / num_layers / math.sqrt(hidden_size)
    return small, wang


def apply_init(
    model: PreTrainedModel, scheme: InitScheme, residual_outputs: tuple[str, ...]
) -> None:
    """Redraw a fresh model's weights by ``scheme`` (``hf``: leave them as built).

    ``residual_outputs`` are the module-name suffixes of the arch's residual-writing
    projections (``attention.dense``, ``mlp.dense_4h_to_h`` for gpt_neox). Draws come from
    torch's global RNG in module order, so the same seed gives the same weights.
    """
    if scheme == "hf":
        return
    import torch

    if scheme == "torch":
        _reset_each_layer(model)
        return
    config = model.config
    small, wang = neox_stds(config.hidden_size, config.num_hidden_layers)
    seen: set[int] = set()
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear | torch.nn.Embedding):
                continue
            weight = module.weight
            if id(weight) in seen:  # a tied output layer is the embedding: drawn once
                continue
            seen.add(id(weight))
            _refuse_partitioned(weight, "neox")
            std = wang if name.endswith(residual_outputs) else small
            weight.normal_(mean=0.0, std=std)
            if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
                weight[module.padding_idx].zero_()  # as torch and HF keep a padding row
            if isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.zero_()


def _reset_each_layer(model: PreTrainedModel) -> None:
    """torch's default init: every linear and embedding layer's own ``reset_parameters``."""
    import torch

    seen: set[int] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Embedding):
            if id(module.weight) in seen:  # a tied output layer is the embedding: drawn once
                continue
            seen.add(id(module.weight))
            _refuse_partitioned(module.weight, "torch")
            module.reset_parameters()


def _refuse_partitioned(weight: object, scheme: str) -> None:
    if hasattr(weight, "ds_id"):  # partitioned by DeepSpeed ZeRO-3 init
        raise ConfigError(
            f"model.init: {scheme} cannot redraw weights partitioned by DeepSpeed ZeRO-3 "
            "init; set zero3_init_flag: false in the accelerate config (the model is "
            "partitioned at prepare instead)"
        )


def check_init(scheme: InitScheme, arch: str, residual_outputs: tuple[str, ...]) -> None:
    """Refuse a scheme the arch cannot take, before anything is built."""
    if scheme != "hf" and not residual_outputs:
        raise ConfigError(
            f"model.init: {scheme} is defined for decoder-only archs with GPT-NeoX-style "
            f"blocks (gpt_neox, llama), not {arch}; use model.init: hf"
        )
