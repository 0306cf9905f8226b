"""Open a checkpoint for evaluation or generation: model, tokenizer, vocabulary layout.

A checkpoint is a plain HF model dir. When synthlm wrote it, it also holds the resolved training
config (``config.yaml``) or ``synthlm.json``, from which we recover the vocabulary layout (where
the meta-language range for synthetic ids starts) and the training ``seq_len``. A foreign HF
model has neither: its layout is inferred as "natural ids = the tokenizer, the rest of the
embedding rows = meta range", which is what synthlm itself would have built.

Decoder-only checkpoints load with ``AutoModelForCausalLM``; encoder-decoder ones (``synthlm
train`` with ``model.arch: t5``, or any HF seq2seq model) with ``AutoModelForSeq2SeqLM``, chosen
from ``config.json`` before any weights are read. Commands that only make sense for a decoder-only

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer
model (``synthlm eval --data``, ``synthlm chat``) refuse a seq2seq one up front with
:func:`refuse_encoder_decoder` instead of crashing halfway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from synthlm.config import yaml_error
from synthlm.data.mixture import ModelVocab
from synthlm.errors import UserError

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class Checkpoint:
    """A loaded checkpoint and what synthlm recorded about it."""

    path: Path
    model: Any  # transformers PreTrainedModel, in eval mode
    tokenizer: HFTokenizer  # transformers tokenizer
    layout: ModelVocab
    config: dict[str, Any]  # the resolved training config ({} for a foreign model)

    @property
    def seq2seq(self) -> bool:
        """An encoder-decoder model: prompts feed the encoder, the decoder writes the output."""
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

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
        raise UserError(
            f"--device {name!r}: not a device (use auto, cpu, cuda or cuda:N)"
        ) from None
    if device.type not in ("cpu", "cuda"):  # mps, xpu, meta: not paths synthlm runs or tests
        raise UserError(
            f"--device {name}: use auto, cpu, cuda or cuda:N (got a {device.type} device)"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"--device {name}: no CUDA device is available on this machine (use cpu or auto)"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def check_checkpoint_dir(path: Path) -> None:
    if not path.exists():
        raise UserError(
            f"{path}: checkpoint not found (expected an HF model dir such as RUN/final or "
            f"RUN/checkpoints/step-N)"
        )
    if not (path / "config.json").is_file():
        raise UserError(
            f"{path}: not a model checkpoint (no config.json); expected RUN/final or "
            f"RUN/checkpoints/step-N"
        )


def read_model_config(path: Path) -> dict[str, Any]:
    """``config.json`` as a dict (checked by :func:`check_checkpoint_dir` to exist)."""
    config_file = path / "config.json"
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{config_file}: not a readable model config ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{config_file}: not a model config (expected a JSON object)")
    return data


def is_encoder_decoder(path: str | Path) -> bool:
    """Whether the checkpoint at ``path`` is an encoder-decoder (seq2seq) model.

    ``is_encoder_decoder`` in config.json settles it; configs written without the flag still name
    their class in ``architectures``, which we look up among transformers' seq2seq LM classes.
    """
    config = read_model_config(Path(path))
    if config.get("is_encoder_decoder"):
        return True
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

    seq2seq_classes = set(MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES.values())
    return any(name in seq2seq_classes for name in config.get("architectures") or [])


def refuse_encoder_decoder(path: str | Path, command: str, why: str) -> None:
    """Stop ``command`` before loading weights when ``path`` holds an encoder-decoder model."""
    if is_encoder_decoder(path):
        raise UserError(
            f"{path}: an encoder-decoder (seq2seq, e.g. T5) checkpoint, but {command} "
            f"needs a decoder-only "
            f"model ({why}). Score an encoder-decoder run with its own objective via "
            f"`synthlm train CONFIG eval_only=true` (CONFIG: the run's config, e.g. "
            f"{Path(path) / 'config.yaml'}), "
            f"or sample from it with `synthlm generate {path} -p PROMPT`"
        )


def read_training_config(path: Path) -> dict[str, Any]:
    """The resolved config saved with the checkpoint, or {} when there is none."""
    config_file = path / "config.yaml"
    if not config_file.is_file():
        return {}
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(yaml_error(config_file, exc)) from None
    return data if isinstance(data, dict) else {}


def recorded_layout(path: Path) -> ModelVocab | None:
    """The layout from ``synthlm.json`` (``{"layout": {...}}``), if the checkpoint has one."""
    info_file = path / "synthlm.json"
    layout = read_info(path).get("layout")
    if not isinstance(layout, dict):
        return None
    try:
        return ModelVocab(
            **{
                k: int(layout[k])
                for k in ("natural_size", "meta_offset", "meta_size", "model_vocab_size")
            }
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(
            f"{info_file}: layout is incomplete ({exc}); expected natural_size, "
            f"meta_offset, meta_size, model_vocab_size"
        ) from None


FLAGS = "pass --document-mask or --no-document-mask"  # what synthlm eval can do about it


@dataclass(frozen=True)
class Masking:
    """How a run masked packed documents: whether its objective masked any, and whether natural
    text was among them (what scoring held-out natural text the way it trained needs)."""

    objective: bool = False
    natural: bool = False


def trained_masking(path: Path, config: dict[str, Any]) -> Masking:
    """How the checkpoint at ``path`` trained: ``synthlm.json`` records ``masked_documents``.

    Checkpoints from before that record (2026-12-01) masked every source's documents whenever
    the mask was on: their ``document_mask`` record, or their config resolved by today's rule
    for whether any kind was masked. A foreign model trained on plain causal windows.
    """
    info = read_info(path)
    if isinstance(info.get("masked_documents"), list):
        kinds = set(info["masked_documents"])
        return Masking(bool(kinds), "natural" in kinds)
    legacy = info.get("document_mask")
    if not isinstance(legacy, bool):
        legacy = bool(config_masked_kinds(config, path / "config.yaml")) if config else False
    return Masking(legacy, legacy)


def run_masks_natural(run_dir: Path, config: dict[str, Any]) -> bool:
    """Whether the run at ``run_dir`` masked its natural documents: its newest saved model's
    record when there is one, else its config by today's rule."""
    from synthlm.train.checkpoint import list_checkpoints

    saved = [run_dir / "final", *(path for _, path in reversed(list_checkpoints(run_dir)))]
    for path in saved:
        if (path / "synthlm.json").is_file():
            return trained_masking(path, config).natural
    if not config:
        return False
    fix = "--equal-tokens needs to know how each run trained its natural text"
    return "natural" in config_masked_kinds(config, run_dir / "config.yaml", fix)


