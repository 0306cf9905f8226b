"""Model presets: named shapes that become Hugging Face configs with random weights, no download.

Every architecture is one :func:`register_arch` entry (a config class, its presets and the
``AutoModel`` class that builds it), so adding an architecture is one decorated function. Models
are plain ``transformers`` models: ``save_pretrained`` output loads anywhere without synthlm.

Why HF classes instead of our own modules: users leave synthlm with a checkpoint they can load
into the whole HF ecosystem (generation, lm-eval, vLLM) unchanged, and the fused kernels (SDPA,
flash-attention) come with them.

Transformers configs accept any keyword silently (a typo such as ``hiden_size`` would just
add an unused attribute), so :func:`model_config` checks override keys against the config's
real fields before building anything.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from synthlm.config import Section
from synthlm.errors import ConfigError, UserError
from synthlm.model_init import InitScheme, apply_init, check_init
from synthlm.registry import Registry

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

Dtype = Literal["fp32", "bf16", "fp16"]
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass
class Arch:
    """One architecture: how to build its HF config, and its named shapes."""

    name: str
    build_config: Callable[..., PretrainedConfig]
    presets: dict[str, dict[str, Any]]
    auto_class: str = "AutoModelForCausalLM"
    defaults: dict[str, Any] = field(default_factory=dict)
    # Called on every built or loaded model (fresh=True for random init): fixes what the HF
    # class does differently from the architecture's definition (T5 v1.1's untied output layer).
    finish: Callable[[PreTrainedModel, bool], None] | None = None
    # Module-name suffixes of the projections that write into the residual stream (attention
    # output, MLP down): GPT-NeoX's init draws them at another scale (synthlm.model_init).
    residual_outputs: tuple[str, ...] = ()

    @property
    def seq2seq(self) -> bool:
        """Encoder-decoder (trained by span corruption, DEPTH, text-to-text) or decoder-only."""
        return self.auto_class == "AutoModelForSeq2SeqLM"


ARCHS: Registry[Arch] = Registry("model architecture")


def register_arch(
    name: str,
    presets: dict[str, dict[str, Any]],
    *,
    auto_class: str = "AutoModelForCausalLM",
    defaults: dict[str, Any] | None = None,
    finish: Callable[[PreTrainedModel, bool], None] | None = None,
    residual_outputs: tuple[str, ...] = (),
) -> Callable[[Callable[..., PretrainedConfig]], Callable[..., PretrainedConfig]]:
    """Register ``fn(**kwargs) -> PretrainedConfig`` as architecture ``name`` with its presets."""

    def decorate(fn: Callable[..., PretrainedConfig]) -> Callable[..., PretrainedConfig]:
        arch = Arch(
            name, fn, presets, auto_class, dict(defaults or {}), finish, tuple(residual_outputs)
        )
        ARCHS.add(name, arch)
        return fn

    return decorate


# ---------------------------------------------------------------------------------------------
# Architectures

# Pythia suite (Biderman et al. 2023): GPT-NeoX blocks, parallel residual, 25% rotary dims.
PYTHIA = {
    "14m": {
        "hidden_size": 128,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "intermediate_size": 512,
    },
    "31m": {
        "hidden_size": 256,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "intermediate_size": 1024,
    },
    "70m": {
        "hidden_size": 512,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "intermediate_size": 2048,
    },
    "160m": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "410m": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
    "1b": {
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 8,
        "intermediate_size": 8192,
    },
}


@register_arch(
    "gpt_neox",
    PYTHIA,
    defaults={
        "max_position_embeddings": 2048,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,
        },
        "use_parallel_residual": True,
        "tie_word_embeddings": False,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
    },
    residual_outputs=("attention.dense", "mlp.dense_4h_to_h"),
)
def gpt_neox_config(**kwargs: Any) -> PretrainedConfig:
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(**kwargs)


# Llama shapes: "tiny" for tests and CPU, 60m-1b as in the GaLore/ReLoRA pretraining studies
# (their configs/llama_*.json: shapes and RMSNorm eps 1e-6; GaLore's "130m" is our 125m), 7b as
# Llama 2 (eps 1e-5, for configs that target a cluster).
LLAMA = {
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 176,
    },
    "60m": {
        "hidden_size": 512,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "intermediate_size": 1376,
        "rms_norm_eps": 1e-6,
    },
    "125m": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "rms_norm_eps": 1e-6,
    },
    "350m": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 2736,
        "rms_norm_eps": 1e-6,
    },
    "1b": {
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "intermediate_size": 5461,
        "rms_norm_eps": 1e-6,
    },
    "7b": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "intermediate_size": 11008,
        "max_position_embeddings": 4096,
    },
}


@register_arch(
    "llama",
    LLAMA,
    defaults={
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "tie_word_embeddings": False,
        "attention_dropout": 0.0,
    },
    residual_outputs=("self_attn.o_proj", "mlp.down_proj"),
)
def llama_config(**kwargs: Any) -> PretrainedConfig:
    from transformers import LlamaConfig

    return LlamaConfig(**kwargs)


# T5 v1.1 shapes (Raffel et al. 2020; the v1.1 checkpoints: gated-GELU feed-forward, no dropout
# in pretraining as in nanoT5). "tiny" is for tests and CPU runs. T5 has relative position
# buckets, so no max_position_embeddings bounds the sequence length.
T5 = {
    "tiny": {
        "d_model": 64,
        "d_ff": 128,
        "d_kv": 16,
        "num_heads": 4,
        "num_layers": 2,
        "num_decoder_layers": 2,
    },
    "small": {
        "d_model": 512,
        "d_ff": 1024,
        "d_kv": 64,
        "num_heads": 6,
        "num_layers": 8,
        "num_decoder_layers": 8,
    },
    "base": {
        "d_model": 768,
        "d_ff": 2048,
        "d_kv": 64,
        "num_heads": 12,
        "num_layers": 12,
        "num_decoder_layers": 12,
    },
    "large": {
        "d_model": 1024,
        "d_ff": 2816,
        "d_kv": 64,
        "num_heads": 16,
        "num_layers": 24,
        "num_decoder_layers": 24,
    },
}


def untie_t5_output(model: PreTrainedModel, fresh: bool) -> None:
    """Give a T5 v1.1 model its own output layer, as the v1.1 checkpoints and nanoT5 have.

    transformers >= 5 always ties T5's ``lm_head`` to the input embedding (``T5Config`` turns
    ``tie_word_embeddings=False`` into "tied, without v1.0's d_model**-0.5 rescale"), which
    drops 16.4M parameters from t5 small. Here the head becomes a separate matrix (random init
    N(0, initializer_factor), T5's and nanoT5's init) and the instance stops listing it as tied,
    so ``save_pretrained`` writes ``lm_head.weight`` and a config saying
    ``tie_word_embeddings: false``. Stock ``AutoModelForSeq2SeqLM`` loads that untied (both
    tensors present and different; transformers 5 warns about it needlessly, which
    :class:`UntiedT5Load` mutes for ``init_from``), and transformers 4 reads the false as
    "v1.1: no rescale".
    A v1.0-style checkpoint (config asks for the rescale) is left tied as it was trained.
    """
    import torch

    config = model.config
    if getattr(config, "scale_decoder_outputs", getattr(config, "tie_word_embeddings", False)):
        return
    keys = type(model)._tied_weights_keys or {}
    if isinstance(keys, dict):
        model._tied_weights_keys = {k: v for k, v in keys.items() if not k.startswith("lm_head")}
    else:  # transformers 4: a list of names
        model._tied_weights_keys = [k for k in keys if not k.startswith("lm_head")]
    head, shared = model.lm_head, model.get_input_embeddings()
    if head.weight is shared.weight and hasattr(
        shared.weight, "ds_id"
    ):  # partitioned by ZeRO-3 init
        raise ConfigError(
            "model: T5 v1.1's output layer cannot be untied inside DeepSpeed ZeRO-3 init; set "
            "zero3_init_flag: false in the accelerate config (the model is partitioned at "
            "prepare instead)"
        )
    if head.weight is shared.weight:
        with torch.no_grad():
            weight = torch.empty_like(shared.weight)
            if fresh:
                weight.normal_(mean=0.0, std=config.initializer_factor * 1.0)
            else:  # a loaded checkpoint whose head was tied: keep its function, train them apart
                weight.copy_(shared.weight)
        head.weight = torch.nn.Parameter(weight, requires_grad=shared.weight.requires_grad)
    if isinstance(model._tied_weights_keys, dict):
        model.all_tied_weights_keys = dict(model._tied_weights_keys)
    config.tie_word_embeddings = False


class UntiedT5Load:
    """While loading a checkpoint :func:`untie_t5_output` saved: mute transformers' warning
    "...specifies to tie shared.weight to lm_head.weight, but both are present in the
    checkpoints with different values, so we will NOT tie them. You should update the config
    with `tie_word_embeddings=False`...".

    It is spurious for these checkpoints: their config.json already says
    ``tie_word_embeddings: false``, but transformers 5's ``T5Config`` always sets it back to
    True (the flag also ties the encoder's and decoder's token embeddings to ``shared``, so
    loading with it false would leave those random), and the result it announces, a separate
    head, is the one wanted. Only that message, and only for configs saved untied (T5 v1.1:
    ``scale_decoder_outputs`` false); a tied v1.0 checkpoint whose head differs still warns.
    """

    MESSAGE = "to tie shared.weight to lm_head.weight, but both are present in the checkpoints"

    def __init__(self, path: Path) -> None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path, local_files_only=True)
        self.untied = getattr(config, "scale_decoder_outputs", None) is False

    def _keep(self, record: Any) -> bool:
        return self.MESSAGE not in record.getMessage()

    def __enter__(self) -> None:
        if self.untied:
            _modeling_logger().addFilter(self._keep)

    def __exit__(self, *exc: object) -> None:
        _modeling_logger().removeFilter(self._keep)


def _modeling_logger() -> Any:
    """The logger transformers' ``from_pretrained`` warns through."""
    import logging

    return logging.getLogger("transformers.modeling_utils")


