"""RUN/final is a plain Hugging Face model dir: transformers alone loads it (no synthlm import)
and its logits equal those of the model synthlm trained; checkpoints hold what DESIGN.md lists."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from train_helpers import subprocess_env, tiny_config

from synthlm.train import load_run_config
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run

HF_ONLY = """
import json, sys
import numpy as np, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
final, out = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(final)
model = AutoModelForCausalLM.from_pretrained(final).eval()
ids = tokenizer("To be, or not to be", return_tensors="pt")["input_ids"]
with torch.no_grad():
    np.save(out + "/logits.npy", model(ids).logits.numpy())
np.save(out + "/ids.npy", ids.numpy())
assert not any(name.split(".")[0] == "synthlm" for name in sys.modules), "synthlm was imported"
print(json.dumps({"class": type(model).__name__, "vocab": model.config.vocab_size, "eos": model.config.eos_token_id}))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("final")
    config = load_run_config(
        [
            tiny_config(
                root,
                data,
                model={"num_meta_tokens": 70},
                train={"max_steps": 3, "checkpoint_every": 2},
            )
        ]
    )
    trainer = Trainer(plan_run(config, 1), progress=False)
    trainer.start(None)
    trainer.fit()
    return trainer


@pytest.mark.slow
def test_final_dir_loads_with_transformers_alone_and_gives_the_same_logits(trained, tmp_path):
    final = trained.run_dir / "final"
    done = subprocess.run(
        [sys.executable, "-c", HF_ONLY, str(final), str(tmp_path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout.strip().splitlines()[-1])
    # 260 natural ids + 70 meta ids, rounded up to a multiple of 64
    assert info == {"class": "LlamaForCausalLM", "vocab": 384, "eos": trained.plan.tokenizer.eos_id}
    ids = torch.from_numpy(np.load(tmp_path / "ids.npy"))
    assert ids.tolist()[0] == trained.plan.tokenizer.encode("To be, or not to be")
    model = trained.accelerator.unwrap_model(trained.model).eval()
    with torch.no_grad():
        ours = model(ids).logits
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "logits.npy")), ours)


def test_checkpoint_holds_model_tokenizer_config_and_trainer_state(trained):
    checkpoints = trained.run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-2", "step-3"]
    step = checkpoints / "step-2"
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "config.yaml",
        "synthlm.json",
        "trainer_state.json",
    ):
        assert (step / name).is_file(), name
    assert {"optimizer.bin", "scheduler.bin", "random_states_0.pkl"} <= {
        p.name for p in (step / "trainer").iterdir()
    }
    optimizer = torch.load(step / "trainer" / "optimizer.bin", weights_only=True)  # no pickled code
    assert (
        optimizer["state"]
        and torch.load(step / "trainer" / "scheduler.bin", weights_only=True)["last_epoch"] == 2
    )
    state = json.loads((step / "trainer_state.json").read_text())
    assert (state["step"], state["samples"], state["tokens"]) == (2, 8, 8 * 32)
    assert json.loads((step / "synthlm.json").read_text())["layout"] == {
        "natural_size": 260,
        "meta_offset": 260,
        "meta_size": 70,
        "model_vocab_size": 384,
    }
    assert load_run_config([step / "config.yaml"]) == trained.cfg


def test_init_from_continues_pretraining_from_a_final_dir(trained, tmp_path, data):
    """Continued pretraining starts from the saved weights, not from a fresh random init."""
    from train_helpers import read_records

    from synthlm.train import run

    config = tiny_config(tmp_path, data, train={"max_steps": 1})
    config["model"] = {"num_meta_tokens": 70, "init_from": str(trained.run_dir / "final")}
    run(load_run_config([config]))
    first = read_records(tmp_path / "run")[0]["loss"]
    scratch = read_records(trained.run_dir)[0]["loss"]
    assert first < scratch - 0.05, (first, scratch)


HF_GENERATE = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
final = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(final)
model = AutoModelForCausalLM.from_pretrained(final).eval()
torch.manual_seed(0)
out = model.generate(**tokenizer("To be", return_tensors="pt"), do_sample=True, num_return_sequences=2,
                     temperature=1.0, top_k=0, max_new_tokens=200, min_new_tokens=200)
print(json.dumps({"ids": out[:, -200:].tolist()}))
"""


@pytest.mark.slow
def test_plain_transformers_generation_never_samples_meta_or_padding_ids(trained):
    """generation_config.json carries suppress_tokens for every id past the natural vocabulary,
    and the tokenizer returns only what the model's forward accepts (no token_type_ids)."""
    final = trained.run_dir / "final"
    natural = trained.plan.layout.natural_size
    config = json.loads((final / "generation_config.json").read_text())
    assert config["suppress_tokens"] == list(range(natural, 384))
    # only the saved file: the live model still generates meta ids for synthetic-task evaluation
    assert trained.accelerator.unwrap_model(trained.model).generation_config.suppress_tokens is None
    done = subprocess.run(
        [sys.executable, "-c", HF_GENERATE, str(final)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [i for row in json.loads(done.stdout.strip().splitlines()[-1])["ids"] for i in row]
    assert len(ids) == 400 and max(ids) < natural
