"""Standard benchmarks through EleutherAI's lm-evaluation-harness, on checkpoints and during training.

The harness scores the model synthlm already holds in memory: its ``HFLM`` class wraps the
loaded (or training) ``transformers`` model and tokenizer, so ``synthlm eval CKPT --lm-eval``
and the training loop's ``train.lm_eval`` hook measure the same thing with the same code.
Tasks come from the harness's own catalogue or from local task YAMLs (``include`` dirs, indexed
alone when they hold every requested task, which skips the ~5 s scan of the 14k built-ins).

Four choices differ from calling ``lm_eval.simple_evaluate``, each on purpose:

* We call ``lm_eval.evaluator.evaluate`` on tasks loaded once. ``simple_evaluate`` reseeds the
  global Python / NumPy / torch RNGs for good (which would change a training run's future) and
  spawns ``git`` and ``collect_env`` subprocesses on every call. We seed them with the
  harness's own seeds (:data:`HARNESS_SEEDS`; ``--seed N`` sets all four, as ``lm_eval --seed
  N`` does) for the evaluation only and put the caller's states back afterwards, so the
  few-shot examples and any sampling are the harness's.
* The context is the model's *trained* length: ``max_length`` is the run's ``data.seq_len``
  (``synthlm eval --seq-len`` or ``train.lm_eval.max_length`` to change it), where the harness
  takes the model's position table (``max_position_embeddings``). A model trained on 512-token
  windows has never seen position 1,500, and scoring contexts there measures its extrapolation,
  not what it learned; a small model's table is often far longer than its windows. Contexts
  longer than that are left-truncated as the harness does, and the number truncated is
  reported rather than hidden with the harness's log.
* The Hugging Face hub and datasets run offline (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``):
  a task's data must be local files or already in the HF cache, and a missing one fails at
  load time with a message saying so, never mid-run or by downloading.
* ``limit`` defaults to every example. GPT-NeoX's evaluation hard-coded a cap, so its reported
  numbers were on a silent subset; here a subset happens only when asked for.

Results are ``{task: {metric: value}}`` (the harness's ``acc,none`` becomes ``acc``; other
filters stay visible as ``exact_match/strict-match``); standard errors and the harness's task
configs go to a details file beside them. lm-eval is an optional extra: ``pip install
'synthlm[eval]'``; without it every entry point fails before any work with that hint.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from synthlm.config import Section
from synthlm.errors import ConfigError, UserError

if TYPE_CHECKING:
    from synthlm.protocols import HFTokenizer, Tokenizer

INSTALL_HINT = "pip install 'synthlm[eval]'"
# lm-eval's defaults (lm_eval/defaults.py; simple_evaluate): Python's RNG 0; NumPy's, torch's and
# the few-shot sampler's 1234
HARNESS_SEEDS = {"python": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
RESULTS_STEM = "lm_eval"
DETAILS_DIR = "harness"  # a subfolder: the report reads RUN/eval/*.json, not these


class LMEvalConfig(Section):
    """lm-evaluation-harness tasks run during training (``train.lm_eval``)."""

    tasks: list[str] = Field(
        min_length=1,
        description="Task, group or tag names (or task YAML paths), e.g. [hellaswag, arc_easy].",
    )
    every: int = Field(
        0, ge=0, description="Steps between lm-eval runs (0: only at the end of training)."
    )
    limit: int | None = Field(None, gt=0, description="Examples per task (default: all of them).")
    num_fewshot: int | None = Field(
        None, ge=0, description="Few-shot examples (default: each task's own)."
    )
    include: list[Path] = Field(
        default_factory=list,
        description="Dirs of local task YAMLs, searched before the built-in tasks.",
    )
    batch_size: int | None = Field(
        None,
        gt=0,
        description="Requests per forward pass (default: train.eval_batch_size or batch_size).",
    )
    max_length: int | None = Field(
        None,
        gt=1,
        description="Tokens of context per request (default: data.seq_len, the length the model "
        "trains on; the harness alone would take the model's position table). Longer contexts "
        "are left-truncated as the harness does.",
    )
    seed: int | None = Field(
        None,
        description="The harness's four seeds (Python, NumPy, torch, few-shot sampler) at once, as "
        "lm_eval --seed N sets them (default: the harness's 0, 1234, 1234, 1234; not the run's "
        "seed, so scores equal lm_eval's and synthlm eval --lm-eval's).",
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        return split_tasks(value) if isinstance(value, str) else value

    @field_validator("include", mode="before")
    @classmethod
    def _one_include(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value


def split_tasks(text: str) -> list[str]:
    """``"hellaswag, arc_easy"`` -> ``["hellaswag", "arc_easy"]`` (the CLI's comma list)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def require_lm_eval(option: str) -> None:
    """Fail with the install hint when the optional harness is missing."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserError(
            f"{option}: lm-evaluation-harness is not installed; install it with {INSTALL_HINT}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Environment


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """The HF hub and datasets offline for the duration, including modules imported before.

    datasets and huggingface_hub read the variables once at import, so their module flags are
    switched too; everything comes back as it was afterwards.
    """
    import sys

    saved_env = {name: os.environ.get(name) for name in OFFLINE_ENV}
    flags = [
        (sys.modules.get("huggingface_hub.constants"), "HF_HUB_OFFLINE"),
        (sys.modules.get("datasets.config"), "HF_HUB_OFFLINE"),
        (sys.modules.get("datasets.config"), "HF_DATASETS_OFFLINE"),
    ]
    saved_flags = [
        (module, name, getattr(module, name))
        for module, name in flags
        if module is not None and hasattr(module, name)
    ]
    os.environ.update(dict.fromkeys(OFFLINE_ENV, "1"))
    for module, name, _ in saved_flags:
        setattr(module, name, True)
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for module, name, value in saved_flags:
            setattr(module, name, value)


class TruncationCount(logging.Handler):
    """Counts the harness's "context too long, truncated from the left" warnings, which
    :func:`harness_output` keeps off the terminal, so the caller can say how many requests lost
    context instead of one log line per request."""

    MARKERS = ("Truncating", "Left truncation applied")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if any(marker in record.getMessage() for marker in self.MARKERS):
            self.count += 1


@contextlib.contextmanager
def harness_output(progress: bool, truncations: TruncationCount | None = None) -> Iterator[None]:
    """The harness's INFO/WARNING logging off (we report results ourselves) and, unless
    ``progress``, its progress bars too: they are not switchable from outside, so stderr is
    captured while it runs. Its truncation warnings go to ``truncations``."""
    logger = logging.getLogger("lm_eval")
    model_logger = logging.getLogger("lm_eval.models.huggingface")
    saved = logger.level, model_logger.level, model_logger.propagate
    logger.setLevel(logging.ERROR)
    if truncations is not None:
        model_logger.setLevel(logging.WARNING)
        model_logger.propagate = False  # counted here, printed nowhere
        model_logger.addHandler(truncations)
    try:
        with contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(saved[0])
        model_logger.setLevel(saved[1])
        model_logger.propagate = saved[2]
        if truncations is not None:
            model_logger.removeHandler(truncations)


def harness_seeds(seed: int | None) -> dict[str, int]:
    """The four seeds ``simple_evaluate`` sets: the harness's defaults, or ``seed`` for all four
    (``lm_eval --seed N``)."""
    return dict(HARNESS_SEEDS) if seed is None else dict.fromkeys(HARNESS_SEEDS, seed)


@contextlib.contextmanager
def preserved_rngs(seeds: Mapping[str, int]) -> Iterator[None]:
    """Python's and NumPy's global RNGs seeded as the harness seeds them, their states put
    back afterwards (torch's: see eval_mode)."""
    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seeds["python"])
    np.random.seed(seeds["numpy"])
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# ---------------------------------------------------------------------------------------------
# Tasks


def check_includes(include: Sequence[str | Path], option: str) -> list[Path]:
    paths = [Path(p) for p in include]
    for path in paths:
        if not path.is_dir():
            raise UserError(
                f"{option} {path}: not a directory (expected a folder of lm-eval task YAML files)"
            )
    return paths


def _known(manager: Any, task: str) -> bool:
    return task in manager.all_tasks or (task.endswith((".yaml", ".yml")) and Path(task).is_file())


def task_manager(tasks: Sequence[str], include: Sequence[Path], option: str) -> Any:
    """A TaskManager that knows every task in ``tasks``; unknown names fail with a close match."""
    from lm_eval.tasks import TaskManager

    if not hasattr(
        TaskManager, "load"
    ):  # the flat {tasks, groups} loader arrived in the 0.4.1x series
        from importlib.metadata import version

        raise UserError(
            f"{option}: lm-eval {version('lm_eval')} is too old for synthlm (tested with "
            f"0.4.13); upgrade: pip install -U 'lm-eval>=0.4.13'"
        )
    if include:
        local = TaskManager(include_path=[str(p) for p in include], include_defaults=False)
        if all(_known(local, t) for t in tasks):
            return local
    manager = TaskManager(include_path=[str(p) for p in include] or None)
    unknown = [t for t in tasks if not _known(manager, t)]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, manager.all_tasks, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        where = f" or in {', '.join(map(str, include))}" if include else ""
        raise UserError(
            f"{option}: unknown lm-eval task {', '.join(hints)}: not among the harness's "
            f"tasks{where}; "
            "list them with `lm-eval ls tasks`, or give a folder of task YAMLs with "
            "--lm-eval-include / train.lm_eval.include"
        )
    return manager


def load_tasks(manager: Any, tasks: Sequence[str], option: str) -> dict[str, Any]:
    """Build every task (reads its data, offline) one by one, so a failure names its task."""
    loaded: dict[str, Any] = {"tasks": {}, "groups": {}, "group_map": {}}
    for name in tasks:
        try:
            with offline_hub():
                part = manager.load([name])
        except Exception as exc:  # the harness raises many types (ConnectionError offline, KeyError, YAML, datasets)
            reason = " ".join(str(exc).split())[:400]
            raise UserError(
                f"{option}: lm-eval could not load task '{name}': {type(exc).__name__}: "
                f"{reason}. Its data must be local "
                "(dataset_path: json with data_files) or already in the Hugging Face "
                "cache: synthlm runs the harness offline"
            ) from None
        for key in loaded:
            loaded[key].update(part.get(key) or {})
    return loaded


def set_fewshot(loaded: Mapping[str, Any], num_fewshot: int | None, seed: int) -> None:
    """What ``simple_evaluate`` does per task: the shot count (a task pinned to 0 stays 0) and the
    seed of its few-shot sampler."""
    for task in loaded["tasks"].values():
        default = task.get_config("num_fewshot")
        if num_fewshot is not None and default != 0:
            task.set_config(key="num_fewshot", value=num_fewshot)
        elif default is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=seed)


