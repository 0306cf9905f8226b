"""The training run's config schema (``synthlm train CONFIG... key=value``).

Sections mirror the pipeline: ``model`` -> ``data`` -> ``objective`` -> ``optim`` /
``schedule`` -> ``train`` (budget, batch, checkpoints) -> ``logging``. Each section's schema
lives next to the code that uses it; this module only assembles them and checks the rules that
span sections.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeInt,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from synthlm.config import Count, KeyPath, Section, located_error, merge_sources, validate
from synthlm.data.mixture import DataConfig
from synthlm.evaluate.lm_eval_bridge import LMEvalConfig
from synthlm.finetune.config import FinetuneConfig
from synthlm.models import Dtype, ModelConfig
from synthlm.train.early_stop import (
    EarlyStoppingConfig,
    KeepBestConfig,
    config_error,
    watched_problems,
)
from synthlm.train.optim import OptimConfig
from synthlm.train.schedules import ScheduleConfig


class ObjectiveConfig(Section):
    """The training objective by name; every other key is an option of that objective.

    The name and options are checked against the objective registry and the named objective's
    typed options model (``Objective.Options``) by :func:`check_objective`, the planner's first
    step, with the file or override that set each key: here the schema stays free of torch
    (the objectives import it), so loading a config stays fast.
    """

    model_config = ConfigDict(extra="allow", validate_default=True, protected_namespaces=())

    name: str = Field(
        "clm",
        description="Objective from the registry: clm, sft, span_corruption, depth, "
        "text_to_text (mode ft).",
    )

    def options(self) -> dict[str, Any]:
        """The options as written (what the objective is built from)."""
        return dict(self.model_extra or {})

    def resolved_options(self, mode: str = "json") -> dict[str, Any] | None:
        """Every option of the named objective, defaults included; None when the name or an
        option is invalid (:func:`check_objective` reports that, naming the file that set it).

        Imports the objective (torch): only dumping and comparing configs call it, never loading.
        """
        from pydantic import ValidationError

        from synthlm.objectives import OBJECTIVES

        if self.name not in OBJECTIVES:
            return None
        try:
            options = OBJECTIVES.options_model(self.name).model_validate(self.options())
        except ValidationError:
            return None
        return options.model_dump(mode=mode)

    @model_serializer(mode="wrap")
    def _dump_with_defaults(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """Dump the objective's defaults too, as every other section is dumped: the dry-run and
        RUN/config.yaml then show what the run trains with (``construction``, ``splitter``...),
        not only what the user happened to write."""
        written = handler(self)
        resolved = self.resolved_options(info.mode)
        return written if resolved is None else {"name": written["name"], **resolved}

    def __eq__(self, other: object) -> bool:
        """Equal when they train the same way: a config saved with the defaults filled in (since
        they are dumped) equals the one it was saved from, and one saved before that."""
        if not isinstance(other, ObjectiveConfig):
            return NotImplemented
        if self.name != other.name:
            return False
        mine, theirs = self.resolved_options("python"), other.resolved_options("python")
        if mine is None or theirs is None:
            return self.options() == other.options()
        return mine == theirs


class LossScaleConfig(Section):
    """DeepSpeed's dynamic fp16 loss scale; its ``fp16`` config keys in brackets.

    Recipes trained under DeepSpeed (GPT-NeoX, hence Pythia) state these numbers; torch's
    GradScaler, the default, follows another rule (see :mod:`synthlm.train.loss_scale`).
    """

    initial: float = Field(
        65536.0, gt=0, description="Starting scale, a power of two (2**initial_scale_power)."
    )
    window: int = Field(
        1000, ge=1, description="Clean steps before the scale doubles (loss_scale_window)."
    )
    hysteresis: int = Field(
        2, ge=1, description="Overflows tolerated before the scale halves (hysteresis)."
    )
    min: float = Field(
        1.0, gt=0, description="Floor of the scale; an overflow there stops (min_loss_scale)."
    )

    @model_validator(mode="after")
    def _power_of_two_above_floor(self) -> LossScaleConfig:
        if not math.log2(self.initial).is_integer():
            raise ValueError(
                f"initial: {self.initial:g} is not a power of two (DeepSpeed's "
                "initial_scale_power); use e.g. 4096 or 65536"
            )
        if self.min > self.initial:
            raise ValueError(f"min ({self.min:g}) must not exceed initial ({self.initial:g})")
        return self

    def deepspeed_fp16(self) -> dict[str, float | int]:
        """The same rule as a DeepSpeed config's ``fp16`` keys (``loss_scale: 0``: dynamic)."""
        return {
            "loss_scale": 0,
            "initial_scale_power": round(math.log2(self.initial)),
            "loss_scale_window": self.window,
            "hysteresis": self.hysteresis,
            "min_loss_scale": self.min,
        }


