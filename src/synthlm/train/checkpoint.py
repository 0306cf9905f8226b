"""Checkpoints: ``RUN/checkpoints/step-N/``, written to a temporary dir and renamed when complete.

Layout of one checkpoint::

    config.json, model.safetensors, generation_config.json   the HF model (loads without synthlm)
    tokenizer files                                           the natural tokenizer
    config.yaml                                               the resolved run config
    synthlm.json                                              vocabulary layout, step, tokens,
                                                              objective, seq_len, masked_documents
    trainer_state.json                                        step, data cursor, interval sums
    trainer/                                                  accelerate state: optimizer,
                                                              scheduler, grad scaler, every RNG

``trainer/`` is written by ``Accelerator.save_state`` because only accelerate knows how to
gather or shard optimizer state under DeepSpeed ZeRO and FSDP; it loads every file back with
``torch.load(weights_only=True)``. It holds its own copy of the weights (the copy accelerate
restores); the HF files beside it are the portable copy.

A checkpoint is valid only if its directory has the final ``step-N`` name: the rename is the
commit point, so a kill at any moment leaves the previous checkpoints intact plus, at worst, a
``.tmp-step-N`` directory that the next run deletes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthlm.errors import UserError, corrupt_file
from synthlm.fileio import atomic_write_json, fsync_file

STEP_DIR = re.compile(r"^step-(\d+)$")
TEMP_PREFIX = ".tmp-"
STATE_FILE = "trainer_state.json"
INFO_FILE = "synthlm.json"
ACCELERATE_DIR = "trainer"


@dataclass
class TrainerState:
    """Where the run is; with the weights and ``trainer/`` it fully determines what comes next."""

    step: int = 0
    samples: int = 0  # data cursor: training samples consumed (the next step starts here)
    tokens: int = 0
    bad_steps: int = 0
    interval: dict[str, Any] = field(default_factory=dict)  # IntervalStats since the last log
    layout: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # global batch, seq_len, source weights
    total_steps: int = 0  # the step budget the schedule was built for (0: not recorded)
    # decisions on the evaluations so far (synthlm.train.early_stop): a resumed run goes on
    # counting where the checkpoint left off ({}: not watched)
    early_stopping: dict[str, Any] = field(default_factory=dict)
    keep_best: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = STEP_DIR.match(entry.name)
        if match and entry.is_dir() and (entry / STATE_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def resolve_resume(run_dir: Path, resume: str) -> Path | None:
    """The checkpoint to resume from for ``train.resume`` (auto | never | a checkpoint dir)."""
    if resume == "never":
        latest = latest_checkpoint(run_dir)
        if latest is not None:
            raise UserError(
                f"train.resume=never but {run_dir} already holds checkpoints (latest "
                f"{latest.name}); "
                "use train.resume=auto to continue it, or choose a new run_dir"
            )
        return None
    if resume == "auto":
        return latest_checkpoint(run_dir)
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise UserError(
            f"train.resume: {path} is not a synthlm checkpoint (no {STATE_FILE}); use "
            f"auto, never or a checkpoints/step-N dir"
        )
    return path


def read_state(checkpoint: Path) -> TrainerState:
    """The checkpoint's trainer state; a corrupt file is named, with what to do about it."""
    path = Path(checkpoint) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        hint = (
            f"delete (or move away) {checkpoint} to resume from the checkpoint before it, "
            "or set train.resume=never"
        )
        raise corrupt_file(path, "trainer state", exc, hint) from None
    return TrainerState.from_dict(data)


MIN_FREE_BYTES = 1 << 20  # below this, a failed checkpoint write is reported as a full disk


@contextlib.contextmanager
def write_errors(directory: Path) -> Iterator[None]:
    """Name the checkpoint when writing it fails, and call a full disk a full disk.

    ``torch.save`` reports a failed write (ENOSPC included) as ``RuntimeError: ... unexpected
    pos`` / ``PytorchStreamWriter failed writing file``, with neither the file nor the cause.
    """
    try:
        yield
    except RuntimeError as exc:
        text = str(exc)
        if "unexpected pos" not in text and "PytorchStreamWriter" not in text:
            raise
        where = Path(directory) if Path(directory).exists() else Path(directory).parent
        free = shutil.disk_usage(where).free
        if free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory)) from exc
        raise UserError(
            f"{directory}: writing the checkpoint failed ({text.splitlines()[0]}); "
            "check the disk, then rerun the same command to resume"
        ) from exc


