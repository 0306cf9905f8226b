"""Model FLOPs per token and MFU (model FLOPs utilisation).

Training FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B): ``6 N`` for the weight
matmuls (forward + backward) plus ``12 L d T`` for attention scores and values, where N counts
every matrix multiplied per token (the output projection included, embedding lookups not).
``tests/train/test_flops.py`` checks the rule against torch's own count of a training step's
matmuls (``torch.utils.flop_counter``) for Llama, GPT-NeoX and T5. Recomputation from gradient
checkpointing is deliberately *not* counted: MFU measures useful model work, so checkpointing
shows up as lower MFU, which is the honest number.
"""

from __future__ import annotations

import resource
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Dense bf16 tensor-core peak of one H100/H200 SXM (989 TFLOP/s; the 2x "sparsity" figure
# NVIDIA also quotes is not reachable by dense training).
H100_BF16_PEAK = 989e12
# Dense bf16 peaks by device-name fragment, most specific first (vendor datasheets). A device not
# listed (and every CPU) gets no MFU: a ratio against another chip's peak would be meaningless.
KNOWN_PEAKS = (
    ("H100 PCIe", 756e12),
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("MI300X", 1307e12),
)


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters that take part in a matmul for every token: all but lookup tables.

    Embedding tables (the input embedding, T5's relative position buckets) are indexed, not
    multiplied; a table that is also the output projection (tied embeddings) is a matmul.
    """
    import torch

    output = model.get_output_embeddings()
    lookups = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, torch.nn.Embedding)
        and (output is None or module.weight is not output.weight)
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in lookups)


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs (forward + backward) per token at context length ``seq_len``."""
    config = model.config
    layers = int(getattr(config, "num_hidden_layers", 0))
    return 6.0 * matmul_params(model) + 12.0 * layers * attention_width(config) * seq_len


def attention_width(config: object) -> int:
    """Query heads x head width: the width of the score and value matmuls. It is the hidden
    size unless the config sets ``head_dim`` apart (Llama-family configs may)."""
    heads, head_dim = (
        getattr(config, "num_attention_heads", None),
        getattr(config, "head_dim", None),
    )
    if heads and head_dim:
        return int(heads) * int(head_dim)
    return int(getattr(config, "hidden_size", 0))


def seq2seq_flops_per_token(model: torch.nn.Module, input_len: int, target_len: int) -> float:
    """Training FLOPs per *input* token of an encoder-decoder (T5) with targets of ``target_len``.

    The same PaLM rule per stack: the encoder's matrices see every input token, the decoder's
    (and the output projection) every target token, except the keys and values of
    cross-attention, which project the encoder's outputs and so see every *input* token.
    Attention adds encoder self-attention over the inputs, decoder self-attention over the
    targets and cross-attention from targets to inputs (``inner`` = heads x head width).
    ``tests/train/test_flops.py`` checks the sum against torch's op-by-op count.
    """
    config = model.config
    inner = int(getattr(config, "num_heads", 0)) * int(getattr(config, "d_kv", 0))
    encoder_layers = int(getattr(config, "num_layers", 0))
    decoder_layers = int(getattr(config, "num_decoder_layers", None) or encoder_layers)
    encoder = matmul_params(model.get_encoder()) if hasattr(model, "get_encoder") else 0
    cross_kv = cross_attention_kv_params(model)
    decoder = matmul_params(model) - encoder - cross_kv
    per_example = 6.0 * ((encoder + cross_kv) * input_len + decoder * target_len)
    per_example += (
        12.0
        * inner
        * (
            encoder_layers * input_len**2
            + decoder_layers * (target_len**2 + target_len * input_len)
        )
    )
    return per_example / max(input_len, 1)


def cross_attention_kv_params(model: torch.nn.Module) -> int:
    """Key and value weights of the decoder's cross-attention (T5's ``EncDecAttention``)."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if ".EncDecAttention.k." in name or ".EncDecAttention.v." in name
    )


def mfu(flops_per_tok: float, tokens_per_s: float, peak_flops: float, num_devices: int) -> float:
    """Fraction of the devices' peak FLOP/s spent on model FLOPs."""
    return flops_per_tok * tokens_per_s / (peak_flops * max(num_devices, 1))


def device_peak_flops(device: torch.device) -> float | None:
    """The dense bf16 peak of a known accelerator, or None (CPU, unknown GPU)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in KNOWN_PEAKS if fragment in name), None)


def mfu_record(
    flops_per_tok: float,
    tokens_per_s: float,
    peak_flops: float | None,
    device: torch.device,
    num_devices: int,
) -> dict[str, float]:
    """``{"mfu": ...}`` against the configured or known peak; empty when no peak is known."""
    peak = peak_flops or device_peak_flops(device)
    return {} if peak is None else {"mfu": mfu(flops_per_tok, tokens_per_s, peak, num_devices)}


def peak_memory_gb(device: torch.device) -> float:
    """Peak accelerator memory allocated by torch, or the process's peak RSS on CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (
        peak / 2**30 if sys.platform == "darwin" else peak / 2**20
    )  # bytes on macOS, KiB on Linux
