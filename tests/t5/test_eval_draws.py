"""``train.eval_draws``: what an evaluation's random choices are.

The original collators draw with a global generator every time they build a batch, evaluation
batches included: nanoT5's and the DEPTH code's span corruption (``np.random`` in
``random_spans_noise_mask``), the DEPTH tokenizer's ``<sent_i>`` shuffle, and
``DataCollatorForNI``'s ``random.choice`` of an instance's output and (tk_instruct) of its
encoding. So each evaluation of those runs sees other masks, targets and prompts. What is
checked here, with ``per_evaluation``: two evaluations of the same model at different steps
draw differently and score differently; each draw is one the collator could make (an output of
the instance, one of the five encodings, a permutation of the sentence tokens); over many
evaluations every choice comes up; the same step draws the same (exact resume). With ``fixed``
(the default) the step changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from t5_run_helpers import TINY_T5, pt_config, read_records, synthlm, write_config
from test_natural_instructions import checkout

from synthlm.finetune.config import DepthInputsConfig, FinetuneConfig, NaturalInstructionsConfig
from synthlm.finetune.data import load_pairs
from synthlm.finetune.draws import drawn_for_evaluation
from synthlm.finetune.natural_instructions import read_instances
from synthlm.finetune.pair_plan import pair_layout
from synthlm.objectives.text_to_text import TextToText
from synthlm.tokenizers import load_tokenizer
from synthlm.train import load_run_config
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run
from synthlm.train.seq2seq_eval import drawn_objective, evaluate_seq2seq

PT_OBJECTIVES = {
    "span_corruption": {"name": "span_corruption"},
    "depth": {"name": "depth", "max_sentences": 6, "splitter": "rules"},
}


@pytest.mark.parametrize("name", sorted(PT_OBJECTIVES))
@pytest.mark.parametrize("draws", ["fixed", "per_evaluation"])
def test_eval_masks_are_drawn_anew_per_evaluation_only_when_asked(name, draws, tmp_path, t5_data):
    config = pt_config(tmp_path, t5_data, PT_OBJECTIVES[name], train={"eval_draws": draws})
    trainer = Trainer(plan_run(load_run_config([config]), 1), progress=False)
    plan = trainer.plan
    seed = plan.objective.config.seed
    store_window = plan.objective.window_length(plan.seq_len)
    rng = np.random.default_rng(0)
    windows = [
        _sample(rng.integers(10, 200, store_window), store_window) for _ in range(4)
    ]  # the same raw windows, corrupted for two evaluations

    def inputs(step: int) -> torch.Tensor:
        return drawn_objective(plan, step).collate(windows)["input_ids"]

    def scored(step: int) -> dict[str, float]:
        with torch.no_grad():
            return evaluate_seq2seq(plan, trainer.model, torch.device("cpu"), step=step)

    assert torch.equal(inputs(4), inputs(4))  # a step draws the same: resume repeats it
    assert scored(4) == scored(4)
    if draws == "fixed":
        assert torch.equal(inputs(4), inputs(8))
        assert scored(4) == scored(8)
        assert drawn_objective(plan, 4) is plan.objective
    else:
        assert not torch.equal(inputs(4), inputs(8))
        assert scored(4)["eval/valid/loss"] != scored(8)["eval/valid/loss"]
        # the objective's own config is untouched: training keeps its masks
        assert plan.objective.config.seed == seed


def _sample(tokens: np.ndarray, length: int):
    from synthlm.data.mixture import Sample

    return Sample(tokens, np.ones(length, dtype=np.uint8), np.zeros(length, dtype=np.int32), 0)


def ni_pairs(root, tokenizer, draws: str, **settings):
    ni = NaturalInstructionsConfig(max_num_instances_per_eval_task=10, **settings)
    cfg = FinetuneConfig(valid=root, max_input_length=512, max_target_length=64,
                         natural_instructions=ni)  # fmt: skip
    layout = pair_layout(tokenizer.vocab_size, 0)
    return load_pairs("valid", root, cfg, tokenizer, layout, seed=4, eval_draws=draws), ni


def test_natural_instructions_targets_and_encodings_are_drawn_at_each_evaluation(t5_data, tmp_path):
    root = checkout(tmp_path / "ni", size=20)
    _, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    pairs, ni = ni_pairs(root, tokenizer, "per_evaluation", tk_instruct=True)
    fixed, _ = ni_pairs(root, tokenizer, "fixed", tk_instruct=True)
    instances = read_instances(root, "valid", ni, seed=4)
    several = [i for i, x in enumerate(instances) if len(set(x.outputs)) > 1]
    assert several
    targets: dict[int, set[str]] = {k: set() for k in several}
    prompts: dict[int, set[tuple[int, ...]]] = {k: set() for k in range(len(instances))}
    for step in range(1, 41):
        drawn = drawn_for_evaluation(pairs, 4, step)
        again = drawn_for_evaluation(pairs, 4, step)
        assert all(
            np.array_equal(a.input_ids, b.input_ids) and a.target_text == b.target_text
            for a, b in zip(drawn.pairs, again.pairs)
        )
        for k, (pair, instance) in enumerate(zip(drawn.pairs, instances)):
            # a target is one of the instance's outputs, its ids that output's ids and </s>
            assert pair.target_text in instance.outputs
            expected = [*tokenizer.encode_batch([pair.target_text])[0], tokenizer.eos_id]
            assert pair.target_ids.tolist() == expected
            assert pair.references == instance.outputs
            prompts[k].add(tuple(pair.input_ids.tolist()))
            if k in targets:
                targets[k].add(pair.target_text)
    for k in several:  # over 40 evaluations every output comes up (random.choice)
        assert targets[k] == set(instances[k].outputs)
    # every prompt drawn is one of the five, and more than one comes up
    assert all(len(p) > 1 for p in prompts.values())
    assert all(len(p) <= 5 for p in prompts.values())
    # the fixed draw of a pair is one of the prompts the evaluations draw from
    assert all(tuple(f.input_ids.tolist()) in prompts[k] for k, f in enumerate(fixed.pairs))


def test_sentence_ids_are_shuffled_anew_at_each_evaluation(t5_data, tmp_path) -> None:
    from synthlm.text.special_tokens import with_t5_tokens

    root = checkout(tmp_path / "ni", size=12)
    base = load_tokenizer(t5_data["tok"])
    with_t5_tokens(base, num_sentinels=100, num_sentence_tokens=20).save(tmp_path / "tok")
    _, tokenizer = TextToText.create(load_tokenizer(tmp_path / "tok"))
    depth = DepthInputsConfig(splitter="rules", sentence_ids="shuffled")
    ni = NaturalInstructionsConfig(max_num_instances_per_eval_task=6, example_fit="always")
    cfg = FinetuneConfig(
        valid=root, max_input_length=96, max_target_length=16, depth_inputs=depth,
        natural_instructions=ni,
    )  # fmt: skip
    layout = pair_layout(tokenizer.vocab_size, 0)
    for draws in ("fixed", "per_evaluation"):
        pairs = load_pairs("valid", root, cfg, tokenizer, layout, seed=1, eval_draws=draws)
        sentence_ids = pairs.sentence_tokens.tolist()
        assert len(sentence_ids) == 20
        first, later = (drawn_for_evaluation(pairs, 1, s) if draws != "fixed" else pairs
                        for s in (3, 9))  # fmt: skip
        for a, b in zip(first.pairs, later.pairs):
            marks = np.isin(a.input_ids, sentence_ids)
            assert np.array_equal(marks, np.isin(b.input_ids, sentence_ids))
            assert np.array_equal(a.input_ids[~marks], b.input_ids[~marks])
            used = a.input_ids[marks].tolist()
            assert len(set(used)) == len(used)  # a permutation's first ones: no id twice
        moved = sum(not np.array_equal(a.input_ids, b.input_ids)
                    for a, b in zip(first.pairs, later.pairs))  # fmt: skip
        assert (moved > 0) == (draws == "per_evaluation")


def test_per_evaluation_needs_something_to_draw(tmp_path, t5_data, glue) -> None:
    """A run whose evaluation draws nothing is refused, before any work (exit 2)."""
    pt = pt_config(tmp_path, t5_data, {"name": "clm"}, train={"eval_draws": "per_evaluation"})
    pt["model"] = {"arch": "llama", "preset": "tiny"}
    done = synthlm("train", str(write_config(tmp_path / "clm.yaml", pt)), "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "train.eval_draws: per_evaluation: objective 'clm' draws nothing" in done.stderr
    ft = {
        "run_dir": str(tmp_path / "ft"),
        "mode": "ft",
        "model": TINY_T5,
        "finetune": {"train": str(glue["train"]), "valid": str(glue["valid"]), "task": "sst2",
                     "tokenizer": str(t5_data["tok"])},
        "train": {"max_steps": 2, "batch_size": 4, "eval_draws": "per_evaluation"},
    }  # fmt: skip
    done = synthlm("train", str(write_config(tmp_path / "ft.yaml", ft)), "--dry-run")
    assert done.returncode == 2, done.stderr
    assert "train.eval_draws: per_evaluation: finetune.valid" in done.stderr
    assert "draws nothing at evaluation" in done.stderr and "Traceback" not in done.stderr


def test_a_resumed_run_repeats_its_redrawn_evaluations(tmp_path, t5_data) -> None:
    """Evaluations keyed by step: a run stopped at step 4 and resumed logs what one straight
    run logs."""
    root = checkout(tmp_path / "ni", size=16)

    def run(name: str, steps: int, draws: str) -> list[dict]:
        config = {
            "run_dir": str(tmp_path / name),
            "seed": 0,
            "mode": "ft",
            "model": TINY_T5,
            "finetune": {
                "train": str(root), "valid": str(root), "max_input_length": 128,
                "max_target_length": 16, "tokenizer": str(t5_data["tok"]),
                "natural_instructions": {"max_num_instances_per_eval_task": 6},
                "eval_protocol": "teacher_forced",
            },
            "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0},
            "schedule": {"name": "constant"},
            "train": {"max_steps": steps, "batch_size": 4, "log_every": 2, "eval_every": 2,
                      "checkpoint_every": 4, "eval_draws": draws},
            "logging": {"tensorboard": False, "progress": False},
        }  # fmt: skip
        path = write_config(tmp_path / f"{name}-{steps}.yaml", config)
        done = synthlm("train", str(path), "--quiet")
        assert done.returncode == 0, done.stderr
        return [
            {k: v for k, v in r.items() if k.startswith("eval/valid/")} | {"step": r["step"]}
            for r in read_records(tmp_path / name)
            if "eval/valid/loss" in r
        ]

    straight = run("straight", 6, "per_evaluation")
    run("resumed", 4, "per_evaluation")
    resumed = run("resumed", 6, "per_evaluation")
    assert [r["step"] for r in straight] == [2, 4, 6]
    assert resumed == straight
