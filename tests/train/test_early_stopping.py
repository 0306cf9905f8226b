"""Early stopping and best-k checkpoints (``train.early_stopping``, ``train.keep_best``).

The decisions are checked against independent restatements of PyTorch Lightning's callbacks
(``EarlyStopping._evaluate_stopping_criteria``, ``ModelCheckpoint``'s top-k dict), written here
from their definitions, and against Lightning itself when it is installed. Runs are tiny real
trainings: a learning rate high enough that the held-out loss stops improving after a few steps.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import (
    final_weights,
    read_records,
    reproducible,
    subprocess_env,
    synthlm,
    tiny_config,
    write_config,
)

from synthlm.errors import ConfigError, UserError
from synthlm.train import load_run_config, run
from synthlm.train.checkpoint import list_checkpoints, prune, read_state
from synthlm.train.early_stop import (
    RANKING_FILE,
    BestCheckpoints,
    EarlyStopping,
    EarlyStoppingConfig,
    KeepBestConfig,
    watched_values,
)

# ---------------------------------------------------------------------------------------------
# Reference rules, restated from Lightning's source (not from synthlm's code)


def lightning_stop_index(values, mode="min", patience=3, min_delta=0.0, check_finite=True):
    """Index of the check at which Lightning's EarlyStopping sets should_stop (None: never).

    As ``EarlyStopping.__init__`` / ``_evaluate_stopping_criteria``: ``min_delta`` is negated
    for mode min, ``best_score`` starts at +-inf, improvement is
    ``monitor_op(current - min_delta, best_score)`` on tensors.
    """
    op = torch.lt if mode == "min" else torch.gt
    delta = min_delta * (1 if op is torch.gt else -1)
    best = torch.tensor(math.inf if op is torch.lt else -math.inf, dtype=torch.float64)
    wait = 0
    for index, value in enumerate(values):
        current = torch.tensor(value, dtype=torch.float64)
        if check_finite and not torch.isfinite(current):
            return index
        if op(current - delta, best):
            best, wait = current, 0
        else:
            wait += 1
            if wait >= patience:
                return index
    return None


def lightning_top_k(values, k, mode="min"):
    """Steps (indices) ModelCheckpoint(save_top_k=k) holds after all checks, as its dict does."""
    best_k: dict[int, float] = {}
    kth = None
    for index, value in enumerate(values):
        current = torch.tensor(value, dtype=torch.float64)
        if len(best_k) >= k:  # check_monitor_top_k
            op = torch.lt if mode == "min" else torch.gt
            if not op(current, best_k[kth]):
                continue
        if len(best_k) == k:  # _update_best_and_save
            best_k.pop(kth)
        if torch.isnan(current):
            current = torch.tensor(math.inf if mode == "min" else -math.inf, dtype=torch.float64)
        best_k[index] = float(current)
        if len(best_k) == k:
            kth = (max if mode == "min" else min)(best_k, key=best_k.get)
    return set(best_k)


def synthlm_stop_index(values, **options):
    rule = EarlyStopping(EarlyStoppingConfig(metric="eval/val/loss", **options))
    for index, value in enumerate(values):
        rule.update(index + 1, value)
        if rule.stopped:
            return index
    return None


def random_sequences(count=400, seed=0):
    rng = random.Random(seed)
    for _ in range(count):
        values = [round(rng.uniform(0, 1), 1) for _ in range(rng.randint(1, 15))]  # many ties
        if rng.random() < 0.1:
            values[rng.randrange(len(values))] = rng.choice([math.nan, math.inf, -math.inf])
        yield values


SETTINGS = [
    {"mode": mode, "patience": patience, "min_delta": delta, "check_finite": finite}
    for mode in ("min", "max")
    for patience in (1, 2, 5)
    for delta in (0.0, 0.1, 0.25)
    for finite in (True, False)
]


def test_early_stopping_matches_lightnings_rule():
    for values in random_sequences():
        for setting in SETTINGS:
            expected = lightning_stop_index(values, **setting)
            assert synthlm_stop_index(values, **setting) == expected, (values, setting)


def test_early_stopping_matches_lightning_itself():
    callbacks = pytest.importorskip("lightning.pytorch.callbacks")
    for values in random_sequences(100, seed=1):
        for setting in SETTINGS:
            theirs = callbacks.EarlyStopping(monitor="val_loss", **setting)
            stop = None
            for index, value in enumerate(values):
                should_stop, _ = theirs._evaluate_stopping_criteria(torch.tensor(value))
                if should_stop:
                    stop = index
                    break
            assert synthlm_stop_index(values, **setting) == stop, (values, setting)


def test_keep_best_matches_model_checkpoints_top_k():
    for values in random_sequences(seed=2):
        for k in (1, 2, 3):
            for mode in ("min", "max"):
                best = BestCheckpoints(KeepBestConfig(k=k, metric="eval/val/loss", mode=mode))
                for index, value in enumerate(values):
                    best.offer(index, value)
                assert best.steps() == lightning_top_k(values, k, mode), (values, k, mode)


def test_a_missing_metric_is_named_with_the_logged_ones():
    with pytest.raises(UserError, match="logs no eval/val/bpb; it logs eval/val/loss"):
        watched_values({"eval/val/loss": 1.0}, ["eval/val/bpb"])


def test_prune_never_deletes_a_best_checkpoint(tmp_path):
    for step in (2, 4, 6, 8, 10):
        directory = tmp_path / "checkpoints" / f"step-{step}"
        directory.mkdir(parents=True)
        (directory / "trainer_state.json").write_text("{}")
    removed = prune(tmp_path, keep_last=1, keep={4, 6})
    assert sorted(p.name for p in removed) == ["step-2", "step-8"]
    assert [step for step, _ in list_checkpoints(tmp_path)] == [4, 6, 10]


# ---------------------------------------------------------------------------------------------
# Config checks: before any work, exit 2, the key named


def watched_config(root: Path, data, **train) -> dict:
    """Eval on the random-byte store after every step; lr 3e-2 makes its loss stop improving."""
    return tiny_config(
        root,
        data,
        data={"eval": [{"name": "val", "path": str(data["web"]), "max_tokens": 2000}]},
        optim={"lr": 3e-2},
        train={"max_steps": 16, "eval_every": 1, "checkpoint_every": 0, "keep_last": 1, **train},
    )


@pytest.mark.parametrize(
    ("train", "message"),
    [
        (
            {"early_stopping": {"metric": "eval/valid/loss"}},
            "train.early_stopping.metric: 'eval/valid/loss' is not a metric this run logs; "
            "its eval sets log e.g. eval/val/loss",
        ),
        (
            {"keep_best": {"k": 2, "metric": "eval/val/accuracy"}},
            "train.keep_best.metric: 'eval/val/accuracy': a natural eval set logs no",
        ),
        (
            {"early_stopping": {"metric": "eval/val/loss"}, "eval_every": 0},
            "train.early_stopping: needs evaluations during training",
        ),
        ({"keep_best": 2}, "train.keep_best.metric: set the metric"),
        (
            {"early_stopping": {"metric": "eval/val/loss", "patience": 0}},
            "train.early_stopping.patience",
        ),
        (
            {"early_stopping": {"metric": "eval/val/loss", "min_delta": -1}},
            "train.early_stopping.min_delta",
        ),
    ],
)
def test_bad_configs_name_the_key(tmp_path, data, train, message):
    config = watched_config(tmp_path, data, **train)
    with pytest.raises(ConfigError, match=None) as error:
        load_run_config([config])
    assert message in str(error.value)


def test_early_stopping_needs_eval_sets(tmp_path, data):
    config = tiny_config(tmp_path, data, train={"eval_every": 2})
    config["train"]["early_stopping"] = {"metric": "eval/val/loss"}
    with pytest.raises(ConfigError, match="train.early_stopping.metric: this run has no eval"):
        load_run_config([config])


def test_keep_best_alone_takes_early_stoppings_metric(tmp_path, data):
    early = {"metric": "eval/val/loss", "mode": "max"}
    config = load_run_config([watched_config(tmp_path, data, early_stopping=early, keep_best=3)])
    assert config.train.keep_best.model_dump() == {"k": 3, "metric": "eval/val/loss", "mode": "max"}


def test_cli_exits_2_on_an_unknown_metric(tmp_path, data):
    config = watched_config(tmp_path, data, early_stopping={"metric": "eval/heldout/loss"})
    result = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "train.early_stopping.metric" in result.stderr
    assert "eval/val/loss" in result.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Real runs


def eval_losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["eval/val/loss"] for r in read_records(run_dir) if "eval/val/loss" in r}


def train(config: dict) -> Path:
    torch.set_num_threads(1)
    return run(load_run_config([config]))


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, data):
    """An uninterrupted run that early stopping ends (patience 3, every step evaluated)."""
    root = tmp_path_factory.mktemp("stopped")
    early = {"metric": "eval/val/loss", "patience": 3}
    config = watched_config(root, data, early_stopping=early, checkpoint_every=1, keep_last=20)
    return config, train(config)


def test_early_stopping_stops_at_lightnings_evaluation(stopped):
    _, run_dir = stopped
    losses = eval_losses(run_dir)
    steps = sorted(losses)
    stop = lightning_stop_index([losses[s] for s in steps], patience=3)
    assert stop is not None and steps[stop] < 16  # the loss stopped improving
    assert steps[-1] == steps[stop]  # no evaluation after the stop
    last = max(r["step"] for r in read_records(run_dir))
    assert last == steps[stop]
    record = [r for r in read_records(run_dir) if "early_stopping/stopped" in r]
    # it starts, as every record does, with where the run is: the stopping evaluation's position
    evaluation = next(
        r for r in read_records(run_dir) if r["step"] == steps[stop] and "eval/val/loss" in r
    )
    position = {k: v for k, v in evaluation.items() if k == "tokens" or k.startswith("tokens/")}
    assert set(position) == {"tokens", "tokens/web", "tokens/cyclic"}
    assert record == [
        {
            "step": steps[stop],
            **position,
            "early_stopping/stopped": 1,
            "early_stopping/best": min(losses.values()),
            "early_stopping/best_step": min(losses, key=losses.get),
            "early_stopping/evals_without_improvement": 3,
        }
    ]
    info = json.loads((run_dir / "final" / "synthlm.json").read_text())
    assert info["step"] == steps[stop]
    assert "did not improve in 3 evaluations" in info["early_stopping"]["reason"]
    assert list_checkpoints(run_dir)[-1][0] == steps[stop]


def test_resume_makes_the_same_decisions(stopped, tmp_path):
    """A kill after the first evaluation without improvement leaves the checkpoints up to that
    step; the resumed run must count on from there and stop where the uninterrupted one did."""
    config, reference = stopped
    losses = eval_losses(reference)
    best_step = min(losses, key=losses.get)
    killed_at = best_step + 1  # one evaluation without improvement: wait 1 in the state
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    shutil.rmtree(run_dir / "final")
    for step, path in list_checkpoints(run_dir):
        if step > killed_at:
            shutil.rmtree(path)
    assert read_state(run_dir / "checkpoints" / f"step-{killed_at}").early_stopping["wait"] == 1
    train({**config, "run_dir": str(run_dir)})
    assert reproducible(read_records(run_dir)) == reproducible(read_records(reference))
    ours, theirs = final_weights(run_dir), final_weights(reference)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


def test_a_stopped_run_stays_stopped(stopped, tmp_path):
    config, reference = stopped
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    before = (run_dir / "metrics.jsonl").read_text()
    train({**config, "run_dir": str(run_dir)})
    assert (run_dir / "metrics.jsonl").read_text() == before
    assert list_checkpoints(run_dir) == [
        (step, run_dir / path.relative_to(reference)) for step, path in list_checkpoints(reference)
    ]


def test_keep_best_keeps_exactly_the_best_k(tmp_path, data):
    run_dir = train(watched_config(tmp_path, data, keep_best={"k": 3, "metric": "eval/val/loss"}))
    losses = eval_losses(run_dir)
    steps = sorted(losses)
    best = {steps[i] for i in lightning_top_k([losses[s] for s in steps], 3)}
    assert best != {14, 15, 16}  # the high lr makes the ranking more than "the newest"
    kept = {step for step, _ in list_checkpoints(run_dir)}
    assert kept == best | {16}  # plus the newest (keep_last 1)
    ranking = json.loads((run_dir / RANKING_FILE).read_text())
    ranked = sorted(best, key=lambda s: (losses[s], s))
    assert ranking == {
        "metric": "eval/val/loss",
        "mode": "min",
        "k": 3,
        "checkpoints": [
            {"rank": i, "step": s, "value": losses[s], "path": f"checkpoints/step-{s}"}
            for i, s in enumerate(ranked, start=1)
        ],
    }


@pytest.mark.slow
def test_sigkill_then_resume_stops_at_the_same_step(stopped, tmp_path):
    """A real ``synthlm train`` killed (SIGKILL) right after its best evaluation, then rerun."""
    config, reference = stopped
    losses = eval_losses(reference)
    best_step = min(losses, key=losses.get)
    run_dir = tmp_path / "run"
    path = write_config(tmp_path / "run.yaml", {**config, "run_dir": str(run_dir)})
    killed = kill_at_step(path, run_dir / "metrics.jsonl", best_step + 1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (run_dir / "final").exists()
    stop = max(losses)
    assert 0 < list_checkpoints(run_dir)[-1][0] < stop  # it resumes before the stop
    result = synthlm("train", str(path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert reproducible(read_records(run_dir)) == reproducible(read_records(reference))
    ours, theirs = final_weights(run_dir), final_weights(reference)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


def kill_at_step(config: Path, metrics: Path, step: int) -> subprocess.CompletedProcess:
    """Run ``synthlm train`` and SIGKILL it once ``metrics`` has a record of ``step``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthlm", "train", str(config), "--quiet"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and f'"step": {step},' in metrics.read_text(encoding="utf-8"):
            proc.kill()
            break
        time.sleep(0.002)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