def check_fewshot_applies(loaded: Mapping[str, Any], num_fewshot: int | None, option: str) -> None:
    """A shot count the harness will not use must not pass unnoticed: a task whose config sets
    ``num_fewshot: 0`` keeps it (as ``simple_evaluate`` does, logging it at INFO only). Refused
    when that is every task (the option would change nothing); a note names them otherwise."""
    if not num_fewshot:
        return
    tasks = loaded["tasks"]
    pinned = [name for name, task in tasks.items() if task.get_config("num_fewshot") == 0]
    if not pinned:
        return
    named = ", ".join(pinned)
    if len(pinned) == len(tasks):
        raise ConfigError(
            f"{option}: {num_fewshot} has no effect: every task here ({named}) sets "
            f"num_fewshot: 0 in its task config, which the harness keeps; remove {option}"
        )
    print(
        f"note: {option} {num_fewshot} does not apply to {named}: their task configs set "
        "num_fewshot: 0, which the harness keeps",
        file=sys.stderr,
    )


# ---------------------------------------------------------------------------------------------
# Results


def metric_name(key: str) -> str:
    """``acc,none`` -> ``acc``; ``exact_match,strict-match`` -> ``exact_match/strict-match``."""
    metric, _, filter_name = key.partition(",")
    return metric if filter_name in ("", "none") else f"{metric}/{filter_name}"