@register_arch(
    "t5",
    T5,
    auto_class="AutoModelForSeq2SeqLM",
    defaults={"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "dropout_rate": 0.0},
    finish=untie_t5_output,
)
def t5_config(**kwargs: Any) -> PretrainedConfig:
    from transformers import T5Config

    return T5Config(**kwargs)


# ---------------------------------------------------------------------------------------------
# Config section

# ModelConfig keys that only torch.compile reads (refused away from their defaults without it)
COMPILE_KEYS = ("compile_scope", "compile_backend", "compile_dynamic")


class ModelConfig(Section):
    """Which network to train: a preset of an architecture, or a local HF checkpoint."""

    arch: str = Field(
        "llama", description="Architecture: one of the registered archs (gpt_neox, llama, t5)."
    )
    preset: str | None = Field(
        "tiny",
        description="Named shape of the architecture, e.g. gpt_neox 14m, llama 125m or t5 small; "
        "null with init_from (the checkpoint's shape; a preset that differs from it is refused).",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="HF config fields to change, e.g. {hidden_size: 96}; with init_from, "
        "dropout rates only (e.g. {dropout_rate: 0.0}).",
    )
    init_from: Path | None = Field(
        None, description="Local HF model dir to continue pretraining from (no download)."
    )
    init: InitScheme = Field(
        "hf",
        description="Random init: hf (transformers' own, N(0, initializer_range) everywhere), "
        "neox (GPT-NeoX's small_init / wang_init, as the Pythia suite trained; gpt_neox and "
        "llama only) or torch (each layer's PyTorch default, as plain-PyTorch models start; "
        "gpt_neox and llama).",
    )
    num_meta_tokens: int = Field(
        0, ge=0, description="Vocabulary ids reserved after the natural ones for synthetic data."
    )
    vocab_multiple: int = Field(
        64,
        ge=1,
        le=1024,
        description="Embedding and output rows rounded up to a multiple of this: 64 for fast "
        "matmuls; 128 as GPT-NeoX pads (make-vocab-size-divisible-by); 1 for exactly the ids "
        "used, as Meta's and Rocket's Llama code sizes it (padding rows are never targets but "
        "do take part in the softmax).",
    )
    dtype: Dtype = Field(
        "fp32",
        description="Dtype the weights are stored and updated in (use train.precision for "
        "autocast).",
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa",
        description="Attention kernel; sdpa picks flash/memory-efficient kernels where "
        "the device has them.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, ~30% slower."
    )
    compile: bool = Field(
        False,
        description="Compile the model with torch.compile (in place: state-dict keys stay plain).",
    )
    compile_scope: Literal["model", "blocks"] = Field(
        "model",
        description="model: one graph for the whole network; blocks: each repeated layer "
        "(decoder/encoder block) compiled alone, "
        "so identical layers share one compiled graph and the first step starts in "
        "seconds instead of minutes on large models.",
    )
    compile_backend: str = Field(
        "inductor",
        description="torch.compile backend: inductor (fused kernels), or aot_eager / "
        "eager to debug tracing.",
    )
    compile_dynamic: bool | None = Field(
        None,
        description="torch.compile's dynamic: null = torch's default (static graphs; a size "
        "that changes between calls is traced again as symbolic); false = one static graph per "
        "input shape, the fastest kernels when shapes are fixed (packed CLM, span corruption, "
        "DEPTH), and what per-block T5 wants: its encoder and decoder blocks share one compiled "
        "function but see different lengths, which torch's default reads as a changing size and "
        "turns the decoder's graphs symbolic; true = symbolic sizes from the first call "
        "(variable-length fine-tuning).",
    )

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        return ARCHS.check(arch)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None, info: ValidationInfo) -> str | None:
        if preset is None:
            return None  # the init_from checkpoint's shape (checked with the model section)
        arch = ARCHS.find(info.data.get("arch", ""))
        if arch is not None and preset not in arch.presets:
            raise ValueError(f"{arch.name}: " + _unknown(preset, arch.presets))
        return preset

    @field_validator("dtype")
    @classmethod
    def _trainable_dtype(cls, dtype: str) -> str:
        if dtype == "fp16":
            raise ValueError(
                "fp16 weights train with no fp32 copy: AdamW's eps (1e-8) is 0 in fp16 and small "
                "updates round away, so the run diverges or stalls; keep fp32 weights with "
                "train.precision: fp16 (autocast with loss scaling), or use model.dtype: bf16"
            )
        return dtype

    @model_validator(mode="after")
    def _shape_named(self) -> ModelConfig:
        if self.preset is None and self.init_from is None:
            raise ValueError(
                "preset: null takes the shape of model.init_from's checkpoint; without "
                "init_from, name a preset"
            )
        return self

    @model_validator(mode="after")
    def _compile_settings_need_compile(self) -> ModelConfig:
        """compile_scope / compile_backend / compile_dynamic are read only when compiling: set
        without ``compile: true`` the model would train eagerly while the config reads as if
        it were compiled that way. Defaults pass (a saved config.yaml lists them)."""
        if self.compile:
            return self
        for key in self.changed_from_default(COMPILE_KEYS):
            raise ValueError(
                f"{key}: {getattr(self, key)!r} has no effect without model.compile: true (the "
                f"model is not compiled); set model.compile=true or remove model.{key}"
            )
        return self

    @model_validator(mode="after")
    def _known_compile_backend(self) -> ModelConfig:
        """An unknown backend failed at the first step with torch's traceback; checked only
        when compiling, since listing the backends imports torch._dynamo (2 s)."""
        if self.compile:
            import torch._dynamo

            backends = torch._dynamo.list_backends(exclude_tags=())
            if self.compile_backend not in backends:
                raise ValueError(
                    f"compile_backend: unknown torch.compile backend {self.compile_backend!r}; "
                    f"known: {', '.join(backends)}"
                )
        return self

    @field_validator("init")
    @classmethod
    def _init_fits(cls, init: InitScheme, info: ValidationInfo) -> InitScheme:
        if init != "hf" and info.data.get("init_from") is not None:
            raise ValueError(
                f"{init} draws random weights, but model.init_from loads them; drop one of the two"
            )
        arch = ARCHS.find(info.data.get("arch", ""))
        if arch is not None:
            try:
                check_init(init, arch.name, arch.residual_outputs)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("model.init: ")) from None
        return init