class TrainConfig(Section):
    """Budget, batch, precision and the checkpoint / log / eval cadence."""

    max_steps: int | None = Field(None, gt=0, description="Optimizer steps to train for.")
    max_tokens: Count | None = Field(
        None, gt=0, description="Training tokens (rounded up to whole steps)."
    )
    epochs: float | None = Field(
        None, gt=0, description="Passes over all sources' tokens together."
    )
    batch_size: int = Field(8, gt=0, description="Sequences per device per micro-batch.")
    grad_accum: int | None = Field(
        None,
        gt=0,
        description="Micro-batches per optimizer step; default 1, or derived from "
        "global_batch_size.",
    )
    global_batch_size: int | None = Field(
        None,
        gt=0,
        description="Sequences per optimizer step over all devices; must divide by "
        "batch_size x processes.",
    )
    precision: Dtype = Field(
        "fp32", description="Autocast precision of the forward/backward: fp32, bf16 or fp16."
    )
    matmul_precision: Literal["highest", "high", "medium"] = Field(
        "highest",
        description="torch.set_float32_matmul_precision for fp32 matrix products: highest "
        "(full fp32, torch's default), high (TF32 on GPUs that have it) or medium (bf16 "
        "products where supported). Applies to fp32 work, including fp32 weights outside "
        "autocast.",
    )
    loss_scale: LossScaleConfig | None = Field(
        None,
        description="fp16 only: DeepSpeed's dynamic loss scale (initial, window, hysteresis, "
        "min) instead of torch's GradScaler (null).",
    )
    loss_average: Literal["tokens", "micro_batch"] = Field(
        "tokens",
        description="How an optimizer step averages token losses. tokens: over every target "
        "of the global batch, so each target weighs the same, whatever the split into "
        "processes and micro-batches. micro_batch: each micro-batch of batch_size rows "
        "averages over its own targets and the step averages those means, as a "
        "CrossEntropyLoss(reduction='mean') under DDP and gradient accumulation does "
        "(Lightning, Rocket, nanoT5, the HF Trainer before 4.46); micro-batches without a "
        "target are left out. The two differ when rows carry different numbers of targets "
        "(padding, loss masks).",
    )
    clip_grad: float | None = Field(
        1.0, gt=0, description="Clip the global gradient norm to this (null: no clipping)."
    )
    max_bad_steps: int = Field(
        0,
        ge=0,
        description="Non-finite losses to skip before stopping the run (0: stop at the first).",
    )
    checkpoint_every: int = Field(
        1000, ge=0, description="Save a checkpoint every N steps (0: only at the end)."
    )
    keep_last: int = Field(3, gt=0, description="Checkpoints to keep (oldest deleted first).")
    keep_best: KeepBestConfig | None = Field(
        None,
        description="Also keep the k checkpoints with the best eval metric, {k, metric, mode} "
        "or just k (ranked by early_stopping's metric): an evaluation that enters the best k "
        "saves a checkpoint, pruning never deletes one of them, and RUN/best_checkpoints.json "
        "ranks them (Lightning's ModelCheckpoint save_top_k). Needs eval_every > 0.",
    )
    resume: str = Field(
        "auto",
        description="auto: continue from the latest checkpoint in run_dir; never; or a "
        "checkpoint dir.",
    )
    log_every: int = Field(10, gt=0, description="Steps between metric records.")
    eval_every: NonNegativeInt | Literal["epoch"] = Field(
        0,
        description="Steps between evaluations (0: only at the end), or 'epoch': at the step "
        "where each pass over the training data ends (validation once an epoch, as Lightning "
        "runs it).",
    )
    eval_on_start: bool = Field(
        False,
        description="Also evaluate once before the first step of a fresh run (a step-0 record: "
        "where the learning curve starts), as the HF Trainer's eval_on_start does. Early "
        "stopping and keep_best do not count it (no checkpoint holds step 0); a resumed run "
        "keeps its record and does not repeat it.",
    )
    eval_draws: Literal["fixed", "per_evaluation"] = Field(
        "fixed",
        description="What an evaluation's random choices are: fixed (drawn once: every "
        "evaluation scores the same corrupted windows and the same drawn pair inputs and "
        "targets, so evaluations compare exactly) or per_evaluation (drawn anew at each "
        "evaluation, keyed by its step, as the original collators draw: T5 / DEPTH masks of "
        "the eval windows; a natural-instructions pair's encoding, target and <sent_i> ids). "
        "Only for runs whose evaluation draws something.",
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        None,
        description="Stop when an eval metric stops improving, {metric, mode, patience, "
        "min_delta, check_finite} as Lightning's EarlyStopping: patience counts evaluations "
        "(every eval_every steps) without an improvement of more than min_delta; the run then "
        "ends as at its last step (checkpoint, RUN/final). null: off. Needs eval_every > 0.",
    )
    eval_batch_size: int | None = Field(
        None, gt=0, description="Sequences per eval batch (default: batch_size)."
    )
    lm_eval: LMEvalConfig | None = Field(
        None,
        description="lm-evaluation-harness tasks to run during training (needs synthlm[eval]).",
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes building samples.")

    @property
    def eval_batch(self) -> int:
        """Sequences per evaluation batch: eval_batch_size, else batch_size."""
        return self.eval_batch_size or self.batch_size

    @field_validator("loss_scale")
    @classmethod
    def _loss_scale_needs_fp16(
        cls, value: LossScaleConfig | None, info: ValidationInfo
    ) -> LossScaleConfig | None:
        precision = info.data.get("precision")
        if value is not None and precision != "fp16":
            raise ValueError(
                f"applies to train.precision fp16 only (this run: {precision}); "
                "set train.loss_scale=null"
            )
        return value

    @field_validator("keep_best", mode="before")
    @classmethod
    def _k_alone(cls, value: Any) -> Any:
        """``keep_best: 3`` means ``{k: 3}``, ranked by early_stopping's metric."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"k": value}
        return value

    @model_validator(mode="after")
    def _watching_needs_evaluations(self) -> TrainConfig:
        """Early stopping and best-k rank evaluations made during training; keep_best's metric
        and mode default to early_stopping's (the usual pair: stop on it, keep the best by it)."""
        for name in ("early_stopping", "keep_best"):
            if getattr(self, name) is not None and self.eval_every == 0:
                raise config_error(
                    (name,),
                    "needs evaluations during training: set train.eval_every > 0 (steps "
                    "between evaluations; each evaluation is one check)",
                    self.eval_every,
                )
        best = self.keep_best
        if best is not None and best.metric is None:
            if self.early_stopping is None:
                raise config_error(
                    ("keep_best", "metric"),
                    "set the metric to rank checkpoints by (e.g. eval/val/loss), or set "
                    "train.early_stopping, whose metric it then uses",
                    None,
                )
            best.metric = self.early_stopping.metric
            best.mode = best.mode or self.early_stopping.mode
        if best is not None and best.mode is None:
            best.mode = "min"
        return self

    @model_validator(mode="after")
    def _one_budget(self) -> TrainConfig:
        given = [
            name
            for name in ("max_steps", "max_tokens", "epochs")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            # two budgets usually come from two stacked files (or a file and an override)
            hint = (
                f"; keep one by unsetting the others, e.g. train.{given[0]}=null keeps "
                f"{', '.join(given[1:])}"
                if len(given) > 1
                else ""
            )
            raise ValueError(
                f"set exactly one of max_steps, max_tokens, epochs (got "
                f"{', '.join(given) or 'none'}){hint}"
            )
        return self


class LoggingConfig(Section):
    """Where metrics go besides ``RUN/metrics.jsonl`` (always written)."""

    tensorboard: bool = Field(True, description="Write TensorBoard events to RUN/tensorboard.")
    wandb: bool = Field(
        False,
        description="Log to Weights & Biases (needs `pip install wandb`; key from WANDB_API_KEY).",
    )
    wandb_project: str = "synthlm"
    wandb_entity: str | None = None
    run_name: str | None = Field(
        None, description="Display name for trackers (default: the run dir's name)."
    )
    progress: bool = Field(True, description="Show a progress bar on the console.")
    peak_flops: float | None = Field(
        None,
        gt=0,
        description="Peak FLOP/s of one device, for MFU; default: the dense bf16 peak of "
        "a known GPU (H100/H200, A100, ...); no MFU is logged on CPUs or "
        "unknown devices unless set.",
    )


class RunConfig(Section):
    """Everything one training run needs; saved resolved as RUN/config.yaml."""

    run_dir: Path = Field(description="Output directory: checkpoints, final model, metrics.")
    seed: int = Field(
        0,
        ge=0,
        lt=2**32,
        description="Seeds the initial weights and the data order (0 to 2**32-1).",
    )
    mode: Literal["pt", "ft"] = Field(
        "pt",
        description="pt: pretrain on data.sources with the objective; ft: text-to-text "
        "training on finetune's input/target pairs (encoder-decoder models).",
    )
    eval_only: bool = Field(
        False,
        description="Evaluate the latest checkpoint in run_dir (else model.init_from) on "
        "the eval data, log the metrics and stop.",
    )
    predict_only: bool = Field(
        False,
        description="mode ft: write the model's outputs for finetune.test (else valid) to "
        "RUN/predictions.jsonl and stop.",
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig | None = Field(None, description="Token-store sources (mode pt).")
    finetune: FinetuneConfig | None = Field(None, description="Input/target pair files (mode ft).")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    train: TrainConfig
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _mode_has_its_data(self) -> RunConfig:
        if self.mode == "pt" and self.data is None:
            raise ValueError(
                "mode pt needs a data section (data.sources: token stores to train on)"
            )
        if self.mode == "ft":
            if self.finetune is None:
                raise ValueError(
                    "mode ft needs a finetune section (finetune.train / valid / test: "
                    "input/target pair files)"
                )
            if "name" not in self.objective.model_fields_set:
                self.objective.name = "text_to_text"  # what ft trains, unless set explicitly
        if self.eval_only and self.predict_only:
            raise ValueError("set eval_only or predict_only, not both")
        if self.predict_only and self.mode != "ft":
            raise ValueError("predict_only writes text-to-text predictions; it needs mode ft")
        return self

    @model_validator(mode="after")
    def _watched_metrics_are_logged(self) -> RunConfig:
        """train.early_stopping / keep_best watch a metric of a data.eval set, checked before
        any work (mode ft's set is named by its pair file: the trainer checks that one)."""
        if self.mode != "pt" or self.data is None:
            return self
        sets = {eval_set.name: eval_set.kind for eval_set in self.data.eval}
        for name, problem in watched_problems(self.train, sets):
            metric = getattr(self.train, name).metric
            raise config_error(("train", name, "metric"), problem, metric)
        return self

    @model_validator(mode="after")
    def _overflow_rule_needs_fp16(self) -> RunConfig:
        """Only fp16's loss scaler skips steps on overflow; elsewhere nothing ever asks
        whether the schedule holds, so ``advance`` would be read as a rule the run follows."""
        on_overflow = self.schedule.on_overflow
        if on_overflow != "hold" and self.train.precision != "fp16":
            raise config_error(
                ("schedule", "on_overflow"),
                f"applies to train.precision fp16 only (steps its loss scaler skips), but this "
                f"run trains in {self.train.precision}, where no step is skipped for "
                "overflow; remove schedule.on_overflow or set train.precision=fp16",
                on_overflow,
            )
        return self

    @model_validator(mode="after")
    def _eval_settings_need_eval_sets(self) -> RunConfig:
        """Evaluation settings of a training run that has nothing to evaluate would be read by
        no one (the eval hook is not even built): refuse them before any work. eval_only and
        predict_only runs reuse training configs and read none of these keys."""
        if self.eval_only or self.predict_only:
            return self
        for key, value, problem in eval_setting_problems(self):
            raise config_error(("train", key), problem, value)
        return self

    @property
    def has_eval_sets(self) -> bool:
        """Whether training evaluates anything: data.eval (pt) or finetune.valid (ft)."""
        if self.mode == "ft":
            return self.finetune is not None and self.finetune.valid is not None
        return self.data is not None and bool(self.data.eval)

    @property
    def seq_len(self) -> int:
        """Model input tokens per sample: data.seq_len (pt) or finetune.max_input_length (ft)."""
        if self.mode == "ft" and self.finetune is not None:
            return self.finetune.max_input_length
        return self.data.seq_len if self.data is not None else 0


def eval_setting_problems(config: RunConfig) -> list[tuple[str, Any, str]]:
    """(train key, value, why it has no effect) for each evaluation setting that differs from
    its default in a run without eval sets (defaults pass: a saved config.yaml lists them).

    Settings a later ``predict_only`` run of the same config reads (mode ft's eval_batch_size
    and, with finetune.test set, eval_draws) are left alone.
    """
    if config.has_eval_sets:
        return []
    train, ft = config.train, config.mode == "ft"
    found: list[tuple[str, Any, str]] = []
    if train.eval_every != 0:
        found.append(("eval_every", train.eval_every, "schedules evaluations of eval sets"))
    if train.eval_on_start:
        found.append(("eval_on_start", True, "evaluates the eval sets before step 1"))
    predicts = ft and config.finetune is not None and config.finetune.test is not None
    if train.eval_draws != "fixed" and not predicts:
        found.append(("eval_draws", train.eval_draws, "draws the eval sets' random choices"))
    lm_eval_reads_it = train.lm_eval is not None and train.lm_eval.batch_size is None
    if train.eval_batch_size is not None and not (lm_eval_reads_it or ft):
        found.append(("eval_batch_size", train.eval_batch_size, "sizes eval batches"))
    where, add = (
        ("finetune.valid is not set", "finetune.valid")
        if ft
        else ("data.eval is empty", "data.eval")
    )
    return [
        (key, value, f"{what}, but this run has none ({where}); add {add} or remove train.{key}")
        for key, value, what in found
    ]


def load_run_config(
    files: Sequence[str | Path | Mapping[str, Any]] = (), overrides: Sequence[str] = ()
) -> RunConfig:
    """Merge YAML files (later wins), apply dotted overrides, validate."""
    tree, origins = merge_sources(files, overrides)
    config = validate(RunConfig, tree, origins)
    _remember_origins(config, origins)
    return config


# Which file or override set each key of a loaded config, for checks that run later
# (check_objective). Kept beside the config, not in it: configs compare and dump by their keys.
_ORIGINS: dict[int, dict[KeyPath, str]] = {}


def _remember_origins(config: RunConfig, origins: dict[KeyPath, str]) -> None:
    key = id(config)
    _ORIGINS[key] = origins
    weakref.finalize(config, _ORIGINS.pop, key, None)


def check_objective(config: RunConfig) -> None:
    """``objective.name`` is registered and its other keys are that objective's typed options.

    Raises a :class:`~synthlm.errors.ConfigError` naming the file or override that set the key,
    as config loading does (``run.yaml: objective.noise_densty: unknown key (did you mean
    'objective.noise_density'?)``). Runs first in :func:`synthlm.train.planners.plan_run`.
    """
    from pydantic import ValidationError

    from synthlm.objectives import OBJECTIVES
    from synthlm.registry import name_error, validate_options

    name = config.objective.name
    try:
        if name not in OBJECTIVES:
            raise name_error(OBJECTIVES, name, loc=("objective", "name"))
        model = OBJECTIVES.options_model(name)
        validate_options(model, config.objective.options(), key="objective", loc=("objective",))
    except ValidationError as exc:
        raise located_error(RunConfig, exc, _ORIGINS.get(id(config))) from None
