"""The prepared GPU check (benchmarks/gpu/check.py) in its CPU smoke mode, so it cannot rot
between the sessions that hold a GPU: every phase runs its real path with tiny shapes (bf16
autocast on CPU, per-block compile with dynamo's eager backend, an FSDP2 launch through
`accelerate launch`, exact resume, KV-cache generation, the gpu-marked tests)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from run_helpers import subprocess_env

GPU_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"


@pytest.fixture()
def check(monkeypatch):
    monkeypatch.syspath_prepend(str(GPU_DIR))
    return importlib.import_module("check")


@pytest.mark.slow
def test_smoke_mode_runs_every_phase_and_writes_the_summary(tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(GPU_DIR / "check.py"),
        "--smoke",
        "--inprocess",
        "--out",
        str(out),
        "--work",
        str(tmp_path / "work"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=subprocess_env())
    summary = json.loads((out / "summary.json").read_text())
    failed = {n: p.get("error") for n, p in summary["phases"].items() if p["status"] != "ok"}
    assert done.returncode == 0 and not failed, (failed, done.stderr[-3000:])
    phases = summary["phases"]
    variants = [
        f"{arch}{v}"
        for arch in ("llama", "pythia")
        for v in ("", "_ckpt", "_compile", "_compile_ckpt")
    ]
    assert set(phases) == {
        "env",
        "llama_batch",
        "t5",
        "depth",
        "pythia_document_mask",
        "fsdp",
        "resume",
        "generate",
        "optimizer",
        "gpu_tests",
        *variants,
    }
    for name in variants:
        run = phases[name]["figures"]
        assert (
            run["tokens_per_s"] > 0
            and run["mfu"] > 0
            and run["loader_headroom"] > 0
            and run["finite"]
        )
        assert run["compile"] == ("blocks" if "compile" in name else False) and run[
            "checkpointing"
        ] == name.endswith("ckpt")
        if "compile" in name:  # one graph serves every layer
            assert (run["compiled_graphs"], run["graph_breaks"]) == (1, 0), name
    t5 = phases["t5"]["figures"]  # first and later blocks of the encoder, and of the decoder
    assert (t5["compiled_graphs"], t5["graph_breaks"], t5["compile_dynamic"]) == (4, 0, False)
    assert phases["llama_batch"]["figures"]["no_ckpt"]["largest_micro_batch"] >= 1
    assert (
        phases["t5"]["figures"]["finite"]
        and phases["depth"]["figures"]["masks"]["sdpa_vs_eager_fp32"] <= 1e-4
    )
    masked = phases["pythia_document_mask"]["figures"]
    assert masked["finite"] and masked["masks"]["sdpa_vs_eager_fp32"] <= 1e-4
    assert phases["resume"]["figures"]["identical"]
    # on CPU accelerate cannot shard: the real launch must be refused by the engine guard
    assert phases["fsdp"]["figures"] == {"sharded": False, "refused_on_cpu": True}
    assert phases["generate"]["figures"]["new_tokens"] == 4 * 8
    optimizer = phases["optimizer"]["figures"]
    assert set(optimizer["step_ms"]) == {"nanoT5 loop", "synthlm loop", "synthlm foreach"}
    assert optimizer["foreach_vs_loop_max_rel_diff"] == 0.0  # bit for bit on CPU
    text = (out / "summary.md").read_text()
    assert all(f"| {name} | ok |" in text for name in phases)


def test_a_failing_phase_is_recorded_and_the_others_still_run(check, tmp_path, monkeypatch):
    def boom(ctx):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(
        check.phases,
        "PHASES",
        {
            "env": (lambda ctx: {"device": "fake"}, 10),
            "boom": (boom, 10),
            "after": (lambda ctx: {"x": 1}, 10),
        },
    )
    summary = check.run_all(
        ["env", "boom", "after"], tmp_path, tmp_path / "work", smoke=True, budget=60, inprocess=True
    )
    statuses = {n: p["status"] for n, p in summary["phases"].items()}
    assert statuses == {"env": "ok", "boom": "failed", "after": "ok"} and not summary["passed"]
    assert "RuntimeError: out of memory, say" in summary["phases"]["boom"]["error"]
    assert json.loads((tmp_path / "summary.json").read_text())["phases"]["after"]["figures"] == {
        "x": 1
    }
    assert "| boom | failed |" in (tmp_path / "summary.md").read_text()


def test_a_phase_over_its_cap_is_stopped_and_recorded(check, tmp_path):
    record = check.child("env", tmp_path, cap=0.05, smoke=True)  # cannot even import torch in 50 ms
    assert record["status"] == "timeout" and "cap" in record["error"]


def test_a_phase_stopped_at_its_cap_takes_what_it_launched_along(check, tmp_path):
    """The fsdp phase runs `accelerate launch`, which starts the training process: stopping a
    phase at its cap must stop what it started too (on a GPU it would hold the memory)."""
    marker = str(tmp_path / "grandchild")
    sleeper = f"{sys.executable} -c 'import time; time.sleep(60)' {marker}"
    script = f"{sleeper} & {sleeper}; wait"  # a child that starts a child
    started = time.perf_counter()
    assert check.run_capped(["bash", "-c", script], cap=1.0)[0] is None
    assert time.perf_counter() - started < 20
    time.sleep(0.3)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert marker not in ps


def test_a_phase_stopped_at_its_cap_keeps_the_steps_it_timed(check, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(check.phases.wl, "PARTIAL", check.partial_path(work, "llama"))
    check.phases.wl.save_partial({"steps": 5, "step_s": 0.41})  # what timed_run writes per step
    record = check.timeout_record("llama", work, 30, "")
    assert record["status"] == "timeout" and record["partial_figures"]["step_s"] == 0.41
    assert check.timeout_record("t5", work, 30, "").get("partial_figures") is None


def test_timed_runs_leave_their_figures_after_every_step(check, tmp_path, monkeypatch):
    # fp32: accelerate keeps one mixed-precision state per process, and other tests set fp32
    shapes = {**check.phases.SMOKE, "precision": "fp32"}
    ctx = check.phases.Context(shapes, tmp_path, smoke=True, peak_flops=1e12)
    monkeypatch.setattr(check.phases.wl, "PARTIAL", tmp_path / "partial.json")
    figures = check.phases.train_variant(ctx, "llama", compile_=False, ckpt=False)
    partial = json.loads((tmp_path / "partial.json").read_text())
    assert partial["steps"] == figures["steps"] == 3 and partial["step_s"] == figures["step_s"]


def test_phases_get_their_whole_cap_while_the_budget_lasts(check, tmp_path, monkeypatch):
    """First come, first served: the budget (12 s) is less than the caps together (30 s), yet
    the first phases (the targets') keep their whole caps; only the shortfall at the end bites."""
    monkeypatch.setattr(
        check.phases, "PHASES", {n: (lambda ctx: {}, 10) for n in ("env", "target", "extra")}
    )
    summary = check.run_all(
        ["env", "target", "extra"], tmp_path, tmp_path / "w", smoke=False, budget=12, inprocess=True
    )
    assert [p["cap_s"] for p in summary["phases"].values()] == [10, 10, 10]


def test_phases_share_out_a_budget_that_has_run_out(check, tmp_path, monkeypatch):
    monkeypatch.setattr(
        check.phases, "PHASES", {"env": (lambda ctx: {}, 10), "late": (lambda ctx: {}, 10)}
    )
    summary = check.run_all(
        ["env", "late"], tmp_path, tmp_path / "work", smoke=False, budget=1, inprocess=True
    )
    assert summary["phases"]["late"]["status"] == "skipped"