def _unknown(value: str, allowed: dict[str, Any]) -> str:
    close = difflib.get_close_matches(value, list(allowed), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown value '{value}'{hint}; allowed: {', '.join(allowed)}"


# ---------------------------------------------------------------------------------------------
# Building


def model_config(
    cfg: ModelConfig, *, vocab_size: int, special_ids: dict[str, int | None] | None = None
) -> PretrainedConfig:
    """The HF config of a preset with overrides applied and the vocabulary set."""
    arch = ARCHS[cfg.arch]
    base = arch.build_config(**arch.defaults)
    allowed = set(base.to_dict()) - {"transformers_version", "architectures", "model_type"}
    for key in cfg.overrides:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean 'model.overrides.{close[0]}'?)" if close else ""
            raise ConfigError(f"model.overrides.{key}: not a field of the {cfg.arch} config{hint}")
    if "vocab_size" in cfg.overrides:
        raise ConfigError(
            "model.overrides.vocab_size: the vocabulary comes from the tokenizer and "
            "model.num_meta_tokens; do not set it"
        )
    kwargs = {
        **arch.defaults,
        **arch.presets[cfg.preset],
        **cfg.overrides,
        "vocab_size": vocab_size,
    }
    kwargs.update({f"{name}_token_id": value for name, value in (special_ids or {}).items()})
    try:
        return arch.build_config(**kwargs)
    except Exception as exc:  # transformers validates shapes (heads dividing width, ...) itself
        reason = exc.__cause__ or exc
        raise ConfigError(
            f"model: {cfg.arch} preset {cfg.preset} with overrides {cfg.overrides or {}}: {reason}"
        ) from None


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def build_model(
    cfg: ModelConfig, *, vocab_size: int, special_ids: dict[str, int | None] | None = None
) -> PreTrainedModel:
    """A randomly initialised model from a preset, or the ``init_from`` checkpoint.

    Random init draws from torch's global RNG: seed it first for reproducible weights. With
    ``init_from``, the embedding grows to ``vocab_size`` when meta-language ids are added.
    """
    import transformers

    arch = ARCHS[cfg.arch]
    auto = getattr(transformers, arch.auto_class)
    dtype = torch_dtype(cfg.dtype)
    if cfg.init_from is not None:
        model = _load_local(auto, cfg, dtype)
        if arch.finish is not None:
            arch.finish(model, False)
        if model.get_input_embeddings().num_embeddings < vocab_size:
            model.resize_token_embeddings(vocab_size, mean_resizing=False)
        set_special_ids(model, special_ids)
    else:
        config = model_config(cfg, vocab_size=vocab_size, special_ids=special_ids)
        model = auto.from_config(config, attn_implementation=cfg.attn_implementation, dtype=dtype)
        apply_init(model, cfg.init, arch.residual_outputs)
        if arch.finish is not None:
            arch.finish(model, True)
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    return model


