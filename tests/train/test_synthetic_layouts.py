"""A model is never scored or prompted on a synthetic dataset whose ids mean other tokens.

One spec generated with two seeds swaps which promoter id opens identity and which reverse
(read from the manifests below, not from synthlm's digest); both have the same vocabulary size,
so no size check tells them apart."""

from __future__ import annotations

import json

import pytest
from train_helpers import tiny_config

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.synth import build_dataset, load_spec
from synthlm.train import load_run_config, run


def two_task_dataset(path, seed):
    spec = {
        "name": "tasks",
        "num_tokens": 6000,
        "seed": seed,
        "domains": [
            {"type": "identity", "vocab": {"num_vocab": 30}, "length": {"min": 4, "max": 10}},
            {"type": "reverse", "vocab": {"num_vocab": 30}, "length": {"min": 4, "max": 10}},
        ],
    }
    build_dataset(load_spec(spec), path, quiet=True)
    return path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    found = {seed: two_task_dataset(root / f"seed{seed}", seed) for seed in (0, 1, 2)}
    promoters = {
        seed: json.loads((path / "manifest.json").read_text())["layout"]["promoters"]
        for seed, path in found.items()
    }
    assert promoters[0]["identity"] == promoters[1]["reverse"], "the case under test: swapped"
    assert promoters[0] == promoters[2], "another seed with the same ids"
    return found


def config(tmp_path, data, datasets, eval_seed):
    sources = [
        {"name": "web", "path": str(data["web"]), "weight": 0.5},
        {"name": "tasks", "path": str(datasets[0]), "kind": "synthetic", "weight": 0.5},
    ]
    evals = [
        {"name": "tasks", "path": str(datasets[eval_seed]), "kind": "synthetic", "max_examples": 4}
    ]
    return load_run_config(
        [
            tiny_config(
                tmp_path,
                data,
                data={"sources": sources, "eval": evals},
                model={"num_meta_tokens": 64},
                train={"max_steps": 2, "log_every": 1, "checkpoint_every": 0},
            )
        ]
    )


def test_an_eval_set_of_another_layout_stops_training_before_step_0(tmp_path, data, datasets):
    with pytest.raises(UserError, match=r"data\.eval\.0 \(tasks\): .*seed1 gives its synthetic"):
        run(config(tmp_path, data, datasets, eval_seed=1), progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_eval_refuses_a_dataset_of_another_layout_and_takes_one_of_the_same(
    tmp_path, data, datasets
):
    final = run(config(tmp_path, data, datasets, eval_seed=2), progress=False) / "final"
    recorded = json.loads((final / "synthlm.json").read_text())["synthetic_layouts"]
    assert list(recorded) == ["tasks"]
    swapped = run_cli("eval", str(final), "--data", str(datasets[1]), "-q")
    assert swapped.returncode == 2, swapped.stderr
    assert "gives its synthetic ids other meanings" in swapped.stderr
    same = run_cli("eval", str(final), "--data", str(datasets[2]), "--max-examples", "4", "-q")
    assert same.returncode == 0, same.stderr
    prompt = ["-p", "P.identity0 3 5 7 <ans>", "--temperature", "0", "--max-new-tokens", "4"]
    refused = run_cli("generate", str(final), "--synthetic", str(datasets[1]), *prompt)
    assert refused.returncode == 2 and "other meanings" in refused.stderr
    taken = run_cli("generate", str(final), "--synthetic", str(datasets[2]), *prompt)
    assert taken.returncode == 0, taken.stderr
