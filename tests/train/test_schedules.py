"""Learning-rate schedules: shapes at their landmarks (warmup end, final step, decay start).

Step for step agreement with HF's, torch's (nanoT5's) and GPT-NeoX's schedules is tested in
test_schedules_match_originals.py."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from synthlm.config import validate
from synthlm.errors import ConfigError
from synthlm.train.schedules import READ_BY, SCHEDULES, ScheduleConfig, build_schedule


def schedule(total=100, **fields):
    return build_schedule(validate(ScheduleConfig, fields), total)


@pytest.mark.parametrize(
    "name", ["constant_with_warmup", "linear", "cosine", "inverse_sqrt", "wsd"]
)
def test_warmup_rises_linearly_from_zero_to_the_peak(name):
    f = schedule(name=name, warmup_steps=10)
    ramp = [f(s) for s in range(11)]
    assert ramp[0] == 0 < ramp[5] < ramp[9] < 1 and ramp[10] == pytest.approx(1.0)
    assert all(b - a == pytest.approx(1 / 10) for a, b in itertools.pairwise(ramp))


@pytest.mark.parametrize("name", ["linear", "cosine", "wsd"])
def test_decaying_schedules_reach_the_final_lr_ratio_one_step_after_the_last(name):
    f = schedule(name=name, warmup_steps=5, final_lr_ratio=0.1)
    assert f(100) == pytest.approx(0.1) and f(5) == pytest.approx(1.0)
    assert 0.1 < f(99) < 0.1 + 0.9 * 0.1  # the last step trains just above the floor


def test_cosine_is_halfway_at_the_middle_of_the_decay():
    f = schedule(name="cosine", warmup_steps=0, final_lr_ratio=0.0, total=100)
    assert f(50) == pytest.approx(0.5)


def test_wsd_is_flat_until_the_decay_phase():
    f = schedule(name="wsd", warmup_steps=10, decay_ratio=0.2, final_lr_ratio=0.0)
    assert all(f(s) == 1.0 for s in range(10, 81))
    assert 0 < f(90) < 1 and f(99) == pytest.approx(0.05)  # one of 20 decay steps left


def test_inverse_sqrt_halves_at_four_times_the_warmup():
    f = schedule(name="inverse_sqrt", warmup_steps=10)
    assert f(40) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)


def test_warmup_ratio_is_a_fraction_of_the_run_rounded_up():
    f = schedule(name="linear", warmup_ratio=0.1, final_lr_ratio=0.0, total=200)
    assert f(19) < 1 and f(20) == pytest.approx(1.0)
    assert validate(ScheduleConfig, {"warmup_ratio": 0.05}).warmup(130) == 7  # 6.5 -> 7


@example(name="neox_cosine", total=1, warmup=2, floor=0.0)  # warmup past the run's end
@given(
    name=st.sampled_from(sorted(SCHEDULES)),
    total=st.integers(1, 500),
    warmup=st.integers(0, 50),
    floor=st.floats(0, 1),
)
def test_every_schedule_stays_within_zero_and_one(name, total, warmup, floor):
    fields = {"name": name}
    if name in READ_BY["final_lr_ratio"]:  # the others refuse a floor they do not read
        fields["final_lr_ratio"] = floor
    if name not in ("constant", "legacy"):  # the two schedules without a warmup
        fields["warmup_steps"] = warmup
    if name == "step":
        fields["decay_every"] = 1 + warmup % 7
    f = schedule(total=total, **fields)
    assert all(0 <= f(s) <= 1 + 1e-12 and math.isfinite(f(s)) for s in range(0, total + 5))


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"name": "inverse_sqrt", "final_lr_ratio": 0.0}, "final_lr_ratio"),
        ({"name": "constant_with_warmup", "final_lr_ratio": 0.5}, "final_lr_ratio"),
        ({"name": "cosine", "decay_ratio": 0.5}, "decay_ratio"),
        ({"name": "linear", "gamma": 0.5}, "gamma"),
    ],
)
def test_a_key_the_schedule_does_not_read_is_refused(fields, key):
    """Accepted before and ignored: the run's lr was not what its config said."""
    with pytest.raises(ConfigError, match=f"{key}: the {fields['name']} schedule does not read"):
        validate(ScheduleConfig, fields)
    validate(ScheduleConfig, {**fields, key: ScheduleConfig.model_fields[key].default})