def planned_parameters(cfg: ModelConfig, config: PretrainedConfig) -> int:
    """Parameters of the model ``config`` builds, counted on torch's meta device: no memory and
    no init, so ``--dry-run`` can state a 7B model's size in well under a second."""
    import torch
    import transformers

    arch = ARCHS[cfg.arch]
    with torch.device("meta"):
        model = getattr(transformers, arch.auto_class).from_config(config)
    if arch.finish is not None:
        arch.finish(model, True)
    return count_parameters(model)


def set_special_ids(model: PreTrainedModel, special_ids: dict[str, int | None] | None) -> None:
    """Make a loaded checkpoint's config (and generation defaults) name the tokenizer's ids.

    The data is tokenized by the run's tokenizer, so its ids are the truth: a T5 starts decoding
    from the pad id the objectives shift targets with, and generation stops at its EOS.
    """
    for name, value in (special_ids or {}).items():
        if value is None:
            continue
        setattr(model.config, f"{name}_token_id", value)
        if getattr(model, "generation_config", None) is not None:
            setattr(model.generation_config, f"{name}_token_id", value)


def compile_model(model: torch.nn.Module, cfg: ModelConfig) -> int:
    """Compile ``model`` in place as ``cfg`` says; returns the number of modules compiled.

    In place (``Module.compile``) rather than wrapped, so parameter names, checkpoints and the
    saved HF files are unchanged. With ``compile_scope: blocks`` every layer of the model's
    repeated-block lists is compiled alone: dynamo traces the layer's code once and reuses the
    graph for the other layers of the same shape, which is what makes the first step of a
    1B model start in seconds; the embedding, final norm, output layer and loss stay eager.
    """
    if not cfg.compile:
        return 0
    if cfg.compile_scope == "model":
        loud_recompile_limit()
        model.compile(backend=cfg.compile_backend, dynamic=cfg.compile_dynamic)
        return 1
    blocks = repeated_blocks(model)
    if not blocks:
        raise ConfigError(
            f"model.compile_scope=blocks: found no repeated layers in "
            f"{type(model).__name__}; use compile_scope: model"
        )
    loud_recompile_limit(BLOCK_GRAPHS)
    for block in blocks:
        block.compile(backend=cfg.compile_backend, dynamic=cfg.compile_dynamic)
    return len(blocks)


