"""The training loop on Accelerate: one code path for CPU, DDP, FSDP and DeepSpeed.

Exact resume is the design constraint. A run's future is fully determined by the weights, the
optimizer / scheduler / RNG state (saved by accelerate), the data cursor and the log-interval
sums (saved in ``trainer_state.json``); the data order is a pure function of the sample index.
So a run killed at any step and resumed from its last checkpoint writes the same losses and
ends with the same weights as an uninterrupted one (CPU, fp32), which the tests check by
SIGKILLing a training subprocess.

Loss normalisation: each micro-batch contributes ``sum of token losses x (processes x accum) /
N`` where ``N`` is the number of target tokens of the whole optimizer step on all ranks
(all-reduced before the forward passes). Accelerate divides by ``accum`` and DDP averages over
processes, so the gradient is exactly that of the mean token loss over the global batch:
2 processes x batch 4 equals 1 process x batch 8, whatever the padding or loss masks.
``train.loss_average: micro_batch`` instead averages each micro-batch's own mean, as DDP over a
mean-reduced loss does; since micro-batches are fixed groups of ``batch_size`` consecutive
samples (see :mod:`synthlm.train.batches`), that too is the same for any number of processes.
"""

from __future__ import annotations

import contextlib
import gc
import math
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthlm.config import save_yaml
from synthlm.errors import TrainingDiverged, UserError
from synthlm.train.accel import (
    configure_deepspeed,
    distributed_state,
    engine_record,
    init_device,
    make_accelerator,
)
from synthlm.train.batches import step_batches
from synthlm.train.checkpoint import (
    ACCELERATE_DIR,
    STATE_FILE,
    TEMP_PREFIX,
    TrainerState,
    checkpoints_dir,
    commit,
    latest_checkpoint,
    list_checkpoints,
    prune,
    read_errors,
    read_state,
    remove_stale,
    reserved_ids_suppressed,
    resolve_resume,
    set_aside_later_checkpoints,
    temp_dir,
    write_chat_template,
    write_errors,
    write_info,
)
from synthlm.train.config import RunConfig
from synthlm.train.early_stop import Watch, metric_problem, watched_values, write_ranking
from synthlm.train.flops import flops_per_token, mfu_record, peak_memory_gb, seq2seq_flops_per_token
from synthlm.train.guards import changed_keys, check_same_budget, sample_stream
from synthlm.train.hooks import CompileReportHook, Hook, default_hooks, run_hooks
from synthlm.train.metrics import IntervalStats, MetricsLogger, truncate_metrics
from synthlm.train.planners import plan_run
from synthlm.train.run_plan import RunPlan
from synthlm.train.signals import StopRequest


def run(config: RunConfig, *, progress: bool | None = None, freeze_heap: bool = False) -> Path:
    """Train (or resume) the run described by ``config``; returns the run dir.

    Returns normally, with a checkpoint saved, when SIGTERM/SIGUSR1 asked it to stop.
    ``freeze_heap`` (the ``synthlm train`` process, which does nothing else): once torch,
    transformers and the model are loaded, move their millions of long-lived objects out of
    the garbage collector's reach (``gc.freeze``); each full collection would walk them all
    again, ~0.2 s of CPU and a stall between steps. A caller that goes on to other work keeps
    the default, as a frozen object that later becomes cyclic garbage is never freed.
    """
    from synthlm.train.standalone import check_something_trained, run_standalone, standalone_kind

    state = distributed_state()
    plan = plan_run(config, state.num_processes)
    if state.is_main_process:
        for warning in plan.warnings():
            print(warning, file=sys.stderr)
    checkpoint = resolve_resume(config.run_dir, config.train.resume)
    show = config.logging.progress if progress is None else progress
    kind = standalone_kind(config)  # eval_only / predict_only: use a trained model, no training
    if kind is not None:
        check_something_trained(config, kind, checkpoint)
        return run_standalone(Trainer(plan, progress=show), kind, checkpoint)
    trainer = Trainer(plan, progress=show)
    trainer.start(checkpoint)
    if freeze_heap:
        gc.freeze()
    return trainer.fit()


@dataclass
class StepResult:
    loss: float
    lr: float
    grad_norm: float | None
    source_loss: list[float]
    source_targets: list[float]
    stop: bool
    skipped: bool
    groups: dict[str, float] = field(default_factory=dict)  # token-group sums (T5 objectives)


