"""Open a checkpoint for evaluation or generation: model, tokenizer, vocabulary layout.

A checkpoint is a plain HF model dir. When synthlm wrote it, it also holds the resolved training
config (``config.yaml``) or ``synthlm.json``, from which we recover the vocabulary layout (where
the meta-language range for synthetic ids starts) and the training ``seq_len``. A foreign HF
model has neither: its layout is inferred as "natural ids = the tokenizer, the rest of the
embedding rows = meta range", which is what synthlm itself would have built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from synthlm.errors import UserError
from synthlm.mixture import VocabLayout

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class Checkpoint:
    """A loaded checkpoint and what synthlm recorded about it."""

    path: Path
    model: Any  # transformers PreTrainedModel, in eval mode
    tokenizer: Any  # transformers tokenizer
    layout: VocabLayout
    config: dict[str, Any]  # the resolved training config ({} for a foreign model)

    @property
    def seq_len(self) -> int | None:
        value = (self.config.get("data") or {}).get("seq_len")
        return int(value) if isinstance(value, int) else None


def resolve_device(name: str):
    """``auto`` = the first GPU when there is one, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available on this machine (use cpu or auto)")
    return device


def check_checkpoint_dir(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found (expected an HF model dir such as RUN/final or RUN/checkpoints/step-N)")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model checkpoint (no config.json); expected RUN/final or RUN/checkpoints/step-N")


def read_training_config(path: Path) -> dict[str, Any]:
    """The resolved config saved with the checkpoint, or {} when there is none."""
    config_file = path / "config.yaml"
    if not config_file.is_file():
        return {}
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{config_file}: not valid YAML: {exc}") from None
    return data if isinstance(data, dict) else {}


def recorded_layout(path: Path) -> VocabLayout | None:
    """The layout from ``synthlm.json`` (``{"layout": {...}}``), if the checkpoint has one."""
    info_file = path / "synthlm.json"
    if not info_file.is_file():
        return None
    try:
        layout = json.loads(info_file.read_text(encoding="utf-8")).get("layout")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise UserError(f"{info_file}: not a valid synthlm checkpoint record: {exc}") from None
    if not isinstance(layout, dict):
        return None
    try:
        return VocabLayout(**{k: int(layout[k]) for k in ("natural_size", "meta_offset", "meta_size", "model_vocab_size")})
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{info_file}: layout is incomplete ({exc}); expected natural_size, meta_offset, meta_size, model_vocab_size") from None


def layout_from_config(config: dict[str, Any], natural_size: int) -> VocabLayout | None:
    """Rebuild the layout as training did: ``build_layout(data, tokenizer size, num_meta_tokens)``."""
    if "data" not in config:
        return None
    from synthlm.config import validate
    from synthlm.mixture import DataConfig, build_layout

    data = validate(DataConfig, config["data"], source="checkpoint config.yaml")
    meta = int((config.get("model") or {}).get("num_meta_tokens") or 0)
    return build_layout(data, natural_size, meta)


def infer_layout(natural_size: int, model_vocab_size: int) -> VocabLayout:
    """Foreign checkpoints: every embedding row past the tokenizer is meta range."""
    return VocabLayout(natural_size, natural_size, max(0, model_vocab_size - natural_size), model_vocab_size)


def checkpoint_layout(path: Path, config: dict[str, Any], natural_size: int, model_vocab_size: int) -> VocabLayout:
    layout = recorded_layout(path) or layout_from_config(config, natural_size) or infer_layout(natural_size, model_vocab_size)
    if layout.model_vocab_size > model_vocab_size:
        raise UserError(
            f"{path}: the recorded vocabulary layout needs {layout.model_vocab_size} ids but the model "
            f"has {model_vocab_size} embedding rows; the checkpoint files do not belong together"
        )
    return layout


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def load_tokenizer_dir(path: Path):
    from transformers import AutoTokenizer

    if not path.is_dir() or not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{path}: no tokenizer files here ({', '.join(TOKENIZER_FILES)}); pass --tokenizer DIR")
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())  # transformers' messages span lines; ours is one
        raise UserError(f"{path}: could not load its tokenizer ({reason}); pass --tokenizer DIR") from None


def load_model_dir(path: Path, device, dtype: str, *, quiet: bool = False):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    if quiet:
        hf_logging.disable_progress_bar()

    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype="auto" if dtype == "auto" else getattr(torch, dtype))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: could not load a causal language model: {exc}") from None
    return model.to(device).eval()


def load_checkpoint(
    path: str | Path, *, device: str = "auto", dtype: str = "auto", tokenizer: str | Path | None = None, quiet: bool = False
) -> Checkpoint:
    """Load model + tokenizer and recover the layout; every input is checked first."""
    path = Path(path)
    check_checkpoint_dir(path)
    torch_device = resolve_device(device)
    config = read_training_config(path)
    tok = load_tokenizer_dir(Path(tokenizer) if tokenizer else path)
    model = load_model_dir(path, torch_device, dtype, quiet=quiet)
    layout = checkpoint_layout(path, config, len(tok), int(model.get_input_embeddings().num_embeddings))
    return Checkpoint(path, model, tok, layout, config)


def run_dir_of(checkpoint: str | Path) -> Path:
    """RUN for ``RUN/checkpoints/step-N`` and ``RUN/final``; the parent dir for any other model."""
    path = Path(checkpoint).resolve()
    if path.parent.name == "checkpoints":
        return path.parent.parent
    return path.parent