def compile_counts() -> tuple[int, int]:
    """(graphs traced, graph breaks) by torch.compile in this process so far (dynamo's counters)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"]), int(sum(counters["graph_break"].values()))


def compile_report(modules: int) -> str:
    """One line on what torch.compile traced in this process so far."""
    graphs, breaks = compile_counts()
    what = f"{modules} compiled block{'s' if modules != 1 else ''}" if modules > 1 else "the model"
    line = f"torch.compile: {graphs} graph{'s' if graphs != 1 else ''} for {what}, "
    if not breaks:
        return line + "no graph break"
    return line + (
        f"{breaks} graph break{'s' if breaks != 1 else ''} (the code around a break runs "
        "eagerly; TORCH_LOGS=graph_breaks shows where)"
    )


# Graphs one compiled function may need under compile_scope: blocks. Every layer of a model runs
# the same forward code, so they share one dynamo cache (torch's default limit, 8, is sized for
# one function per model): T5 alone needs 4 in training (first and later blocks of the encoder
# and of the decoder: only the first holds the position bias) and as many again per evaluation
# shape. A layer-count-independent bound; a model that needs more has shapes that keep changing.
BLOCK_GRAPHS = 64


def loud_recompile_limit(graphs: int = 0) -> None:
    """Let each compiled function hold ``graphs`` graphs (at least torch's own limit), and make
    going past that an error.

    Past its recompile limit dynamo runs the function eagerly from then on and only logs a
    warning: a run that asked for compile would quietly train uncompiled. Process-wide
    settings: the training process compiles nothing else.
    """
    import torch._dynamo

    config = torch._dynamo.config
    if config.suppress_errors:
        raise ConfigError(
            "model.compile: TORCHDYNAMO_SUPPRESS_ERRORS is set, so torch.compile would run any "
            "code it fails to compile eagerly, without a word; unset it (a synthlm run trains "
            "compiled or stops), or set model.compile: false"
        )
    config.recompile_limit = max(config.recompile_limit, graphs)
    config.fail_on_recompile_limit_hit = True


def repeated_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The layers of every ``ModuleList`` whose children are all of one class (decoder layers,
    T5 blocks): the units that activation checkpointing and per-block compile work on."""
    import torch

    blocks = []
    for module in model.modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module) > 1
            and len({type(m) for m in module}) == 1
        ):
            blocks.extend(module)
    return blocks


