"""``train.loss_average``: the gradient of one optimizer step equals the stated average.

The references restate each rule with plain torch on a copy of the model's starting weights,
one micro-batch at a time: ``tokens`` is the summed token loss of the step over its targets;
``micro_batch`` is what a ``CrossEntropyLoss(reduction="mean")`` under gradient accumulation
and DDP gives (Lightning, Rocket, nanoT5, the HF Trainer before 4.46): the mean of each
micro-batch's own mean. The test data carries loss masks, so rows hold different numbers of
targets and the two rules give different gradients.
"""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F
from train_helpers import tiny_config

from run_helpers import synthlm, write_config
from synthlm.train import load_run_config
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run

IGNORE = -100


def one_step(tmp_path, data, loss_average: str) -> tuple[torch.nn.Module, list, dict, float]:
    """The starting model, the step's micro-batches, the gradient synthlm steps with, its loss."""
    config = load_run_config(
        [
            tiny_config(
                tmp_path / loss_average,
                data,
                train={
                    "max_steps": 1,
                    "batch_size": 2,
                    "global_batch_size": 8,  # 4 micro-batches of 2 rows
                    "loss_average": loss_average,
                    "clip_grad": None,
                    "checkpoint_every": 0,
                },
            )
        ]
    )
    trainer = Trainer(plan_run(config, 1), progress=False)
    trainer.start(None)
    model = trainer.accelerator.unwrap_model(trainer.model)
    start = copy.deepcopy(model)
    micro_batches = next(iter(trainer._batches()))
    grads: dict[str, torch.Tensor] = {}

    def capture(*args, **kwargs):  # the optimizer step, replaced by a look at what it would use
        grads.update({n: p.grad.detach().clone() for n, p in model.named_parameters()})

    trainer.optimizer.step = capture
    result = trainer.train_step(micro_batches)
    assert grads, "the step reached no optimizer update"
    return start, micro_batches, grads, result.loss


def token_losses(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy of one micro-batch and its number of targets."""
    assert set(batch) <= {"input_ids", "labels", "source"}, set(batch)  # nothing else to feed
    logits = model(input_ids=batch["input_ids"]).logits.float()
    labels = batch["labels"][:, 1:]
    summed = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return summed, (labels != IGNORE).sum()


def reference(start: torch.nn.Module, micro_batches: list, rule: str) -> tuple[dict, float]:
    model = copy.deepcopy(start)
    parts = [token_losses(model, b) for b in micro_batches]
    if rule == "tokens":
        loss = sum(s for s, _ in parts) / sum(n for _, n in parts)
    else:  # torch's mean reduction per micro-batch, averaged over the step's micro-batches
        means = [s / n for s, n in parts if n > 0]
        loss = sum(means) / len(means)
    loss.backward()
    return {n: p.grad for n, p in model.named_parameters()}, float(loss.detach())


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # step replaced
@pytest.mark.parametrize("rule", ["tokens", "micro_batch"])
def test_the_step_gradient_is_the_stated_average(tmp_path, data, rule):
    start, micro_batches, grads, loss = one_step(tmp_path, data, rule)
    counts = [int((b["labels"][:, 1:] != IGNORE).sum()) for b in micro_batches]
    assert len(micro_batches) == 4 and len(set(counts)) > 1, counts  # the rules must differ here
    expected, expected_loss = reference(start, micro_batches, rule)
    other, _ = reference(start, micro_batches, "micro_batch" if rule == "tokens" else "tokens")
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-7, msg=name)
    apart = max(float((expected[n] - other[n]).abs().max()) for n in grads)
    scale = max(float(expected[n].abs().max()) for n in grads)
    assert apart > 1e-3 * scale, "the data does not tell the two rules apart"


def test_micro_batches_without_a_target_are_left_out_of_the_mean():
    """Counts (0, 4, 2) in one process with 3 accumulation steps: accelerate divides each
    backward by 3, so the weights the summed losses end with are 0-free means of the other two
    (torch's mean over no target would be NaN)."""
    fake = types.SimpleNamespace(
        plan=types.SimpleNamespace(batch=types.SimpleNamespace(processes=1, accum=3)),
        cfg=types.SimpleNamespace(train=types.SimpleNamespace(loss_average="micro_batch")),
    )
    totals = torch.tensor([6.0, 2.0], dtype=torch.float64)
    scales = [float(s) / 3 for s in Trainer._loss_scales(fake, [0, 4, 2], totals)]
    assert scales[1:] == pytest.approx([1 / 2 / 4, 1 / 2 / 2])
    fake.cfg.train.loss_average = "tokens"
    scales = [float(s) / 3 for s in Trainer._loss_scales(fake, [0, 4, 2], totals)]
    assert scales == pytest.approx([1 / 6] * 3)


def test_an_unknown_rule_is_refused_before_any_work(tmp_path, data):
    config = write_config(
        tmp_path / "bad.yaml", tiny_config(tmp_path, data, train={"loss_average": "rows"})
    )
    done = synthlm("train", str(config))
    assert done.returncode == 2, done.stderr
    assert "train.loss_average" in done.stderr and "micro_batch" in done.stderr
    assert not (tmp_path / "run").exists()


def test_eval_scores_held_out_text_per_batch_in_training_and_offline(tmp_path, data):
    """A micro_batch run's eval loss is its per-batch mean in training, and `synthlm eval` on
    its checkpoint scores the same way (the run's rule and eval batch size) to the same number."""
    from train_helpers import read_records

    from synthlm.evaluate.offline import evaluate_checkpoint
    from synthlm.train import run

    eval_set = {"name": "held", "path": str(data["cyclic"]), "max_tokens": 600}
    config = tiny_config(
        tmp_path,
        data,
        data={"packing": False, "eval": [eval_set]},
        schedule={"warmup_steps": 0},
        train={"max_steps": 2, "loss_average": "micro_batch", "eval_batch_size": 3},
    )
    run(load_run_config([config]))
    logged = [r for r in read_records(tmp_path / "run") if "eval/held/loss" in r][-1]
    report, _ = evaluate_checkpoint(tmp_path / "run" / "final", device="cpu", quiet=True)
    assert (report["loss_average"], report["batch_size"]) == ("micro_batch", 3)
    assert report["metrics"]["eval/held/loss"] == pytest.approx(logged["eval/held/loss"], 1e-5)
    by_token, _ = evaluate_checkpoint(
        tmp_path / "run" / "final", device="cpu", quiet=True, batch_size=10**6
    )  # one batch of every row: the token mean, another number
    # 2 steps leave the model near uniform, so the two differ little, but well above rounding
    assert by_token["metrics"]["eval/held/loss"] != pytest.approx(logged["eval/held/loss"], 1e-6)
