"""After-step hooks: each decides when it acts; a new one needs no change to the loop."""

from __future__ import annotations

from types import SimpleNamespace

from train_helpers import read_records, tiny_config

from synthlm.train.config import load_run_config
from synthlm.train.hooks import CheckpointHook, EvalHook, LMEvalHook, LogHook, default_hooks


def steps_of(hook, total: int) -> list[int]:
    return [step for step in range(1, total + 1) if hook.should_run(step)]


def test_cadences_match_the_train_keys():
    # written out by hand from the keys' documentation: every N steps, plus the last step for
    # logging and evaluation; a checkpoint at the last step is fit()'s, not the hook's
    assert steps_of(LogHook(3, 10), 10) == [3, 6, 9, 10]
    assert steps_of(EvalHook(4, 10), 10) == [4, 8, 10]
    assert steps_of(EvalHook(0, 10), 10) == [10]
    # eval_every: epoch with 2.5 steps an epoch: epochs end during steps 3, 5, 8 and 10
    assert steps_of(EvalHook(2.5, 10), 10) == [3, 5, 8, 10]
    assert steps_of(CheckpointHook(5, 10), 10) == [5]
    assert steps_of(CheckpointHook(0, 10), 10) == []
    suite = SimpleNamespace(due=lambda step, last: last or step % 6 == 0)
    assert steps_of(LMEvalHook(suite, 10), 10) == [6, 10]


def test_default_hooks_run_in_order_and_only_those_the_run_needs():
    def trainer(has_eval, lm_eval):
        train = SimpleNamespace(log_every=1, eval_every=2, checkpoint_every=3)
        return SimpleNamespace(
            cfg=SimpleNamespace(train=train),
            plan=SimpleNamespace(total_steps=9, has_eval=has_eval),
            lm_eval=lm_eval,
            watch=None,  # no train.early_stopping / keep_best
        )

    assert [type(h) for h in default_hooks(trainer(False, None))] == [LogHook, CheckpointHook]
    kinds = [type(h) for h in default_hooks(trainer(True, object()))]
    assert kinds == [LogHook, EvalHook, LMEvalHook, CheckpointHook]


def test_a_custom_hook_acts_at_its_steps_after_the_built_in_ones(tmp_path, data, monkeypatch):
    from synthlm.train import loop

    seen: list[tuple[int, int]] = []

    class Every3:
        def should_run(self, step: int) -> bool:
            return step % 3 == 0

        def run(self, trainer, result) -> None:
            seen.append((trainer.state.step, len(read_records(trainer.run_dir))))

    original = loop.default_hooks
    monkeypatch.setattr(loop, "default_hooks", lambda trainer: [*original(trainer), Every3()])
    loop.run(
        load_run_config(
            [tiny_config(tmp_path, data, train={"max_steps": 6, "checkpoint_every": 0})]
        )
    )
    assert seen == [(3, 3), (6, 6)]  # the log hook (every step) wrote its record first