def read_info(path: Path) -> dict[str, Any]:
    """``synthlm.json`` of a checkpoint as a dict ({} when absent)."""
    info_file = path / "synthlm.json"
    if not info_file.is_file():
        return {}
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{info_file}: not a valid synthlm checkpoint record: {exc}") from None
    if not isinstance(info, dict):
        raise UserError(f"{info_file}: not a valid synthlm checkpoint record (not an object)")
    return info


def config_masked_kinds(config: dict[str, Any], source: Path, fix: str = FLAGS) -> frozenset[str]:
    """Kinds a saved run config (``source``) masks, resolved as training does today."""
    from synthlm.train.run_plan import masked_documents

    return masked_documents(*_saved_sections(config, source, fix))


@dataclass(frozen=True)
class Scoring:
    """How a checkpoint's run read and scored natural text (see :func:`scoring_objective`)."""

    objective: Any
    packing: bool
    natural_masked: bool  # natural documents masked from each other
    shared_boundary: bool  # data.shared_boundary: rows of seq_len + 1 tokens


def scoring_objective(
    path: Path, config: dict[str, Any], document_mask: bool | None = None
) -> Scoring:
    """How to score natural text the way this checkpoint trained: its run's decoder objective
    (targets, loss masks), its masking (see :func:`trained_masking`; ``document_mask``
    overrides both), ``data.packing`` and ``data.shared_boundary``; plain causal LM on packed
    windows for a model trained elsewhere."""
    from synthlm.errors import ConfigError
    from synthlm.objectives import get_objective

    if document_mask is None:
        masking = trained_masking(path, config)
    else:
        masking = Masking(document_mask, document_mask)
    if not config:
        return Scoring(
            get_objective("clm", document_mask=masking.objective), True, masking.natural, False
        )
    objective, data = _saved_sections(config, path / "config.yaml")
    options = {**objective.options(), "document_mask": masking.objective}
    try:
        scorer = get_objective(objective.name, **options)
    except (TypeError, ConfigError) as exc:
        raise UserError(
            f"{path / 'config.yaml'}: objective {objective.name!r} cannot score natural text "
            f"({exc})"
        ) from None
    if data is None:
        return Scoring(scorer, True, masking.natural, False)
    return Scoring(scorer, data.packing, masking.natural, data.shared_boundary)


def trained_loss_average(path: Path, config: dict[str, Any]) -> str:
    """How the checkpoint's run averaged its training loss (``train.loss_average``), so that
    its natural sets are scored as its eval loss was; per token for a model trained elsewhere."""
    from typing import get_args

    from synthlm.train.config import TrainConfig

    value = (config.get("train") or {}).get("loss_average", "tokens")
    allowed = get_args(TrainConfig.model_fields["loss_average"].annotation)
    if value not in allowed:
        raise UserError(
            f"{path / 'config.yaml'}: train.loss_average is {value!r}; expected one of "
            f"{', '.join(allowed)}"
        )
    return value


def _saved_sections(config: dict[str, Any], source: Path, fix: str = FLAGS) -> tuple[Any, Any]:
    """(objective, data) sections of a saved run config, validated; the error names ``source``
    and ``fix``, what the user can do about it."""
    from synthlm.config import validate
    from synthlm.data.mixture import DataConfig
    from synthlm.errors import ConfigError
    from synthlm.train.config import ObjectiveConfig

    try:
        objective = validate(ObjectiveConfig, config.get("objective") or {}, source=str(source))
        data = (
            validate(DataConfig, config["data"], source=str(source)) if config.get("data") else None
        )
    except ConfigError as exc:
        raise UserError(
            f"{source}: cannot tell how this run trained ({str(exc).splitlines()[0]}); {fix}"
        ) from None
    return objective, data