def flatten_results(
    raw: Mapping[str, Any],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """The harness's ``results`` as ({task: {metric: value}}, {task: {metric: stderr}})."""
    scores: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, float]] = {}
    for task, row in raw.get("results", {}).items():
        for key, value in row.items():
            if "," not in key or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue  # alias, name, sample_len, "N/A" stderrs
            metric = key.partition(",")[0]
            if metric.endswith("_stderr"):
                base = metric_name(key.replace("_stderr", "", 1))
                errors.setdefault(task, {})[base] = float(value)
            else:
                scores.setdefault(task, {})[metric_name(key)] = float(value)
    return scores, errors


def metric_records(scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{"lm_eval/<task>/<metric>": value}``: the keys the training loop logs."""
    return {
        f"lm_eval/{task}/{metric}": value
        for task, row in scores.items()
        for metric, value in row.items()
    }


def details(raw: Mapping[str, Any], errors: Mapping[str, Any]) -> dict[str, Any]:
    """What the harness knows about the run (task configs, versions, shots, sample counts)."""
    from lm_eval.utils import handle_non_serializable

    keep = {
        k: raw[k]
        for k in (
            "configs",
            "versions",
            "n-shot",
            "n-samples",
            "higher_is_better",
            "group_subtasks",
        )
        if k in raw
    }
    plain = json.loads(json.dumps(keep, default=handle_non_serializable))
    return {"stderr": dict(errors), **plain}


# ---------------------------------------------------------------------------------------------
# Running


class LMEvalSuite:
    """Tasks resolved and loaded once (every input checked), then run on any model any number
    of times: the training loop evaluates the same Task objects every N steps."""

    def __init__(
        self,
        tasks: Sequence[str],
        *,
        include: Sequence[str | Path] = (),
        limit: int | None = None,
        num_fewshot: int | None = None,
        seed: int | None = None,
        option: str = "--lm-eval",
        include_option: str = "--lm-eval-include",
        fewshot_option: str = "--num-fewshot",
    ) -> None:
        require_lm_eval(option)
        if not tasks:
            raise UserError(f"{option}: no task names given; e.g. --lm-eval hellaswag,arc_easy")
        if limit is not None and limit < 1:
            raise UserError(
                f"{option}: limit must be a positive number of examples (got {limit}); "
                f"leave it unset for all"
            )
        paths = check_includes(include, include_option)
        self.names = list(dict.fromkeys(tasks))
        self.limit, self.num_fewshot, self.seeds = limit, num_fewshot, harness_seeds(seed)
        with harness_output(progress=False):
            self.loaded = load_tasks(task_manager(self.names, paths, option), self.names, option)
        check_fewshot_applies(self.loaded, num_fewshot, fewshot_option)

    def run(
        self,
        model: Any,
        tokenizer: HFTokenizer,
        *,
        batch_size: int,
        max_length: int,
        stderr: bool = True,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Evaluate ``model`` (a causal or seq2seq HF model); returns the harness's raw results.

        The model comes back in its mode, and every global RNG (Python, NumPy, torch) in its state.
        """
        from lm_eval.evaluator import evaluate

        from synthlm.evaluate import eval_mode

        set_fewshot(self.loaded, self.num_fewshot, self.seeds["fewshot"])
        device = next(model.parameters()).device
        self.truncations = TruncationCount()
        with (
            eval_mode(model, device, self.seeds["torch"]),
            preserved_rngs(self.seeds),
            offline_hub(),
            harness_output(progress, self.truncations),
        ):
            lm = wrap_model(model, tokenizer, batch_size=batch_size, max_length=max_length)
            raw = evaluate(
                lm=lm,
                task_dict=self.loaded,
                limit=self.limit,
                log_samples=False,
                bootstrap_iters=100_000 if stderr else 0,
            )
        return raw


def wrap_model(model: Any, tokenizer: HFTokenizer, *, batch_size: int, max_length: int) -> Any:
    """The harness's HF model class around an already-loaded model (no second copy, no download)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)


def hf_tokenizer(tokenizer: Tokenizer, prompt_bos: bool | None = None) -> HFTokenizer:
    """A transformers tokenizer equal to a synthlm one: saved and loaded back with AutoTokenizer
    (synthlm writes tokenizer.json for every kind precisely so that this encodes identically);
    ``prompt_bos`` as a checkpoint of the run saves it, so scores during and after training
    prompt alike."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="synthlm-tok-") as tmp:
        tokenizer.save(tmp, overwrite=True, prompt_bos=prompt_bos)
        return AutoTokenizer.from_pretrained(tmp)


# ---------------------------------------------------------------------------------------------
# synthlm eval CKPT --lm-eval


def default_output(checkpoint: str | Path) -> Path:
    """RUN/eval/lm_eval.json for RUN/final; RUN/eval/lm_eval-step-N.json for a checkpoint."""
    from synthlm.evaluate.checkpoint import run_dir_of

    name = Path(checkpoint).resolve().name
    stem = RESULTS_STEM if name == "final" else f"{RESULTS_STEM}-{name}"
    return run_dir_of(checkpoint) / "eval" / f"{stem}.json"


def details_path(results: Path) -> Path:
    return results.parent / DETAILS_DIR / results.name


def evaluate_checkpoint_lm_eval(
    checkpoint: str | Path,
    tasks: Sequence[str],
    *,
    include: Sequence[str | Path] = (),
    limit: int | None = None,
    num_fewshot: int | None = None,
    out: str | Path | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    tokenizer: str | Path | None = None,
    seed: int | None = None,
    quiet: bool = False,
) -> tuple[dict[str, dict[str, float]], Path]:
    """Run lm-eval ``tasks`` on a saved checkpoint; writes {task: {metric: value}} JSON.

    Every input (the harness installed, include dirs, task names, task data) is checked before
    the model is loaded.
    """
    from synthlm.evaluate.checkpoint import (
        check_checkpoint_dir,
        load_checkpoint,
        refuse_encoder_decoder,
    )
    from synthlm.evaluate.offline import check_window, default_seq_len
    from synthlm.fileio import atomic_write_json

    check_checkpoint_dir(Path(checkpoint))
    suite = LMEvalSuite(tasks, include=include, limit=limit, num_fewshot=num_fewshot, seed=seed)
    refuse_encoder_decoder(checkpoint, "synthlm eval --lm-eval", "the bridge wraps a causal LM")
    ckpt = load_checkpoint(checkpoint, device=device, dtype=dtype, tokenizer=tokenizer, quiet=quiet)
    if max_length is not None:
        check_window(ckpt.model, max_length)
    context = max_length or default_seq_len(ckpt)
    started = time.perf_counter()
    raw = suite.run(
        ckpt.model,
        ckpt.tokenizer,
        batch_size=batch_size,
        max_length=context,
        progress=not quiet,
    )
    truncated = suite.truncations.count
    if truncated and not quiet:
        print(
            f"note: {truncated:,} lm-eval requests were longer than {context} tokens of context "
            "and lost their start (left-truncated, as the harness does); --seq-len sets the "
            "context, up to the model's positions",
            file=sys.stderr,
        )
    scores, errors = flatten_results(raw)
    path = Path(out) if out else default_output(checkpoint)
    atomic_write_json(path, scores)
    info = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "tasks": suite.names,
        "limit": limit,
        "num_fewshot": num_fewshot,
        "max_length": context,
        "truncated_requests": truncated,
        "seeds": suite.seeds,
        "seconds": round(time.perf_counter() - started, 3),
        **details(raw, errors),
    }
    atomic_write_json(details_path(path), info)
    return scores, path


