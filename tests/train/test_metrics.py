"""Metric records: cut back to a checkpoint on resume, interval sums that survive a restart."""

from __future__ import annotations

import json

from synthlm.train.metrics import (
    IntervalStats,
    JsonlSink,
    TensorBoardSink,
    read_metrics,
    truncate_metrics,
)


def test_truncate_drops_records_after_the_checkpoint_and_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in (1, 2, 3, 4)]
    path.write_text("\n".join(lines) + '\n{"step": 5, "lo')
    truncate_metrics(path, 2)
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def test_interval_stats_average_and_round_trip_exactly():
    stats = IntervalStats()
    stats.add_step(2.0, 0.5, [3.0, 1.0], [2.0, 1.0])
    stats.add_step(1.0, None, [1.0, 1.0], [1.0, 1.0])
    stats.skipped = 1
    restored = IntervalStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    summary = restored.summary(["web", "synth"])
    assert summary == {
        "loss": 1.5,
        "grad_norm": 0.5,
        "loss/web": 4.0 / 3.0,
        "loss/synth": 1.0,
        "skipped_steps": 1,
    }
    assert IntervalStats().summary(["web"]) == {}


def test_sinks_write_jsonl_and_tensorboard_events(tmp_path):
    jsonl = JsonlSink(tmp_path / "metrics.jsonl")
    board = TensorBoardSink(tmp_path / "tb", purge_step=1)
    for sink in (jsonl, board):
        sink.write({"step": 1, "loss": 2.5, "eval/wiki/ppl": 12.0})
        sink.close()
    assert read_metrics(tmp_path / "metrics.jsonl") == [
        {"step": 1, "loss": 2.5, "eval/wiki/ppl": 12.0}
    ]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "eval/wiki/ppl"}
    assert events.Scalars("train/loss")[0].value == 2.5