def enable_checkpointing(model: PreTrainedModel) -> None:
    """Non-reentrant activation checkpointing (works with DDP and frozen inputs).

    transformers 5 renamed the method (the old name warns); 4.x has only the old one.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _load_local(auto: Any, cfg: ModelConfig, dtype: torch.dtype) -> PreTrainedModel:
    from transformers.utils import logging as hf_logging

    path = _checked_init_from(cfg)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load would break the run's own
    try:
        with UntiedT5Load(path):
            return auto.from_pretrained(
                path,
                local_files_only=True,
                attn_implementation=cfg.attn_implementation,
                dtype=dtype,
                **cfg.overrides,  # dropout rates only (_checked_init_from)
            )
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def is_dropout_key(key: str) -> bool:
    """HF config fields that set a dropout rate (dropout_rate, attention_dropout, resid_pdrop...):
    the only ones a loaded checkpoint may change, since they leave its weights' shapes alone."""
    return "dropout" in key or key.endswith("_pdrop")


def _checked_init_from(cfg: ModelConfig) -> Path:
    path = Path(cfg.init_from or "")
    if not (path / "config.json").is_file():
        raise UserError(
            f"model.init_from: {path} is not a Hugging Face model dir (no config.json there)"
        )
    shaped = sorted(key for key in cfg.overrides if not is_dropout_key(key))
    if shaped:
        raise ConfigError(
            f"model.overrides: {', '.join(shaped)} cannot change an init_from checkpoint (only "
            "dropout rates can, e.g. dropout_rate: 0.0); remove "
            f"{'it' if len(shaped) == 1 else 'them'}"
        )
    return path