@contextlib.contextmanager
def read_errors(checkpoint: Path) -> Iterator[None]:
    """Name a damaged checkpoint when loading its training state fails, with what to do.

    A truncated ``optimizer.bin`` surfaces from torch as a bare ``OSError: Invalid argument``
    (its mmap) or ``PytorchStreamReader failed reading zip archive``, a cut safetensors file as
    ``SafetensorError``: none says the file is damaged or that the checkpoint before it can
    be resumed from. Other errors (a bug, a config that changed the optimizer) pass through.
    """
    import pickle

    from safetensors import SafetensorError

    try:
        yield
    except (OSError, EOFError, pickle.UnpicklingError, SafetensorError, RuntimeError) as exc:
        damaged = ("PytorchStreamReader", "central directory", "EOF")
        other_runtime_error = isinstance(exc, RuntimeError) and not isinstance(exc, SafetensorError)
        if other_runtime_error and not any(m in str(exc) for m in damaged):
            raise
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise
        name = getattr(exc, "filename", None) or damaged_file(checkpoint) or checkpoint
        hint = (
            f"delete (or move away) {checkpoint} to resume from the checkpoint before it, or "
            "set train.resume=never"
        )
        if "central directory" in str(exc):  # torch's message runs on for three sentences
            exc = RuntimeError("cut short: the archive has no end")
        raise corrupt_file(name, "checkpoint file", exc, hint) from None


def damaged_file(checkpoint: Path) -> Path | None:
    """The first file of a checkpoint that is cut short: a torch file (a zip archive) without
    its central directory, or a safetensors file shorter than its header says. torch's error
    names neither the file nor the checkpoint."""
    import zipfile

    for path in sorted(Path(checkpoint).rglob("*")):
        if path.suffix in (".bin", ".pt", ".pth") and not zipfile.is_zipfile(path):
            return path
        if path.suffix == ".safetensors" and not _whole_safetensors(path):
            return path
    return None


def _whole_safetensors(path: Path) -> bool:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return False
        length = int.from_bytes(head, "little")
        if 8 + length > size:
            return False
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return False
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return 8 + length + max(ends, default=0) <= size


def temp_dir(run_dir: Path, step: int) -> Path:
    """Same name on every rank, so all of them write into one staging directory."""
    return checkpoints_dir(run_dir) / f"{TEMP_PREFIX}step-{step}"


def remove_stale(run_dir: Path) -> None:
    """Delete staging dirs a killed run left behind."""
    root = checkpoints_dir(run_dir)
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(TEMP_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)


def commit(staging: Path, final: Path) -> Path:
    """Flush every file, then rename the staging dir to its final name (the commit point)."""
    for path in staging.rglob("*"):
        if path.is_file():
            fsync_file(path)
    os.replace(staging, final)
    _fsync_dir(final.parent)
    return final


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(run_dir: Path, keep_last: int, keep: Collection[int] = ()) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints and those of the steps in
    ``keep`` (``train.keep_best``'s best k, never deleted while they rank)."""
    found = list_checkpoints(run_dir)
    older = found[: max(len(found) - keep_last, 0)]
    doomed = [path for step, path in older if step not in keep]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def write_info(directory: Path, state: TrainerState, extra: dict[str, Any] | None = None) -> None:
    """``synthlm.json``: what a model dir needs beyond HF files (the meta-language id layout)."""
    from synthlm import __version__

    info = {
        "synthlm_version": __version__,
        "step": state.step,
        "tokens": state.tokens,
        "layout": state.layout,
        **(extra or {}),
    }
    atomic_write_json(directory / INFO_FILE, info)


@contextlib.contextmanager
def reserved_ids_suppressed(model: Any, natural_size: int) -> Iterator[None]:
    """While saving: make ``generation_config.json`` suppress the ids past the natural vocabulary
    (meta-language and padding rows, which decode to ''), so plain ``model.generate`` and tools
    reading that file sample text the way ``synthlm generate`` does.

    Only the saved file carries it: the live model keeps generating meta ids for synthetic-task
    evaluation, and synthlm's own meta-id generation passes ``suppress_tokens=None``. Rows come
    from the model config (the output layer's size, padded; the weight itself may be a shard or
    empty under FSDP / ZeRO-3).
    """
    config = model.generation_config
    before = config.suppress_tokens
    rows = model.config.get_text_config().vocab_size
    if rows > natural_size:
        config.suppress_tokens = list(range(natural_size, rows))
    try:
        yield
    finally:
        config.suppress_tokens = before


def write_chat_template(directory: Path, config: Any) -> None:
    """Keep a chat run's template beside its tokenizer files (``chat_template.jinja``).

    The template a chat store was rendered with is what the model learned; saving it with the
    checkpoint lets ``synthlm chat`` and plain ``AutoTokenizer`` use it after the training
    stores are gone.
    """
    from synthlm.config import to_plain
    from synthlm.text.chat_format import trained_template

    template = trained_template(to_plain(config))
    if template:
        (Path(directory) / "chat_template.jinja").write_text(template, encoding="utf-8")


def set_aside_later_checkpoints(run_dir: Path, step: int) -> list[Path]:
    """Move checkpoints newer than ``step`` to ``checkpoints.abandoned/`` (kept, never deleted).

    Resuming from an older checkpoint starts a new future; the old later checkpoints must not
    be mistaken for it (``resume: auto`` would pick them up, and pruning would keep them over
    the new ones).
    """
    moved = []
    aside = Path(run_dir) / "checkpoints.abandoned"
    for later_step, path in list_checkpoints(run_dir):
        if later_step > step:
            aside.mkdir(parents=True, exist_ok=True)
            target = aside / path.name
            if target.exists():
                shutil.rmtree(target)
            os.replace(path, target)
            moved.append(target)
    return moved