class Trainer:
    """Owns the prepared model, optimizer, scheduler and the run's state."""

    def __init__(self, plan: RunPlan, *, progress: bool = True) -> None:
        self.plan = plan
        self.cfg: RunConfig = plan.config
        self.run_dir = Path(self.cfg.run_dir)
        self.watch = Watch(self.cfg.train)  # early stopping, best k: before the hooks that ask
        self._check_watched()
        self.accelerator = make_accelerator(self.cfg, plan.batch.accum)
        configure_deepspeed(self.accelerator, self.cfg, plan.batch)
        self.lm_eval = self._lm_eval_hook()  # before the model: a bad task fails before any work
        self.objective = plan.objective
        self.flops_per_token = 0.0
        self.compiled_modules = 0  # set by _build: modules torch.compile wraps
        self.model, self.optimizer, self.scheduler = self._build()
        self.engine = engine_record(self.accelerator, self.model)
        if self.engine:
            n = self.engine["processes"]
            self.accelerator.print(
                f"engine: DeepSpeed ZeRO-{self.engine['zero_stage']}, "
                f"{self.engine['precision']}, {n} process{'es' if n > 1 else ''}"
            )
        self.state = TrainerState(
            layout=plan.layout.to_dict(), data=self._data_shape(), total_steps=plan.total_steps
        )
        self.interval = IntervalStats()
        self.progress = progress
        self.metrics: MetricsLogger | None = None
        self.stop = StopRequest()
        self.busy_seconds = 0.0  # data + compute time since the last log (no eval, no saving)
        self.busy_steps = 0
        self.started = time.perf_counter()
        self.hooks: list[Hook] = default_hooks(self)  # after-step work: log, eval, lm-eval, save
        self.bar: Any = None  # the progress bar while fit() runs

    # -- setup ----------------------------------------------------------------------------------
    def _build(self) -> tuple[Any, Any, Any]:
        import torch
        from accelerate.utils import set_seed

        from synthlm.models import build_model, compile_model
        from synthlm.train.optim import build_optimizer
        from synthlm.train.schedules import build_schedule

        set_seed(self.cfg.seed)  # the same initial weights on every rank and every rerun
        random_init = self.cfg.model.init_from is None
        with init_device(self.accelerator) if random_init else contextlib.nullcontext():
            model = build_model(
                self.cfg.model,
                vocab_size=self.plan.layout.model_vocab_size,
                special_ids=self.plan.special_ids,
            )
        model.train()
        self.flops_per_token = self._flops_per_token(model)  # before sharding
        optimizer = build_optimizer(model, self.cfg.optim)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            build_schedule(self.cfg.schedule, self.plan.total_steps, self.plan.steps_per_epoch),
        )
        # in place: state-dict keys (and saved HF files) stay plain
        self.compiled_modules = compile_model(model, self.cfg.model)
        return self.accelerator.prepare(model, optimizer, scheduler)

    def _flops_per_token(self, model: Any) -> float:
        if self.plan.seq2seq:
            return seq2seq_flops_per_token(model, self.plan.seq_len, self.plan.target_len)
        return flops_per_token(model, self.plan.seq_len)

    def start(self, checkpoint: Path | None) -> None:
        """Restore ``checkpoint`` (if any), cut logs back to it, open the metric sinks."""
        if self.accelerator.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale(self.run_dir)
        self.accelerator.wait_for_everyone()
        if checkpoint is not None:
            self.restore(checkpoint)
        if self.accelerator.is_main_process:  # after the checks: a refused config is no record
            save_yaml(self.cfg, self.run_dir / "config.yaml")
        if self.compiled_modules:
            self.hooks.insert(0, CompileReportHook(self.state.step + 1))
        if self.accelerator.is_main_process:  # a fresh start keeps nothing (not even step 0)
            kept = self.state.step if checkpoint is not None else -1
            truncate_metrics(self.run_dir / "metrics.jsonl", kept)
            self.metrics = open_metrics(self.cfg, self.state.step)

    def restore(self, checkpoint: Path, *, resume: bool = True) -> None:
        """Load ``checkpoint``; ``resume``: to train on (checks the data shape, sets later
        checkpoints aside), else only to use its model (``synthlm.train.standalone``)."""
        state = read_state(checkpoint)
        if state.layout and state.layout != self.plan.layout.to_dict():
            raise UserError(
                f"{checkpoint}: trained with vocabulary layout {state.layout}, but this "
                f"config gives "
                f"{self.plan.layout.to_dict()}; keep the tokenizer and "
                f"model.num_meta_tokens, or use a new run_dir"
            )
        shape = self._data_shape()
        saved, now = sample_stream(state.data or {}), sample_stream(shape)
        if resume and state.data and saved != now:
            raise UserError(
                f"{checkpoint}: this config changes {', '.join(changed_keys(saved, now))} "
                f"(trained with {state.data}, now {shape}); "
                "exact resume needs the same global batch, seq_len and source weights "
                "(the data cursor "
                "counts samples of that stream). Start a new run_dir with model.init_from "
                "set to the checkpoint instead"
            )
        if not (self.cfg.eval_only or self.cfg.predict_only):
            check_same_budget(
                state.total_steps,
                self.plan.total_steps,
                state.step,
                self.cfg.schedule,
                self.cfg.optim.lr,
                checkpoint,
                self.plan.steps_per_epoch,
            )
        applied = self._check_resume_config(checkpoint) if resume else []
        # the checkpoint's optimizer state brings its hyperparameters along; the config's win
        # (lr below keeps the schedule's place)
        configured = [
            {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr")}
            for group in self.optimizer.param_groups
        ]
        with read_errors(checkpoint):
            self.accelerator.load_state(str(checkpoint / ACCELERATE_DIR))
        for group, hyper in zip(self.optimizer.param_groups, configured, strict=True):
            group.update(hyper)
        self._apply_configured_lr()
        if applied:
            listed = "; ".join(f"{key} {old!r} -> {new!r}" for key, old, new in applied)
            self.accelerator.print(
                f"changed on resume, in effect from step {state.step + 1}: {listed}"
            )
        if resume and self.accelerator.is_main_process:
            for moved in set_aside_later_checkpoints(self.run_dir, state.step):
                self.accelerator.print(
                    f"resuming from step {state.step}: moved the later {moved.name} to "
                    f"{moved.parent}"
                )
        state.data, state.total_steps = shape, self.plan.total_steps
        self.state = state
        self.watch.restore(state)
        if resume and self.accelerator.is_main_process:
            self._write_ranking()  # the later checkpoints it listed were set aside
        self.interval = (
            IntervalStats.from_dict(state.interval) if state.interval else IntervalStats()
        )
        self.accelerator.print(
            f"resumed from {checkpoint} (step {state.step}, {state.tokens:,} tokens)"
        )

    def _check_watched(self) -> None:
        """Evaluations asked for need eval sets; mode ft: the watched metrics name
        ``finetune.valid``'s set, whose name comes from its pair file (mode pt's data.eval
        names are checked with the config)."""
        if self.cfg.train.eval_on_start and not self.plan.has_eval:
            raise UserError(
                "train.eval_on_start: this run has no eval sets to evaluate (add data.eval, or "
                "finetune.valid in mode ft), or set train.eval_on_start=false"
            )
        if self.plan.finetune is None:
            return
        valid = self.plan.finetune.valid
        sets = {valid.name: None} if valid is not None else {}
        for name in ("early_stopping", "keep_best"):
            metric = getattr(getattr(self.cfg.train, name), "metric", None)
            problem = metric_problem(metric, sets) if metric else None
            if problem:
                raise UserError(f"train.{name}.metric: {problem}")

    def _data_shape(self) -> dict[str, Any]:
        """What the data cursor means: resuming with another shape would replay or skip samples."""
        weights = (
            {}
            if self.plan.mixture is None or not hasattr(self.plan.mixture, "weights")
            else dict(
                zip(
                    self.plan.mixture.source_names,
                    (round(w, 12) for w in self.plan.mixture.weights),
                )
            )
        )
        shape = {
            "global_batch": self.plan.batch.global_batch,
            "seq_len": self.plan.seq_len,
            "weights": weights,
        }
        stored = [s.name for s in getattr(self.cfg.data, "sources", []) if s.order == "stored"]
        if stored:  # only when used: checkpoints saved before the key keep their shape
            shape["stored_order"] = stored
        phases = getattr(self.plan.mixture, "phases", None)
        return shape if phases is None else {**shape, "phases": phases.key()}

    def _check_resume_config(self, checkpoint: Path) -> list[tuple[str, Any, Any]]:
        """Refuse a config that would splice another run onto the checkpoint; the changes
        that steer the rest of the run (optimizer hyperparameters, clipping, precision) are
        returned to announce (lr announces itself). Checkpoints saved without their config
        (older ones) are not compared."""
        from synthlm.config import to_plain
        from synthlm.evaluate.checkpoint import read_training_config
        from synthlm.train.resume_check import check_resume_config, with_defaults

        if self.cfg.eval_only or self.cfg.predict_only:
            return []
        saved = read_training_config(checkpoint)
        if not saved:
            return []
        saved = with_defaults(saved, type(self.cfg))
        changes = check_resume_config(saved, to_plain(self.cfg), checkpoint)
        return [change for change in changes if change[0] != "optim.lr"]

    def _apply_configured_lr(self) -> None:
        """A resumed optimizer keeps the checkpoint's lr; honour ``optim.lr`` if it was changed
        (the usual answer to a divergence), keeping the schedule's shape."""
        inner = getattr(self.scheduler, "scheduler", self.scheduler)
        if not inner.base_lrs or inner.base_lrs[0] == self.cfg.optim.lr:
            return
        ratio = self.cfg.optim.lr / inner.base_lrs[0]
        inner.base_lrs = [lr * ratio for lr in inner.base_lrs]
        for group, base, factor in zip(
            inner.optimizer.param_groups, inner.base_lrs, inner.lr_lambdas
        ):
            group["initial_lr"] = base
            group["lr"] = base * factor(inner.last_epoch)
        self.accelerator.print(
            f"optim.lr changed on resume: the schedule now peaks at {self.cfg.optim.lr:g}"
        )

    def close(self) -> Path:
        if self.metrics is not None:
            self.metrics.close()
        return self.run_dir

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> Path:
        total = self.plan.total_steps
        try:
            if self.stopped_early:  # resumed where early stopping ended the run
                self.accelerator.print(
                    f"early stopping ended this run at step {self.state.step}: "
                    f"{self.watch.early.reason()}; nothing left to train"
                )
                self._finish()
                return self.run_dir
            if self.state.step >= total and (self.run_dir / "final").is_dir():
                self.accelerator.print(
                    f"this run finished at step {self.state.step}, its budget: nothing left to "
                    f"train ({self.run_dir / 'final'} holds its model; a larger budget trains on)"
                )
                return self.run_dir
            with self.stop, self._progress_bar() as self.bar:
                if self.cfg.train.eval_on_start and self.state.step == 0:
                    self.evaluate()  # the curve's start; not observed: no checkpoint at step 0
                tick = time.perf_counter()
                for micro_batches in self._batches():
                    result = self.train_step(micro_batches)
                    self.busy_seconds += time.perf_counter() - tick
                    self._after_step(result)
                    if self.stopped_early:
                        break
                    if result.stop:
                        self._stopped()
                        return self.run_dir
                    tick = time.perf_counter()
            if self.state.step >= total or self.stopped_early:
                self._finish()
        finally:
            if self.metrics is not None:
                self.metrics.close()
        return self.run_dir

    def _batches(self) -> Iterator[list[dict[str, Any]]]:
        remaining = self.plan.total_steps - self.state.step
        if remaining <= 0:
            return iter(())
        return step_batches(
            self.plan.mixture,
            self.objective.collate,
            self.plan.batch,
            rank=self.accelerator.process_index,
            cursor=self.state.samples,
            steps=remaining,
            num_workers=self.cfg.train.num_workers,
            pin_memory=self.accelerator.device.type == "cuda",
            prefetch=2
            if self.accelerator.device.type != "cpu"
            else 0,  # keep a GPU fed; CPU steps share its cores
            device=self.accelerator.device,
        )

    def train_step(self, micro_batches: list[dict[str, Any]]) -> StepResult:
        """Forward/backward every micro-batch, then one optimizer step (or a skip on NaN)."""
        import torch

        acc = self.accelerator
        batches = [
            {k: v.to(acc.device, non_blocking=True) for k, v in b.items()} for b in micro_batches
        ]
        counts = [int(self.objective.num_targets(b)) for b in micro_batches]  # host: no sync
        # float64: token counts stay exact far beyond float32's 2**24
        totals = acc.reduce(
            torch.tensor(
                [float(sum(counts)), float(sum(1 for n in counts if n))],
                dtype=torch.float64,
                device=acc.device,
            ),
            reduction="sum",
        )  # targets, and micro-batches with a target, of the whole step on all ranks
        scales = self._loss_scales(counts, totals)
        sources = len(self.plan.mixture.source_names)
        sums = torch.zeros(
            3 + 2 * sources, dtype=torch.float64, device=acc.device
        )  # loss, targets, stop, per source
        groups: dict[str, Any] = {}
        steps = float(self.plan.batch.processes * self.plan.batch.accum)
        for batch, scale in zip(batches, scales):
            with acc.accumulate(self.model):
                out = self.objective.forward(self.model, batch)
                loss, targets, rows = out.loss, out.targets, out.rows
                acc.backward(loss * scale.float())
            sums[0] += loss.detach().double() * scale / steps  # its share of the step's mean
            sums[1] += targets.detach().double()
            if rows is not None:
                sums[3 : 3 + sources].index_add_(0, batch["source"], rows[0].detach().double())
                sums[3 + sources :].index_add_(0, batch["source"], rows[1].detach().double())
            for key, value in out.metric_sums.items():  # per token group
                groups[key] = (
                    groups.get(key, 0.0) + torch.as_tensor(value, device=acc.device).double()
                )
        sums[2] = float(self.stop.requested)
        values = torch.cat([acc.reduce(sums, reduction="sum"), totals[:1]]).tolist()
        if groups:
            groups = dict(
                zip(
                    groups, acc.reduce(torch.stack(list(groups.values())), reduction="sum").tolist()
                )
            )
        if values[1] != values[-1]:
            raise RuntimeError(
                f"objective '{self.objective.name}' counted {values[1]:.0f} target tokens "
                f"but the loop "
                f"pre-counted {values[-1]:.0f} from the labels; its num_targets needs this "
                f"objective's rule"
            )
        loss_value = values[0]
        lr = self.optimizer.param_groups[0]["lr"]
        grad_norm, skipped = self._update(loss_value)
        return StepResult(
            loss_value,
            lr,
            grad_norm,
            values[3 : 3 + sources],
            values[3 + sources :],
            values[2] > 0,
            skipped,
            groups,
        )

    def _loss_scales(self, counts: list[int], totals: Any) -> list[Any]:
        """What each micro-batch's summed token loss is multiplied by before ``backward``
        (float64; divided by ``processes x accum``, its weight in the logged loss).

        Accelerate divides every backward by ``accum`` and DDP averages over processes, so a
        factor of ``processes x accum / N`` turns the sum into the mean over the step's ``N``
        targets (``tokens``), and ``processes x accum / (K x n)`` into the mean of the ``K``
        non-empty micro-batches' own means over their ``n`` targets (``micro_batch``). The
        factors stay on the device: reading ``totals`` on the host would sync every step.
        """
        steps = float(self.plan.batch.processes * self.plan.batch.accum)
        if self.cfg.train.loss_average == "tokens":
            return [steps / totals[0].clamp(min=1.0)] * len(counts)
        per_batch = steps / totals[1].clamp(min=1.0)
        return [per_batch / max(n, 1) for n in counts]

    def _update(self, loss: float) -> tuple[float | None, bool]:
        """Clip and step, or skip the update on a non-finite loss or gradient norm.

        The schedule advances on a skipped batch, so it costs one step of the budget. Under fp16
        the grad scaler owns overflowing gradients (it skips and lowers its scale itself), and
        its skipped steps hold the schedule unless ``schedule.on_overflow: advance``.
        """
        grad_norm = None
        if math.isfinite(loss):
            norm = self.accelerator.clip_grad_norm_(
                self.model.parameters(), self.cfg.train.clip_grad or math.inf
            )
            grad_norm = None if norm is None else float(norm)
        # DeepSpeed's fp16 loss scaler skips overflowing steps inside backward, as torch's does
        scaled = self.accelerator.scaler is not None or self.engine.get("precision") == "fp16"
        bad = not math.isfinite(loss) or (
            grad_norm is not None and not math.isfinite(grad_norm) and not scaled
        )
        if not bad:
            self.optimizer.step()
        if not (scaled and not bad and self._holds_on_overflow(grad_norm)):
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if bad:
            self._bad_step(
                loss
                if not math.isfinite(loss)
                else f"finite ({loss:.4f}) with gradient norm {grad_norm}"
            )
        return grad_norm, bad

    def _holds_on_overflow(self, grad_norm: float | None) -> bool:
        """The loss scaler skipped this step and the schedule waits for it, as DeepSpeed's
        ``_take_model_step`` and accelerate's ``AcceleratedScheduler`` leave it unstepped.

        Skipped: a non-finite unscaled gradient norm (what torch's GradScaler skips on; with a
        fused optimizer the skip happens inside its kernel, where accelerate's
        ``step_was_skipped`` cannot see it), or DeepSpeed's fp16 optimizer's overflow flag
        (DeepSpeed clips on its own, so no norm reaches us there)."""
        if self.cfg.schedule.on_overflow != "hold":
            return False
        if grad_norm is not None and not math.isfinite(grad_norm):
            return True
        return bool(self.optimizer.step_was_skipped)

    def _bad_step(self, loss: float | str) -> None:
        self.state.bad_steps += 1
        self.interval.skipped += 1
        allowed, step = (
            self.cfg.train.max_bad_steps,
            self.state.step + 1,
        )  # numbered as in the metrics
        if self.state.bad_steps > allowed:
            latest = latest_checkpoint(self.run_dir)
            kept = (
                f"the last good checkpoint {latest} is kept"
                if latest
                else "no checkpoint was saved yet"
            )
            raise TrainingDiverged(
                f"step {step}: the loss is {loss} ({self.state.bad_steps} non-finite steps, "
                f"train.max_bad_steps={allowed}); training stopped and {kept}. Lower optim.lr, "
                "set train.clip_grad, add warmup, or raise train.max_bad_steps to skip such batches"
            )
        self.accelerator.print(
            f"warning: step {step}: the loss is {loss}; batch skipped "
            f"({self.state.bad_steps}/{allowed})"
        )

    def _after_step(self, result: StepResult) -> None:
        """Advance the cursor, then run the hooks that want this step (log, eval, save...)."""
        self.state.step += 1
        self.state.samples += self.plan.batch.global_batch
        self.state.tokens = self.state.samples * self.plan.seq_len
        if not result.skipped:
            self.interval.add_step(
                result.loss,
                result.grad_norm,
                result.source_loss,
                result.source_targets,
                result.groups,
            )
        self.busy_steps += 1
        self.bar.update(1)
        run_hooks(self.hooks, self, result)

    @property
    def stopped_early(self) -> bool:
        """Early stopping ended the run before its budget (at the last step it just ends)."""
        return self.watch.stopped and self.state.step < self.plan.total_steps

    def _finish(self) -> None:
        """The end of a run, at its last step or where early stopping ended it: a checkpoint
        (kept; an existing one at this step is reused) and RUN/final."""
        self.export(self.run_dir / "final", source=self.save_checkpoint())

    def _stopped(self) -> None:
        self.save_checkpoint()
        self.accelerator.print(
            f"stop signal received: checkpoint saved at step {self.state.step}; run the "
            f"same command again to resume"
        )

    # -- logging and evaluation -----------------------------------------------------------------
    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        disable = not (self.progress and self.accelerator.is_main_process and interactive())
        return tqdm(
            total=self.plan.total_steps,
            initial=self.state.step,
            disable=disable,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )

    def position(self) -> dict[str, int]:
        """Where the run is, in the keys every metrics record starts with: ``step``, ``tokens``
        and, for a mixture, ``tokens/<source>`` (what equal-token comparisons line runs up by)."""
        record = {"step": self.state.step, "tokens": self.state.tokens}
        if hasattr(self.plan.mixture, "tokens_seen"):
            record.update(self.plan.mixture.tokens_seen(self.state.samples, self.plan.seq_len))
        return record

    def log(self, lr: float, bar: Any) -> None:
        """One metrics record: interval averages plus throughput, MFU, memory and ETA."""
        seconds = max(self.busy_seconds, 1e-9)
        tokens_per_s = self.busy_steps * self.plan.batch.global_batch * self.plan.seq_len / seconds
        record = {**self.position(), **self.interval.summary(self.plan.mixture.source_names)}
        record.update(
            lr=lr,
            tokens_per_s=tokens_per_s,
            **mfu_record(
                self.flops_per_token,
                tokens_per_s,
                self.cfg.logging.peak_flops,
                self.accelerator.device,
                self.plan.batch.processes,
            ),
            mem_gb=peak_memory_gb(self.accelerator.device),
            eta_s=seconds / max(self.busy_steps, 1) * (self.plan.total_steps - self.state.step),
            elapsed_s=time.perf_counter() - self.started,
        )
        if self.metrics is not None:
            self.metrics.write(record)
        if "loss" in record:  # absent when every step of the interval was skipped
            bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
            if (
                self.progress and not interactive()
            ):  # a log file gets one line per record, not a bar
                self.accelerator.print(plain_progress(record, self.plan.total_steps))
        self.interval = IntervalStats()
        self.busy_seconds, self.busy_steps = 0.0, 0

    def evaluate(self) -> dict[str, float]:
        if self.plan.seq2seq:  # objective losses, or generated pairs scored (mode ft)
            from synthlm.train.seq2seq_eval import evaluate_seq2seq

            with self.accelerator.autocast():
                metrics = evaluate_seq2seq(
                    self.plan,
                    self.model,
                    self.accelerator.device,
                    step=self.state.step,
                    progress=self.progress and self.accelerator.is_main_process,
                )
            return self._log_eval(metrics)
        from synthlm.evaluate import evaluate_model

        data = self.cfg.data
        with self.accelerator.autocast():
            metrics = evaluate_model(
                self.model,
                data.eval,
                layout=self.plan.layout,
                tokenizer=self.plan.tokenizer,
                seq_len=data.seq_len,
                batch_size=self.cfg.train.eval_batch,
                device=self.accelerator.device,
                seed=self.cfg.seed,
                objective=self.plan.objective,  # eval loss = training loss on held-out text
                packing=data.packing,
                natural_masked="natural" in self.plan.masked_kinds,
                loss_average=self.cfg.train.loss_average,
                shared_boundary=data.shared_boundary,
            )
        return self._log_eval(metrics)

    def _log_eval(self, metrics: dict[str, float]) -> dict[str, float]:
        if self.metrics is not None:
            self.metrics.write({**self.position(), **metrics})
        self._print_eval(metrics)
        return metrics

    def _print_eval(self, metrics: dict[str, float]) -> None:
        """One console line per evaluation during training (each set's loss and accuracy; all
        metrics are in RUN/metrics.jsonl): the number a run is watched for, not only a file's."""
        if self.bar is None or not (self.progress and self.accelerator.is_main_process):
            return  # eval_only prints its own JSON; --quiet prints nothing
        shown = [
            f"{key.removeprefix('eval/')} {value:.4g}"
            for key, value in metrics.items()
            if key.count("/") == 2 and key.rsplit("/", 1)[1] in ("loss", "acc")
        ]
        if not shown:
            return
        line = f"eval step {self.state.step}: " + ", ".join(shown)
        if self.bar.disable:
            self.accelerator.print(line)
        else:
            self.bar.write(line)

    def observe(self, metrics: dict[str, float]) -> None:
        """Early stopping's check and keep_best's ranking of one evaluation during training.

        Every process decides on the main process's numbers (broadcast), so all of them stop
        at the same step and take part in the same checkpoint saves.
        """
        names = self.watch.metrics()
        if not names:
            return
        from accelerate.utils import broadcast_object_list

        values = broadcast_object_list([watched_values(metrics, names)])[0]
        self.watch.observe(self.state.step, values)
        if self.stopped_early:
            self._report_early_stop()

    def _report_early_stop(self) -> None:
        """A console line and a metrics record (written before this step's checkpoint, so a
        resumed run keeps it) saying where and why the run stops."""
        early = self.watch.early
        line = (
            f"early stopping at step {self.state.step}: {early.reason()}; saving the final "
            "checkpoint and RUN/final"
        )
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line)
        else:
            self.accelerator.print(line)
        if self.metrics is not None:
            self.metrics.write(
                {
                    **self.position(),
                    "early_stopping/stopped": 1,
                    "early_stopping/best": early.best,
                    "early_stopping/best_step": early.best_step,
                    "early_stopping/evals_without_improvement": early.wait,
                }
            )

    def _lm_eval_hook(self) -> Any:
        """The lm-eval tasks of ``train.lm_eval``, resolved and loaded once (None when unset)."""
        if self.cfg.train.lm_eval is None:
            return None
        from synthlm.evaluate.lm_eval_bridge import TrainingLMEval, check_unsharded

        check_unsharded(self.accelerator)
        batch = self.cfg.train.eval_batch
        return TrainingLMEval(
            self.cfg.train.lm_eval,
            self.plan.tokenizer,
            prompt_bos=self.plan.prompt_bos,
            seq_len=self.plan.seq_len,
            batch_size=batch,
        )

    def evaluate_lm_eval(self) -> None:
        """Every rank runs the same requests on its replica (no collectives); the main rank logs."""
        with self.accelerator.autocast():
            metrics = self.lm_eval.run(self.model)
        if self.metrics is not None:
            self.metrics.write({**self.position(), **metrics})

    # -- saving ---------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step-N`` atomically (all ranks take part), then prune old ones."""
        acc = self.accelerator
        final = checkpoints_dir(self.run_dir) / f"step-{self.state.step}"
        if (final / STATE_FILE).is_file():  # resumed exactly here: it already exists
            return final
        staging = self._stage(temp_dir(self.run_dir, self.state.step))
        # quiet: "Removed shared tensor" (T5's tied embeddings, restored on load)
        with quiet_logger("accelerate.utils.other"), write_errors(staging):
            acc.save_state(str(staging / ACCELERATE_DIR))
        self.state.interval = self.interval.to_dict()
        self.watch.save_into(self.state)
        self._write_model(staging)
        if acc.is_main_process:
            from synthlm.fileio import atomic_write_json

            atomic_write_json(staging / STATE_FILE, self.state.to_dict())
            commit(staging, final)
            prune(self.run_dir, self.cfg.train.keep_last, keep=self.watch.kept_steps())
            self._write_ranking()
        acc.wait_for_everyone()
        return final

    def _write_ranking(self) -> None:
        """RUN/best_checkpoints.json from the best-k record (main process; keep_best only)."""
        if self.watch.best is not None:
            complete = dict(list_checkpoints(self.run_dir))
            write_ranking(self.run_dir, self.watch.best, complete)

    def export(self, directory: Path, source: Path | None = None) -> Path:
        """A plain HF model dir (+ tokenizer, config, layout) at ``directory``, replaced atomically.

        ``source``: the checkpoint just saved at this step, whose model files are copied
        instead of gathering and serialising the weights a second time (the end of every run:
        for a 1B model that is gigabytes not re-encoded, and a collective not repeated).
        """
        acc = self.accelerator
        staging = directory.with_name(f"{TEMP_PREFIX}{directory.name}")
        if source is not None:
            if acc.is_main_process:
                copy_model_files(source, staging)
                replace_dir(staging, directory)
            acc.wait_for_everyone()
            return directory
        staging = self._stage(staging)
        self._write_model(staging)
        if acc.is_main_process:
            replace_dir(staging, directory)
        acc.wait_for_everyone()
        return directory

    def _stage(self, staging: Path) -> Path:
        """A fresh staging dir holding the tokenizer (whose ``save`` wants to create the dir)."""
        if self.accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
            self.plan.tokenizer.save(staging, prompt_bos=self.plan.prompt_bos)
            write_chat_template(staging, self.cfg)
        self.accelerator.wait_for_everyone()
        return staging

    def _write_model(self, directory: Path) -> None:
        """HF weights + config, resolved run config, synthlm.json (the main rank writes)."""
        acc = self.accelerator
        weights = acc.get_state_dict(self.model)  # a collective under FSDP / ZeRO-3
        if not acc.is_main_process:
            return
        model = acc.unwrap_model(self.model)
        with no_hf_progress_bars(), reserved_ids_suppressed(model, self.plan.layout.natural_size):
            model.save_pretrained(directory, state_dict=weights, safe_serialization=True)
        save_yaml(self.cfg, directory / "config.yaml")
        write_info(
            directory,
            self.state,
            {
                "objective": self.cfg.objective.name,
                "seq_len": self.plan.seq_len,
                "masked_documents": sorted(self.plan.masked_kinds),
                "prompt_bos": self.plan.prompt_bos,
                "synthetic_layouts": self.plan.synthetic_layouts,
                **({"engine": self.engine} if self.engine else {}),
                **({"early_stopping": self.watch.early.summary()} if self.stopped_early else {}),
            },
        )