def layout_from_config(config: dict[str, Any], natural_size: int) -> ModelVocab | None:
    """Rebuild the layout as training did: ``build_layout(data, tokenizer size, num_meta_tokens)``."""
    if "data" not in config:
        return None
    from synthlm.config import validate
    from synthlm.data.mixture import DataConfig, build_layout

    data = validate(DataConfig, config["data"], source="checkpoint config.yaml")
    model = config.get("model") or {}
    meta = int(model.get("num_meta_tokens") or 0)
    return build_layout(data, natural_size, meta, multiple=int(model.get("vocab_multiple") or 64))


def infer_layout(natural_size: int, model_vocab_size: int) -> ModelVocab:
    """Foreign checkpoints: every embedding row past the tokenizer is meta range."""
    return ModelVocab(
        natural_size, natural_size, max(0, model_vocab_size - natural_size), model_vocab_size
    )


def checkpoint_layout(
    path: Path, config: dict[str, Any], natural_size: int, model_vocab_size: int
) -> ModelVocab:
    layout = (
        recorded_layout(path)
        or layout_from_config(config, natural_size)
        or infer_layout(natural_size, model_vocab_size)
    )
    if layout.model_vocab_size > model_vocab_size:
        raise UserError(
            f"{path}: the recorded vocabulary layout needs {layout.model_vocab_size} ids "
            f"but the model "
            f"has {model_vocab_size} embedding rows; the checkpoint files do not belong together"
        )
    return layout


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def check_tokenizer_override(given: Path, tok: Any, checkpoint: Path) -> None:
    """``--tokenizer`` must read text as the checkpoint's own tokenizer does (it may add ids:
    a pad token, a chat template); another one would feed the model ids that mean other tokens
    and every command would still answer, with garbage. Checked on a probe text, when the
    checkpoint holds a tokenizer that loads (a missing or broken one is why --tokenizer exists)."""
    from synthlm.data.provenance import PROBE

    if not any((checkpoint / name).is_file() for name in TOKENIZER_FILES):
        return
    try:
        own = load_tokenizer_dir(checkpoint)
    except UserError:
        return

    def ids(t: Any) -> list[int]:
        return list(t(PROBE, add_special_tokens=False)["input_ids"])

    if ids(own) == ids(tok) and len(own) <= len(tok):
        return
    raise UserError(
        f"--tokenizer {given}: encodes text differently from the checkpoint's own tokenizer "
        f"({checkpoint}, {len(own)} ids; this one has {len(tok)}): the model would read ids "
        "that mean other tokens; drop --tokenizer to use the checkpoint's"
    )


def load_tokenizer_dir(path: Path):
    from transformers import AutoTokenizer

    if not path.is_dir() or not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(
            f"{path}: no tokenizer files here ({', '.join(TOKENIZER_FILES)}); pass --tokenizer DIR"
        )
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())  # transformers' messages span lines; ours is one
        raise UserError(
            f"{path}: could not load its tokenizer ({reason}); pass --tokenizer DIR"
        ) from None


def load_model_dir(path: Path, device, dtype: str, *, quiet: bool = False):
    """The model in eval mode on ``device``: causal LM, or seq2seq LM for an encoder-decoder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
    from transformers.utils import logging as hf_logging

    if quiet:
        hf_logging.disable_progress_bar()

    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    seq2seq = is_encoder_decoder(path)
    auto, kind = (
        (AutoModelForSeq2SeqLM, "an encoder-decoder")
        if seq2seq
        else (AutoModelForCausalLM, "a causal")
    )
    try:
        model = auto.from_pretrained(
            str(path), dtype="auto" if dtype == "auto" else getattr(torch, dtype)
        )
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: could not load {kind} language model: {exc}") from None
    return model.to(device).eval()


def load_checkpoint(
    path: str | Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | Path | None = None,
    quiet: bool = False,
) -> Checkpoint:
    """Load model + tokenizer and recover the layout; every input is checked first."""
    path = Path(path)
    check_checkpoint_dir(path)
    torch_device = resolve_device(device)
    config = read_training_config(path)
    tok = load_tokenizer_dir(Path(tokenizer) if tokenizer else path)
    if tokenizer:
        check_tokenizer_override(Path(tokenizer), tok, path)
    model = load_model_dir(path, torch_device, dtype, quiet=quiet)
    layout = checkpoint_layout(
        path, config, len(tok), int(model.get_input_embeddings().num_embeddings)
    )
    return Checkpoint(path, model, tok, layout, config)


def run_dir_of(checkpoint: str | Path) -> Path:
    """RUN for ``RUN/checkpoints/step-N`` and ``RUN/final``; the parent dir for any other model."""
    path = Path(checkpoint).resolve()
    if path.parent.name == "checkpoints":
        return path.parent.parent
    return path.parent
