"""Metric records: ``RUN/metrics.jsonl`` always, TensorBoard and W&B when enabled.

One record per log step, ``{"step", "tokens", "loss", "lr", "grad_norm", ...}``, and one per
evaluation, ``{"step", "tokens", "eval/<name>/<metric>"...}``. The jsonl file is appended and
flushed line by line, so a killed run keeps every record written so far; on resume it is cut
back to the checkpoint's step (atomically), so a resumed run's file equals an uninterrupted
one's. TensorBoard gets the same cut through ``purge_step``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from synthlm.errors import UserError
from synthlm.fileio import atomic_write_text

Record = dict[str, Any]


class Sink(Protocol):
    def write(self, record: Record) -> None: ...

    def close(self) -> None: ...


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records of steps <= ``last_step`` (a killed run may have logged past its checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by the kill
            continue
        if record.get("step", math.inf) <= last_step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def read_metrics(path: Path) -> list[Record]:
    """All records of a metrics.jsonl (for reports and tests)."""
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


class JsonlSink:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: Record) -> None:
        self.handle.write(json.dumps(record, allow_nan=True) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class TensorBoardSink:
    def __init__(self, log_dir: Path, purge_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def write(self, record: Record) -> None:
        step = record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(key if "/" in key else f"train/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """W&B run whose id is kept in ``RUN/wandb_id``, so a resumed run continues the same chart."""

    def __init__(
        self, run_dir: Path, project: str, entity: str | None, name: str, config: Record
    ) -> None:
        wandb = require_wandb()
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else wandb.util.generate_id()
        atomic_write_text(id_file, run_id)
        self.run = wandb.init(
            project=project,
            entity=entity,
            name=name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=config,
        )

    def write(self, record: Record) -> None:
        self.run.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def close(self) -> None:
        self.run.finish()


def require_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise UserError(
            "logging.wandb is true but wandb is not installed: pip install "
            "'synthlm[wandb]' (or set logging.wandb=false)"
        ) from None
    return wandb


class MetricsLogger:
    """Fans each record out to every sink (only the main process creates one)."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def write(self, record: Record) -> None:
        for sink in self.sinks:
            sink.write(record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


@dataclass
class IntervalStats:
    """Sums over the steps since the last log record; saved in checkpoints so a resume that
    lands between two log steps still writes the same averages as an uninterrupted run."""

    steps: int = 0
    loss: float = 0.0
    grad_norm: float = 0.0
    grad_norm_steps: int = 0
    skipped: int = 0
    source_loss: list[float] = field(default_factory=list)
    source_targets: list[float] = field(default_factory=list)
    groups: dict[str, float] = field(default_factory=dict)  # <group>_loss_sum / _correct / _tokens

    def add_step(
        self,
        loss: float,
        grad_norm: float | None,
        source_loss: list[float],
        source_targets: list[float],
        groups: dict[str, float] | None = None,
    ) -> None:
        self.steps += 1
        self.loss += loss
        if grad_norm is not None:
            self.grad_norm += grad_norm
            self.grad_norm_steps += 1
        if not self.source_loss:
            self.source_loss = [0.0] * len(source_loss)
            self.source_targets = [0.0] * len(source_targets)
        self.source_loss = [a + b for a, b in zip(self.source_loss, source_loss)]
        self.source_targets = [a + b for a, b in zip(self.source_targets, source_targets)]
        for key, value in (groups or {}).items():
            self.groups[key] = self.groups.get(key, 0.0) + value

    def summary(self, source_names: list[str]) -> Record:
        record: Record = {"loss": self.loss / self.steps} if self.steps else {}
        if self.grad_norm_steps:
            record["grad_norm"] = self.grad_norm / self.grad_norm_steps
        for name, total, count in zip(source_names, self.source_loss, self.source_targets):
            if count:
                record[f"loss/{name}"] = total / count
        if self.skipped:
            record["skipped_steps"] = self.skipped
        record.update(group_means(self.groups))
        return record

    def to_dict(self) -> Record:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Record) -> IntervalStats:
        return cls(**data)


def group_means(sums: dict[str, float]) -> Record:
    """``<group>_loss`` and ``<group>_accuracy`` per token group of an objective (DEPTH:
    reconstruction and sentence), from summed losses, correct argmaxes and token counts."""
    record: Record = {}
    for key, tokens in sums.items():
        group = key.removesuffix("_tokens")
        if key.endswith("_tokens") and tokens:
            record[f"{group}_loss"] = sums.get(f"{group}_loss_sum", math.nan) / tokens
            record[f"{group}_accuracy"] = sums.get(f"{group}_correct", math.nan) / tokens
    return record