def test_config_errors_name_the_problem():
    with pytest.raises(
        ConfigError,
        match=r"name: .*unknown schedule 'cosin' \(did you mean 'cosine'\?\); known: constant",
    ):
        validate(ScheduleConfig, {"name": "cosin"})
    with pytest.raises(
        ConfigError, match="constant schedule has no warmup; use name: constant_with_warmup"
    ):
        validate(ScheduleConfig, {"name": "constant", "warmup_steps": 5})
    with pytest.raises(
        ConfigError,
        match=r"legacy schedule .* has no warmup; set "
        r"schedule.warmup_steps=0",
    ):
        validate(ScheduleConfig, {"name": "legacy", "warmup_steps": 10000})
    with pytest.raises(ConfigError, match="set warmup_steps or warmup_ratio, not both"):
        validate(ScheduleConfig, {"warmup_steps": 5, "warmup_ratio": 0.1})


def test_step_decay_and_evaluation_per_epoch_happen_where_each_pass_over_the_data_ends(
    tmp_path, data
):
    """schedule {name: step, decay_every: epoch}: torch's StepLR stepped once per epoch, and
    train.eval_every: epoch, Lightning's validation at each epoch's end. An epoch is the data's
    packed windows (each document plus its EOS, over seq_len) divided by the global batch,
    counted here from the stores' document sizes; epoch k ends during step ceil(k x that)."""
    from train_helpers import read_records, synthlm, tiny_config, write_config

    from synthlm.data.store import TokenStore

    config = tiny_config(
        tmp_path,
        data,
        schedule={"name": "step", "decay_every": "epoch", "gamma": 0.5, "warmup_steps": 0},
        train={"max_steps": None, "epochs": 3, "checkpoint_every": 0, "eval_every": "epoch"},
        data={"eval": [{"name": "val", "path": str(data["web"]), "max_tokens": 64}]},
    )
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--quiet")
    assert done.returncode == 0, done.stderr
    windows = sum((TokenStore(data[n]).sizes + 1).sum() for n in ("web", "cyclic")) / 32
    steps_per_epoch = windows / 4  # seq_len 32, global batch 4 in tiny_config
    rates = [r["lr"] for r in read_records(tmp_path / "run") if "lr" in r]
    assert len(rates) == math.ceil(3 * steps_per_epoch)
    expected = [3e-3 * 0.5 ** math.floor(s / steps_per_epoch) for s in range(len(rates))]
    assert rates == pytest.approx(expected)
    assert sorted(set(rates), reverse=True) == pytest.approx([3e-3, 1.5e-3, 7.5e-4])
    evaluated = [r["step"] for r in read_records(tmp_path / "run") if "eval/val/loss" in r]
    assert evaluated == [math.ceil(k * steps_per_epoch) for k in (1, 2, 3)]


def test_per_epoch_batches_end_every_pass_with_its_own_step(tmp_path, data):
    """data.epoch_batches: per_epoch, Lightning's epochs: N rows on S = 2 slots of 4 rows take
    ceil(ceil(N / 2) / 4) steps a pass, so each pass ends exactly at a step: StepLR decays and
    the per-epoch evaluations land on multiples of it (Rocket's 10 x ceil(ceil(N / 8) / 32))."""
    from train_helpers import read_records, synthlm, tiny_config, write_config

    from synthlm.data.store import TokenStore

    config = tiny_config(
        tmp_path,
        data,
        schedule={"name": "step", "decay_every": "epoch", "gamma": 0.5, "warmup_steps": 0},
        train={
            "max_steps": None,
            "epochs": 2,
            "global_batch_size": 8,
            "checkpoint_every": 0,
            "eval_every": "epoch",
            "loss_average": "micro_batch",
        },
        data={
            "sources": [{"name": "web", "path": str(data["web"])}],
            "packing": False,
            "epoch_batches": "per_epoch",
            "eval": [{"name": "val", "path": str(data["web"]), "max_tokens": 64}],
        },
    )
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--quiet")
    assert done.returncode == 0, done.stderr
    per_epoch = math.ceil(math.ceil(len(TokenStore(data["web"])) / 2) / 4)
    records = read_records(tmp_path / "run")
    rates = [r["lr"] for r in records if "lr" in r]
    assert len(rates) == 2 * per_epoch
    assert rates == pytest.approx([3e-3 * 0.5 ** (s // per_epoch) for s in range(len(rates))])
    assert [r["step"] for r in records if "eval/val/loss" in r] == [per_epoch, 2 * per_epoch]