# ---------------------------------------------------------------------------------------------
# Training


class TrainingLMEval:
    """The training loop's lm-eval hook: tasks loaded when the trainer is built (a bad task name
    or missing data stops the run before step 1), then run on the cadence ``train.lm_eval.every``."""

    def __init__(
        self,
        config: LMEvalConfig,
        tokenizer: Tokenizer,
        *,
        seq_len: int,
        batch_size: int,
        prompt_bos: bool | None = None,
    ) -> None:
        self.config = config
        self.suite = LMEvalSuite(
            config.tasks,
            include=config.include,
            limit=config.limit,
            num_fewshot=config.num_fewshot,
            seed=config.seed,
            option="train.lm_eval.tasks",
            include_option="train.lm_eval.include",
            fewshot_option="train.lm_eval.num_fewshot",
        )
        self.tokenizer = hf_tokenizer(tokenizer, prompt_bos)  # the saved checkpoint's rule
        self.seq_len = config.max_length or seq_len
        self.batch_size = config.batch_size or batch_size

    def due(self, step: int, last: bool) -> bool:
        return last or bool(self.config.every and step % self.config.every == 0)

    def run(self, model: Any) -> dict[str, float]:
        """``lm_eval/<task>/<metric>`` for the model under any DDP / compile wrapper."""
        from synthlm.evaluate import unwrap

        raw = self.suite.run(
            unwrap(model),
            self.tokenizer,
            batch_size=self.batch_size,
            max_length=self.seq_len,
            stderr=False,
        )
        return metric_records(flatten_results(raw)[0])


def check_unsharded(accelerator: Any) -> None:
    """lm-eval runs the bare HF model on each rank; sharded weights (FSDP, ZeRO-3) cannot."""
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    zero3 = plugin is not None and plugin.zero_stage == 3
    if kind == DistributedType.FSDP or zero3:
        raise ConfigError(
            "train.lm_eval: not available with sharded weights (FSDP / DeepSpeed ZeRO-3); "
            "remove it and run "
            "`synthlm eval RUN/checkpoints/step-N --lm-eval TASKS` on the saved checkpoints instead"
        )
