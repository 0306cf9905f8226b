"""The config system: merge order, dotted overrides, and errors that say where the problem is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field, model_validator

from synthlm.config import (
    Count,
    Section,
    dump_yaml,
    load_config,
    parse_count,
    parse_override_value,
    validate,
)
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
    bad = write(tmp_path / "bad.yaml", "a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(Run, [bad])
    # one line, located as compilers do, the context's line kept: PyYAML's own text is five
    # lines that call the file "<unicode string>"
    assert str(caught.value) == (
        f"{bad}:2:2: not valid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence, at line 1, column 4)"
    )


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


class Schedule(Section):
    """A union of plain types, and a check across two keys, as synthlm's sections have."""

    every: int | Literal["epoch"] = 0
    packing: bool = True
    per_epoch: bool = False

    @model_validator(mode="after")
    def _per_epoch_needs_unpacked_rows(self) -> Schedule:
        if self.per_epoch and self.packing:
            raise ValueError("per_epoch deals whole rows; set packing: false")
        return self


class Timed(Section):
    schedule: Schedule = Field(default_factory=Schedule)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("-1", "expected int or one of 'epoch': Input should be greater than or equal to 0"),
        ("soon", "expected int or one of 'epoch' (got 'soon')"),
    ],
)
def test_a_union_of_plain_types_fails_in_one_line_without_pydantics_member_tags(value, detail):
    class NonNegative(Section):
        every: Annotated[int, Field(ge=0)] | Literal["epoch"] = 0

    with pytest.raises(ConfigError) as err:
        load_config(NonNegative, [], [f"every={value}"])
    message = str(err.value)
    assert message == f"override 'every={value}': every: {detail}" + (
        f" (got {int(value)})" if value == "-1" else ""
    )


def test_a_check_across_keys_names_the_override_that_set_the_key_it_names(tmp_path):
    run = write(tmp_path / "run.yaml", "schedule: {every: 5}\n")
    with pytest.raises(ConfigError) as err:
        load_config(Timed, [run], ["schedule.per_epoch=true"])
    assert str(err.value).startswith("override 'schedule.per_epoch=true': schedule: per_epoch")
    both = write(tmp_path / "both.yaml", "schedule: {per_epoch: true}\n")
    with pytest.raises(ConfigError) as err:
        load_config(Timed, [both], ["schedule.packing=true"])
    assert str(err.value).startswith(f"{both} + override 'schedule.packing=true': schedule:")
    # a check whose message names no key set anywhere falls back to the section's origin
    with pytest.raises(ConfigError) as err:
        load_config(Timed, [both])
    assert str(err.value).startswith(f"{both}: schedule: per_epoch")


def test_a_boolean_is_no_number(tmp_path):
    """pydantic reads true as 1: train.batch_size=true trained batches of one, silently."""
    from pydantic import Field

    class Numbers(Section):
        count: int = 1
        rate: float | None = None
        every: int | str = Field(1)
        flag: bool = False

    for key in ("count", "rate", "every"):
        with pytest.raises(ConfigError, match=f"{key}: expected a number, got true"):
            validate(Numbers, {key: True})
    assert validate(Numbers, {"flag": True, "count": 3, "rate": 0.5}).count == 3
