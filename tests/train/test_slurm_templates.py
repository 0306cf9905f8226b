"""The SLURM templates run the commands they should, checked with a fake ``srun``/``scontrol``.

There is no Slurm here: ``srun`` and ``scontrol`` are small scripts on PATH that record their
arguments and environment (this is the one place a mock stands in for the real side). The
templates' own pre-flight (``synthlm train --dry-run``) is real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from train_helpers import subprocess_env, tiny_config, write_config

from synthlm.train import load_run_config
from synthlm.train.run_plan import plan_batch

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "examples" / "slurm"

FAKE_SRUN = """#!/bin/bash
python - "$@" <<'PY'
import json, os, sys
keys = ("SRUN_CPUS_PER_TASK", "OMP_NUM_THREADS", "MASTER_ADDR", "MASTER_PORT", "NCCL_ASYNC_ERROR_HANDLING")
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"srun": sys.argv[1:], "env": {k: os.environ.get(k) for k in keys}}) + "\\n")
PY
if [ -n "${FAKE_WAIT_FOR_SIGNAL:-}" ]; then
  trap 'echo saved >> "$FAKE_LOG.saved"; exit 0' TERM   # synthlm: checkpoint, then exit 0
  touch "$FAKE_LOG.started"
  sleep 60 & wait
fi
exit "${FAKE_SRUN_STATUS:-0}"
"""
FAKE_SCONTROL = """#!/bin/bash
if [ "$1" = show ]; then printf 'node-a\\nnode-b\\n'; exit 0; fi
echo "scontrol $*" >> "$FAKE_LOG.scontrol"
"""


def sbatch_value(text: str, key: str) -> str:
    return re.search(rf"^#SBATCH --{key}=(\S+)", text, re.M).group(1)


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "log"
    env = {
        **subprocess_env(),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "SLURM_JOB_NODELIST": "node-[a-b]",
        "SLURM_NNODES": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_CPUS_PER_TASK": "8",
        "SLURM_JOB_ID": "4242",
    }
    return env, log


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_multinode_template_divides_the_global_batch_of_the_config_it_advertises():
    text = (SLURM / "multinode.sbatch").read_text()
    assert "examples/configs/llama125m.yaml" in text
    processes = int(sbatch_value(text, "nodes")) * int(sbatch_value(text, "ntasks-per-node"))
    assert int(sbatch_value(text, "gpus-per-node")) == int(sbatch_value(text, "ntasks-per-node"))
    config = load_run_config([str(ROOT / "examples" / "configs" / "llama125m.yaml")])
    plan = plan_batch(config.train, processes)  # raises ConfigError if it does not divide
    assert plan.global_batch == config.train.global_batch_size


def test_multinode_template_preemption_and_multinode_settings():
    text = (SLURM / "multinode.sbatch").read_text()
    for line in ("#SBATCH --signal=USR1@180", "#SBATCH --requeue", "export SRUN_CPUS_PER_TASK"):
        assert line in text
    assert "--deepspeed_multinode_launcher standard" in text
    assert "NCCL_ASYNC_ERROR_HANDLING=1" not in text.replace("TORCH_NCCL_ASYNC_ERROR_HANDLING", "")
    assert "29500" not in text


@pytest.mark.slow
def test_multinode_starts_one_task_per_gpu_and_requeues_an_unfinished_run(
    tmp_path, data, fake_slurm
):
    env, log = fake_slurm
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, data))
    done = subprocess.run(
        ["bash", str(SLURM / "multinode.sbatch"), str(config), "train.max_steps=3"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (call,) = records(log)
    assert call["srun"][0] == "--kill-on-bad-exit=1" and call["srun"][1:3] == ["bash", "-c"]
    assert "exec python -m synthlm train" in call["srun"][3] and call["srun"][4:] == [
        "_",
        str(config),
        "train.max_steps=3",
    ]
    assert call["env"]["SRUN_CPUS_PER_TASK"] == "8" and call["env"]["MASTER_ADDR"] == "node-a"
    assert (
        call["env"]["MASTER_PORT"] != "29500" and call["env"]["NCCL_ASYNC_ERROR_HANDLING"] is None
    )
    assert (Path(f"{log}.scontrol")).read_text() == "scontrol requeue 4242\n"


@pytest.mark.slow
def test_multinode_stops_before_srun_when_the_batch_does_not_divide(tmp_path, data, fake_slurm):
    env, log = fake_slurm  # 2 nodes x 2 tasks x batch 4 = 16 per pass; 24 does not divide
    config = write_config(
        tmp_path / "run.yaml", tiny_config(tmp_path, data, train={"global_batch_size": 24})
    )
    done = subprocess.run(
        ["bash", str(SLURM / "multinode.sbatch"), str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2 and "global_batch_size=24 does not divide" in done.stderr
    assert records(log) == []


@pytest.mark.slow
def test_requeue_template_survives_sigterm_to_the_whole_job_and_requeues(
    tmp_path, data, fake_slurm
):
    """PreemptMode=CANCEL: Slurm sends SIGTERM to every process of the job, the batch shell too."""
    env, log = fake_slurm
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, data))
    job = subprocess.Popen(
        ["bash", str(SLURM / "requeue.sbatch"), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "FAKE_WAIT_FOR_SIGNAL": "1"},
        cwd=tmp_path,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not Path(f"{log}.started").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 0, err
    assert Path(f"{log}.saved").read_text() == "saved\n"
    assert Path(f"{log}.scontrol").read_text() == "scontrol requeue 4242\n"