# ---------------------------------------------------------------------------------------------
# Helpers


def interactive() -> bool:
    """Progress bars only on a terminal: redirected to a file, each redraw would be a line."""
    import sys

    return sys.stderr.isatty()


def plain_progress(record: dict[str, Any], total: int) -> str:
    """One log line per metrics record when there is no terminal to draw a bar on."""
    return (
        f"step {record['step']}/{total} loss {record['loss']:.4f} lr {record['lr']:.2e} "
        f"{record['tokens_per_s']:,.0f} tok/s eta {record['eta_s']:.0f}s"
    )


def open_metrics(cfg: RunConfig, step: int) -> MetricsLogger:
    from synthlm.train.metrics import JsonlSink, Sink, TensorBoardSink, WandbSink

    run_dir = Path(cfg.run_dir)
    sinks: list[Sink] = [JsonlSink(run_dir / "metrics.jsonl")]
    if cfg.logging.tensorboard:
        sinks.append(TensorBoardSink(run_dir / "tensorboard", purge_step=step + 1))
    if cfg.logging.wandb:
        name = cfg.logging.run_name or run_dir.name
        sinks.append(
            WandbSink(
                run_dir,
                cfg.logging.wandb_project,
                cfg.logging.wandb_entity,
                name,
                cfg.model_dump(mode="json"),
            )
        )
    return MetricsLogger(sinks)


@contextlib.contextmanager
def no_hf_progress_bars() -> Iterator[None]:
    """transformers draws a bar per save ("Writing model shards"); it would break our own bar."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence one library logger's warnings for the duration (its errors still show)."""
    import logging

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def copy_model_files(checkpoint: Path, staging: Path) -> None:
    """A checkpoint's HF model, tokenizer and run files, without its trainer state."""
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(checkpoint, staging, ignore=shutil.ignore_patterns(ACCELERATE_DIR, STATE_FILE))


def replace_dir(staging: Path, final: Path) -> None:
    """Move a complete directory to ``final``, replacing an older one."""
    old = final.with_name(f"{TEMP_PREFIX}old-{final.name}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    commit(staging, final)
    shutil.rmtree(old, ignore_errors=True)
