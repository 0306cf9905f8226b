"""A run with phases logs per-source tokens, and resumes bit-identically across a boundary."""

from __future__ import annotations

import shutil

import pytest
import torch
from train_helpers import final_weights, read_records, reproducible, tiny_config

from synthlm.errors import UserError
from synthlm.train import load_run_config, run

PHASES = [
    {"name": "web-only", "steps": 3, "weights": {"web": 1}},
    {"weights": {"web": 1, "cyclic": 1}},
]


def config(root, data):
    train = {"max_steps": 8, "checkpoint_every": 2, "keep_last": 10, "log_every": 1}
    return load_run_config([tiny_config(root, data, data={"phases": PHASES}, train=train)])


def test_phases_resume_across_a_boundary_bit_identically(tmp_path, data):
    reference = run(config(tmp_path / "a", data))
    records = read_records(reference)
    by_step = {r["step"]: r for r in records if "loss" in r}
    assert by_step[3]["tokens/cyclic"] == 0 and by_step[3]["tokens/web"] == 3 * 4 * 32
    assert "loss/cyclic" not in by_step[3] and "loss/cyclic" in by_step[4]
    assert by_step[8]["tokens/cyclic"] == 10 * 32 and by_step[8]["tokens/web"] == 22 * 32

    resumed_cfg = config(tmp_path / "b", data)
    (tmp_path / "b" / "run" / "checkpoints").mkdir(parents=True)
    shutil.copytree(
        reference / "checkpoints" / "step-2", tmp_path / "b" / "run" / "checkpoints" / "step-2"
    )
    resumed = run(resumed_cfg)  # steps 3..8: crosses the boundary after step 3
    later = [r for r in reproducible(read_records(reference)) if r["step"] > 2]
    assert reproducible(read_records(resumed)) == later
    expected, actual = final_weights(reference), final_weights(resumed)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


def test_a_phased_run_can_be_extended_on_resume(tmp_path, data):
    """The open last phase runs past the budget, so a longer budget reads the same samples as a
    run planned that long from the start; a changed earlier boundary is still refused."""

    def phased(root, steps, phases=PHASES):
        train = {"max_steps": steps, "checkpoint_every": 4, "keep_last": 10, "log_every": 1}
        sections = {
            "data": {"phases": phases},
            "train": train,
            "schedule": {"name": "constant_with_warmup"},
        }
        return load_run_config([tiny_config(root, data, **sections)])

    reference = run(phased(tmp_path / "a", 10))
    run(phased(tmp_path / "b", 8))
    extended = run(phased(tmp_path / "b", 10))  # resumes from step 8, planned for 8
    later = [r for r in reproducible(read_records(reference)) if r["step"] > 8]
    assert [r for r in reproducible(read_records(extended)) if r["step"] > 8] == later
    expected, actual = final_weights(reference), final_weights(extended)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)

    moved = [{**PHASES[0], "steps": 2}, PHASES[1]]
    with pytest.raises(UserError, match=r"this config changes phases\.0\.stop, phases\.1\.start"):
        run(phased(tmp_path / "b", 12, moved))
