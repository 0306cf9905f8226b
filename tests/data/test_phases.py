"""Phase schedules: each source continues where it stopped (no window repeated or skipped),
counts match an enumeration, and bad phase configs fail with the key named."""

from __future__ import annotations

from collections import Counter

import pytest

from synthlm.data.phases import PhaseConfig, PhaseSchedule
from synthlm.errors import ConfigError

NAMES = ["syn", "web", "code"]


def schedule(phases, total_steps=10, global_batch=4):
    configs = [PhaseConfig(**p) for p in phases]
    return PhaseSchedule(
        configs, NAMES, global_batch=global_batch, seq_len=8, total_steps=total_steps
    )


def test_every_source_reads_consecutive_windows_across_phases():
    sched = schedule(
        [
            {"steps": 3, "weights": {"syn": 1}},
            {"steps": 4, "weights": {"syn": 1, "web": 3}},
            {"weights": {"web": 1, "code": 1}},
        ]
    )
    drawn = [sched.locate(i) for i in range(40)]
    seen: dict[int, list[int]] = {}
    for source, k in drawn:
        seen.setdefault(source, []).append(k)
    for source, windows in seen.items():
        assert windows == list(range(len(windows))), f"source {source} skipped or repeated a window"
    assert {s for s, _ in drawn[:12]} == {0}, "phase 0 draws from syn only"
    assert Counter(s for s, _ in drawn[12:28]) == {0: 4, 1: 12}, "phase 1 is 1:3 exactly"
    assert Counter(s for s, _ in drawn[28:]) == {1: 6, 2: 6}
    for n in (0, 1, 11, 12, 13, 27, 28, 40, 57):
        expected = Counter(s for s, _ in (sched.locate(i) for i in range(n)))
        assert sched.counts(n) == [expected.get(i, 0) for i in range(3)]


def test_tokens_convert_to_whole_steps_and_an_open_last_phase_fills_the_budget():
    sched = schedule(
        [{"tokens": 33, "weights": {"syn": 1}}, {"weights": {"web": 1}}]
    )  # 32 tokens per step
    assert [(p.start, p.stop) for p in sched.phases] == [(0, 8), (8, 40)]


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        (
            [{"steps": 3, "weights": {"syn": 1}}, {"steps": 3, "weights": {"web": 1}}],
            "add up to 6 steps but the run has 10",
        ),
        (
            [{"steps": 10, "weights": {"syn": 1}}, {"weights": {"web": 1}}],
            "leaving none of the run's 10",
        ),
    ],
)
def test_phase_lengths_must_fit_the_budget(phases, message):
    with pytest.raises(ConfigError, match=message):
        schedule(phases)


def test_phase_config_errors_name_the_key(tmp_path):
    from synthlm.config import load_config
    from synthlm.data.mixture import DataConfig

    base = {"sources": [{"name": "web", "path": str(tmp_path)}]}
    with pytest.raises(Exception, match="phases.0.weights: unknown source nope"):
        load_config(DataConfig, [{**base, "phases": [{"steps": 2, "weights": {"nope": 1}}]}])
    with pytest.raises(Exception, match="only the last phase"):
        load_config(
            DataConfig, [{**base, "phases": [{"weights": {"web": 1}}, {"weights": {"web": 1}}]}]
        )


def test_a_bad_phase_is_blamed_on_the_file_that_set_it(tmp_path):
    """The phase check reads the sources, but the fault is in data.phases: a stacked config
    must name the file (or override) that wrote the phases, not the first that set any data."""
    from synthlm.config import load_config
    from synthlm.data.mixture import DataConfig

    base, phases = tmp_path / "base.yaml", tmp_path / "phases.yaml"
    base.write_text(f"sources: [{{name: web, path: {tmp_path}}}]\n")
    phases.write_text("phases: [{steps: 2, weights: {nope: 1}}, {weights: {web: 1}}]\n")
    with pytest.raises(ConfigError, match=r"phases\.yaml: phases: phases\.0\.weights: unknown"):
        load_config(DataConfig, [base, phases])
    with pytest.raises(ConfigError, match=r"override 'phases=\[.*\]': phases: phases\.0"):
        load_config(DataConfig, [base], ["phases=[{steps: 2, weights: {nope: 1}}]"])


def test_stream_is_refused_on_a_path_source(tmp_path):
    from synthlm.config import load_config
    from synthlm.data.mixture import DataConfig

    source = {"name": "web", "path": str(tmp_path), "stream": "infinite"}
    with pytest.raises(ConfigError, match="stream: infinite applies to spec sources"):
        load_config(DataConfig, [{"sources": [source]}])