def resolved_config(
    cfg: ModelConfig, *, vocab_size: int, special_ids: dict[str, int | None] | None = None
) -> PretrainedConfig:
    """The HF config the model will have, without building weights (for pre-flight checks).

    With ``init_from`` it is the checkpoint's own config (its vocabulary grows at build time).
    """
    if cfg.init_from is None:
        return model_config(cfg, vocab_size=vocab_size, special_ids=special_ids)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        _checked_init_from(cfg), local_files_only=True, **cfg.overrides
    )
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    if seq2seq != ARCHS[cfg.arch].seq2seq:
        kinds = [name for name, arch in ARCHS.items() if arch.seq2seq == seq2seq]
        raise ConfigError(
            f"model.arch={cfg.arch}: model.init_from {cfg.init_from} is "
            f"a{'n encoder-decoder' if seq2seq else ' decoder-only'} "
            f"{config.model_type} model; set model.arch to one of: {', '.join(kinds)}"
        )
    _check_init_from_matches(cfg, config)
    return config


# HF config fields that give a model its shape, across the registered architectures
SHAPE_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "d_model", "num_layers", "num_decoder_layers", "num_heads", "d_ff",
)  # fmt: skip


def _check_init_from_matches(cfg: ModelConfig, loaded: PretrainedConfig) -> None:
    """With ``init_from`` the checkpoint decides the model; an arch, or a preset set in the
    config, that describes another model would be recorded in RUN/config.yaml while the
    checkpoint's trains: refuse it, naming what the checkpoint is."""
    arch = ARCHS[cfg.arch]
    preset = cfg.preset if cfg.preset is not None else next(iter(arch.presets))
    described = model_config(
        cfg.model_copy(update={"init_from": None, "overrides": {}, "preset": preset}), vocab_size=8
    )
    if described.model_type != loaded.model_type:
        matching = [n for n in ARCHS if n == loaded.model_type] or ["the checkpoint's own"]
        raise ConfigError(
            f"model.arch={cfg.arch}: model.init_from {cfg.init_from} is a "
            f"{loaded.model_type} model; set model.arch: {matching[0]}"
        )
    if cfg.preset is None or "preset" not in cfg.model_fields_set:
        return
    differ = [
        f"{key} {getattr(described, key)} vs {getattr(loaded, key)}"
        for key in SHAPE_KEYS
        if hasattr(described, key)
        and hasattr(loaded, key)
        and getattr(described, key) != getattr(loaded, key)
    ]
    if differ:
        raise ConfigError(
            f"model.preset={cfg.preset}: model.init_from {cfg.init_from} has another shape "
            f"({', '.join(differ)}); the checkpoint decides the shape: set model.preset=null "
            "(or the preset it was trained with)"
        )


def is_seq2seq(cfg: ModelConfig) -> bool:
    return ARCHS[cfg.arch].seq2seq


def max_positions(config: PretrainedConfig) -> int | None:
    """Longest sequence the model's position embeddings cover (None when unbounded)."""
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def count_parameters(model: torch.nn.Module, *, exclude_embeddings: bool = False) -> int:
    """Parameter count; without embeddings it is the N of the 6N FLOPs-per-token rule.

    Only the input embedding is left out: it is a lookup, while an untied output layer is a
    matmul every token pays for. Pythia's table of non-embedding parameters (and Kaplan et
    al.'s N) leaves out the output layer too, so its figures are smaller by ``vocab x width``.
    """
    total = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        total -= model.get_input_embeddings().weight.numel()
    return total
