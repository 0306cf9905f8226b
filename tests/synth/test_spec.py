"""Spec validation: impossible or unknown input is one clear error naming the key, before any
work; sizes like "5M" and Seqthetic's flat JSON config are accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthlm.errors import ConfigError
from synthlm.synth import load_spec

BASE = {"num_tokens": 1000, "seed": 0}


def spec_with(*domains, **top):
    return {**BASE, **top, "domains": list(domains)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            spec_with({"type": "cpy"}),
            r"domains\.0\.type: unknown domain type 'cpy' \(did you mean 'copy'\?\); known "
            r"types: abduct, .*union",
        ),
        (spec_with({"weight": 1}), r"domains\.0\.type: required key is missing; known types"),
        (
            spec_with({"type": "copy", "length": {"min": 9, "max": 3}}),
            r"domains\.0\.length.*min \(9\) must be <= max \(3\)",
        ),
        (
            spec_with({"type": "copy", "weight": 0}, {"type": "dyck", "weight": 0}),
            r"all weights are zero",
        ),
        (spec_with({"type": "fbm", "hurst": 1.0}), r"domains\.0\.hurst.*less than 1"),
        (spec_with({"type": "fbm", "hurst": 0}), r"domains\.0\.hurst.*greater than 0"),
        (
            spec_with({"type": "copy", "distinct": True, "vocab": {"num_vocab": 5}, "length": 8}),
            r"cannot draw 8 different tokens from a vocabulary of 5",
        ),
        (
            spec_with(
                {
                    "type": "copy",
                    "distinct": True,
                    "vocab": {"num_vocab": 9, "prob": [1, 1, 1, 1, 0, 0, 0, 0, 0]},
                    "length": 8,
                }
            ),
            r"vocabulary of 4",
        ),
        (spec_with({"type": "copy"}, {"type": "copy"}), r"domains 0 and 1 are both named 'copy'"),
        (
            spec_with({"type": "copy", "vocab": {"num_vocab": 3, "prob": [1, 2]}}),
            r"prob has 2 weights but num_vocab is 3",
        ),
        (
            spec_with({"type": "copy", "lenght": 5}),
            r"domains\.0\.lenght: unknown key \(did you mean 'domains\.0\.length'\?\)",
        ),
        (  # "reverse" is a domain's tag and another domain's option: the path is still the user's
            spec_with({"type": "reverse", "lenght": 5}),
            r"domains\.0\.lenght: unknown key \(did you mean 'domains\.0\.length'\?\)",
        ),
        (
            spec_with({"type": "deduct", "variables": {"min": 1, "max": 30}}),
            r"cannot use 30 distinct variables",
        ),
        (spec_with({"type": "cellular_automaton", "rule": 300}), r"between 0 and 255"),
        (spec_with({"type": "ngram", "n": 12, "vocab": {"num_vocab": 1000}}), r"too many contexts"),
        (
            spec_with({"type": "ngram", "branching": 50, "vocab": {"num_vocab": 10}}),
            r"branching \(50\) cannot exceed",
        ),
        (
            spec_with({"type": "copy"}, splits={"train": 0.8, "valid": 0.1, "test": 0.05}),
            r"must sum to 1",
        ),
        ({"seed": 0, "domains": [{"type": "copy"}]}, r"num_tokens: required key is missing"),
        (spec_with(num_tokens="5 parsecs"), r"num_tokens"),
        (spec_with(), r"at least one domain"),
    ],
)
def test_bad_specs_name_the_problem(spec, expected):
    with pytest.raises(ConfigError, match=expected):
        load_spec(spec)


def test_errors_name_the_file_and_the_override(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("num_tokens: 10K\ndomains:\n  - type: copy\n")
    with pytest.raises(ConfigError, match=r"override 'domains\.0\.length=0'"):
        load_spec(path, ["domains.0.length=0"])
    path.write_text("num_tokens: 10K\ndomains:\n  - type: copy\n    length: {min: 0, max: 4}\n")
    with pytest.raises(
        ConfigError, match=rf"{path}: domains\.0\.length: .*must be >= 1, got min 0"
    ):
        load_spec(path)


def test_sizes_seed_and_flags():
    spec = load_spec(spec_with({"type": "copy"}, num_tokens="1.5M"))
    assert spec.num_tokens == 1_500_000 and spec.seed == 0
    assert load_spec(spec_with({"type": "copy"}), num_tokens="10K", seed=-7).num_tokens == 10_000
    assert load_spec(spec_with({"type": "copy"}), seed=-7).seed == -7
    zipf = load_spec(
        spec_with({"type": "copy", "vocab": {"num_vocab": 4, "prob": {"zipf": {"exponent": 2}}}})
    )
    assert zipf.domains[0].vocab.prob.exponent == 2


def test_resolved_spec_round_trips():
    spec = load_spec(
        spec_with(
            {"type": "duplicate", "k": {"min": 1, "max": 3}},
            {"type": "fbm"},
            {"type": "cellular_automaton", "rule": [30, 110]},
        )
    )
    again = load_spec(json.loads(json.dumps(spec.model_dump(mode="json"))))
    assert again == spec


def test_seqthetic_flat_config(tmp_path):
    path = tmp_path / "identity.json"
    path.write_text(
        json.dumps(
            {
                "name": "identity",
                "vocab_size": 10000,
                "sequence_length_min": 256,
                "sequence_length_max": 1024,
            }
        )
    )
    spec = load_spec(path, num_tokens="5M")
    (domain,) = spec.domains
    assert (
        domain.type == "seqthetic_identity"
        and domain.vocab.num_vocab == 10000
        and not domain.reverse
    )
    assert (domain.length.min, domain.length.max) == (
        256,
        1023,
    )  # rng.integers(min, max) never draws max
    assert spec.num_tokens == 5_000_000 and spec.name == "identity"
    fbm = load_spec(
        {
            "task": "fbm",
            "name": "my-fbm",
            "vocab_size": 32,
            "sequence_length_min": 16,
            "sequence_length_max": 16,
            "num_token": 500,
        }
    )
    assert fbm.domains[0].num_vocab == 32 and fbm.name == "my-fbm"
    assert fbm.domain_names() == ["my-fbm"], "the domain carries the config's name"
    with pytest.raises(
        ConfigError, match=r"unknown domain type 'idnetity' \(did you mean 'identity'\?\)"
    ):
        load_spec({"name": "idnetity", "vocab_size": 10})
    with pytest.raises(
        ConfigError, match=r"colour: unknown key for a Seqthetic identity config; allowed: "
    ):
        load_spec(
            {
                "name": "identity",
                "vocab_size": 10,
                "sequence_length_min": 2,
                "num_token": 10,
                "colour": "red",
            }
        )
    with pytest.raises(ConfigError, match=r"split.shufle: unknown key"):
        load_spec(
            {
                "name": "delete",
                "vocab_size": 10,
                "sequence_length_min": 2,
                "split": {"shufle": True},
            }
        )
    with pytest.raises(ConfigError, match=r"colour: unknown key for the fbm domain"):
        load_spec(
            {
                "task": "fbm",
                "vocab_size": 32,
                "sequence_length_min": 16,
                "num_token": 500,
                "colour": 1,
            }
        )


def test_seqthetic_flat_config_is_recognised_by_any_seqthetic_only_key():
    """No vocab_size / sequence_length_*: `task` or `num_token` alone marks a flat config."""
    spec = load_spec({"task": "fbm", "hurst": 0.7, "num_token": 1000})
    (domain,) = spec.domains
    assert (domain.type, domain.hurst, spec.num_tokens) == ("fbm", 0.7, 1000)
    assert spec.name == "fbm" and spec.domain_names() == ["fbm"]
    spec = load_spec({"name": "delete", "num_token": 1000, "should_delete_ratio": 0.25})
    assert spec.domains[0].type == "seqthetic_delete" and spec.domain_names() == ["delete"]
    with pytest.raises(ConfigError) as error:
        load_spec({"hurst": 0.7, "num_token": 1000})
    assert str(error.value) == (
        "spec: this looks like a Seqthetic flat config (it has `num_token` and no `domains`); "
        "it needs `name` set to a Seqthetic task (identity, reverse, duplicate, deduplicate, "
        'delete, sort_numbers, ngram) or `task` naming a synthlm domain type (e.g. "task": '
        '"fbm"; `synthlm synth list` shows them all)'
    )
    with pytest.raises(ConfigError, match=r"^spec: task: unknown domain type 'fmb' \(did you "):
        load_spec({"task": "fmb", "num_token": 1000})
    with pytest.raises(ConfigError, match=r"name: unknown domain type 'my-data'.*this looks like"):
        load_spec({"name": "my-data", "split": {"split_ratio": [0.8, 0.1, 0.1]}})
    # a synthlm spec that forgot its domains is still read as one
    with pytest.raises(ConfigError, match=r"domains: required key is missing"):
        load_spec({"name": "mix", "num_tokens": 1000})


def test_seqthetic_flat_sort_numbers_and_ngram():
    """Seqthetic's SortNumbers (nums = Range(min, max), np.arange excludes max; lengths from
    rng.integers(min, max)) and NGram (lengths from rng.integers(min, max + 1))."""
    spec = load_spec(
        {
            "name": "sort_numbers",
            "nums_min": 1,
            "nums_max": 40,
            "sequence_length_min": 5,
            "num_token": 100,
            "sequence_length_max": 11,
        }
    )
    (domain,) = spec.domains
    assert domain.type == "seqthetic_sort_numbers"
    assert (domain.nums.min, domain.nums.max, domain.length.min, domain.length.max) == (
        1,
        39,
        5,
        10,
    )
    spec = load_spec(
        {
            "name": "ngram",
            "vocab_size": 50,
            "gram_count": 3,
            "sequence_length_min": 8,
            "num_token": 100,
            "sequence_length_max": 16,
        }
    )
    (domain,) = spec.domains
    assert domain.type == "seqthetic_ngram" and (domain.num_vocab, domain.gram_count) == (50, 3)
    assert (domain.length.min, domain.length.max) == (8, 16)
    with pytest.raises(ConfigError, match=r"vocab_size: unknown key for a Seqthetic sort_numbers"):
        load_spec(
            {"name": "sort_numbers", "vocab_size": 50, "sequence_length_min": 5, "num_token": 9}
        )
    with pytest.raises(ConfigError, match=r"num_vocab\*\*gram_count"):
        load_spec({"name": "ngram", "vocab_size": 10000, "sequence_length_min": 5, "num_token": 9})


# metalang's own configs, as users have them: read from the shared data beside the checkout
# (third-party files are not copied into the repository)
SEQTHETIC_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "seqthetic_configs"
SEQTHETIC_CONFIGS = sorted(SEQTHETIC_DIR.glob("*.json"))


@pytest.mark.parametrize("path", SEQTHETIC_CONFIGS, ids=[p.stem for p in SEQTHETIC_CONFIGS])
def test_metalang_seqthetic_configs_run_unchanged(path):
    """metalang's synthetic_data/configs/*.json (../shared/data/seqthetic_configs) load as they are
    and generate sequences that follow Seqthetic's definitions (checked in test_paper_variants)."""
    from synthlm.synth.generation_plan import bind_domains
    from synthlm.synth.rng import generator

    raw = json.loads(path.read_text())
    spec = load_spec(path, num_tokens="20K", seed=0)
    (domain,) = spec.domains
    assert domain.type == {"reverse": "seqthetic_identity"}.get(
        raw["name"], f"seqthetic_{raw['name']}"
    )
    assert domain.vocab.num_vocab == raw["vocab_size"] and 4 <= domain.promoter_length <= 13
    assert (domain.length.min, domain.length.max) == (
        raw["sequence_length_min"],
        raw["sequence_length_max"] - 1,
    )
    assert [spec.splits.train, spec.splits.valid, spec.splits.test] == raw["split"]["split_ratio"]
    assert getattr(domain, "reverse", False) == raw.get("reverse", False)
    assert spec.domain_names() == [raw["name"]], "metrics read acc/<the config's name>"
    bound = bind_domains(spec, 0)[1][0]
    batch = bound.generate(generator(0, 1), 4)
    assert len(batch.sizes) == 4 and batch.tokens.max() < bound.layout.vocab_size


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "synth").glob("*.*"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_example_specs_load_and_verify(path):
    from synthlm.synth.preview import preview_examples

    spec = load_spec(path, num_tokens="1K")
    examples, _ = preview_examples(spec, count=2)
    assert examples and all(e.valid for e in examples)
    assert {e.domain for e in examples} == set(spec.domain_names())


def test_there_are_example_specs():
    assert len(EXAMPLES) >= 5
