"""The config system: merge order, dotted overrides, and errors that say where the problem is."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from synthlm.config import Count, Section, dump_yaml, load_config, parse_count, parse_override_value
from synthlm.errors import ConfigError


class Optim(Section):
    name: Literal["adamw", "adafactor"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(0, ge=0)


class Source(Section):
    name: str
    weight: float = Field(1.0, gt=0)


class Data(Section):
    sources: list[Source] = Field(default_factory=list)
    seq_len: int = 128


class Run(Section):
    seed: int = 0
    tokens: Count = 1000
    optim: Optim = Field(default_factory=Optim)
    data: Data = Field(default_factory=Data)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_later_files_win_and_nested_mappings_merge(tmp_path):
    a = write(tmp_path / "a.yaml", "seed: 1\noptim: {lr: 0.1, warmup_steps: 5}\n")
    b = write(tmp_path / "b.yaml", "optim: {lr: 0.2}\n")
    cfg = load_config(Run, [a, b])
    assert cfg.seed == 1 and cfg.optim.lr == 0.2 and cfg.optim.warmup_steps == 5


def test_dotted_overrides_reach_into_lists(tmp_path):
    a = write(
        tmp_path / "a.yaml", "data: {sources: [{name: x, weight: 1}, {name: y, weight: 2}]}\n"
    )
    cfg = load_config(Run, [a], ["optim.lr=3e-4", "data.sources.1.weight=0.5", "tokens=5M"])
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.data.sources[1].weight == 0.5
    assert cfg.tokens == 5_000_000


def test_unknown_key_names_file_and_suggests(tmp_path):
    a = write(tmp_path / "run.yaml", "optim: {warmup_step: 10}\n")
    with pytest.raises(ConfigError) as err:
        load_config(Run, [a])
    message = str(err.value)
    assert "run.yaml" in message and "optim.warmup_step" in message
    assert "did you mean 'optim.warmup_steps'" in message


def test_wrong_type_from_override_names_the_override():
    with pytest.raises(ConfigError) as err:
        load_config(Run, [], ["optim.lr=abc"])
    message = str(err.value)
    assert "override 'optim.lr=abc'" in message and "optim.lr" in message and "float" in message


def test_out_of_range_and_literal_errors_list_allowed_values(tmp_path):
    a = write(tmp_path / "r.yaml", "optim: {name: sgd, lr: -1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(Run, [a])
    message = str(err.value)
    assert "optim.name" in message and "'adamw'" in message and "'adafactor'" in message
    assert "optim.lr" in message and "greater than 0" in message


def test_error_in_list_item_points_at_its_index(tmp_path):
    a = write(tmp_path / "r.yaml", "data: {sources: [{name: x, wieght: 2}]}\n")
    with pytest.raises(
        ConfigError,
        match=r"data\.sources\.0\.wieght: unknown key \(did you mean 'data\.sources\.0\.weight'",
    ):
        load_config(Run, [a])


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Run, [tmp_path / "nope.yaml"])
    bad = write(tmp_path / "bad.yaml", "a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(Run, [bad])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(Run, [], ["=3"])
    with pytest.raises(ConfigError, match="out of range"):
        load_config(Run, [{"data": {"sources": [{"name": "x"}]}}], ["data.sources.3.weight=1"])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(Run, [], ["optim.lr=0.5", "data.sources=[{name: a}]"])
    path = write(tmp_path / "resolved.yaml", dump_yaml(cfg))
    assert load_config(Run, [path]) == cfg


@pytest.mark.parametrize(
    ("text", "value"),
    [("5M", 5_000_000), ("1.5B", 1_500_000_000), ("10K", 10_000), (42, 42), ("7", 7)],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


def test_override_values_parse_as_yaml_with_scientific_floats():
    assert parse_override_value("3e-4") == pytest.approx(3e-4)
    assert parse_override_value("true") is True
    assert parse_override_value("[1, 2]") == [1, 2]
    assert parse_override_value("null") is None
    assert parse_override_value("hello") == "hello"
