"""Every domain, on many random specs: generated sequences verify, masks cover exactly the
output, and a corrupted answer fails ``verify`` (so verify is not vacuous)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthlm.synth.generation_plan import bind_domains
from synthlm.synth.registry import load_domains
from synthlm.synth.rng import generator
from synthlm.synth.role_ids import RoleIds
from synthlm.synth.spec import load_spec

RIGID_LANGUAGES = {
    "dyck",
    "shuffle_dyck",
    "nested_parens",
    "flat_parens",
}  # any substitution breaks them


def rng_range(draw, low: int, high: int) -> dict:
    a = draw(st.integers(low, high))
    return {"min": a, "max": draw(st.integers(a, high))}


def vocab(draw, low: int = 1, high: int = 30) -> dict:
    size = draw(st.integers(low, high))
    kind = draw(st.sampled_from(["uniform", "zipf", "params", "list"]))
    if kind == "params":
        return {
            "num_vocab": size,
            "prob": {"exponent": draw(st.floats(0.2, 2.5)), "shift": draw(st.floats(0, 3))},
        }
    if kind == "list":
        weights = draw(
            st.lists(st.floats(0, 5), min_size=size, max_size=size).filter(lambda w: sum(w) > 0.1)
        )
        return {"num_vocab": size, "prob": weights}
    return {"num_vocab": size, "prob": kind}


def sequence(draw, **extra) -> dict:
    length = rng_range(draw, 1, 12)
    distinct = draw(st.booleans()) and "repeat_prob" not in extra
    spec = {"vocab": vocab(draw, low=length["max"] if distinct else 1), "length": length, **extra}
    if distinct:
        spec["vocab"]["prob"] = draw(st.sampled_from(["uniform", "zipf"]))
        spec["distinct"] = True
    return spec


def repeats(draw, **extra) -> dict:
    return sequence(draw, repeat_prob=draw(st.floats(0, 1)), **extra)


def query(draw, **extra) -> dict:
    return repeats(draw, query_in_input=draw(st.floats(0, 1)), **extra)


def pair(draw) -> dict:
    return repeats(draw, overlap=draw(st.floats(0, 1)))


def lime(draw) -> dict:
    num_variables = draw(st.integers(1, 6))
    rule_length = rng_range(draw, 1, 10)
    top = min(num_variables, rule_length["max"])
    return {
        "num_variables": num_variables,
        "num_letters": draw(st.integers(1, 5)),
        "num_math": draw(st.integers(1, 4)),
        "rule_length": rule_length,
        "variables": rng_range(draw, 1, top),
        "value_length": rng_range(draw, 1, 4),
        "math_prob": draw(st.floats(0, 0.9)),
    }


def brackets(draw, **extra) -> dict:
    return {
        "length": rng_range(draw, 2, 24),
        "p_open": draw(st.floats(0.05, 0.95)),
        "max_depth": draw(st.one_of(st.none(), st.integers(1, 5))),
        **extra,
    }


PARAMS = {
    **{
        name: sequence
        for name in ("identity", "copy", "reverse", "sort", "first_token", "last_token", "length")
    },
    "duplicate": lambda d: sequence(d, k=rng_range(d, 1, 3)),
    "deduplicate": repeats,
    "set": repeats,
    "count": query,
    "delete": query,
    "replace": query,
    "search": lambda d: query(d, query_length=rng_range(d, 1, 5)),
    "longest_word": lambda d: {
        "vocab": vocab(d),
        "words": rng_range(d, 1, 5),
        "word_length": rng_range(d, 1, 5),
    },
    **{name: pair for name in ("union", "intersect", "set_1_minus_2", "set_2_minus_1")},
    "sort_numbers": lambda d: {
        "length": rng_range(d, 1, 6),
        "max_value": d(st.sampled_from([0, 9, 10, 999, 10**6])),
    },
    **{name: lime for name in ("deduct", "abduct", "induct")},
    "dyck": lambda d: brackets(d, k=d(st.integers(1, 5))),
    "shuffle_dyck": lambda d: brackets(d, k=d(st.integers(1, 5))),
    "nested_parens": lambda d: brackets(d, vocab=vocab(d, high=10)),
    "flat_parens": lambda d: brackets(d, vocab=vocab(d, high=10)),
    "random_tokens": lambda d: {"vocab": vocab(d), "length": rng_range(d, 1, 20)},
    "ngram": lambda d: ngram(d),
    "cellular_automaton": lambda d: {
        "rule": d(
            st.one_of(st.integers(0, 255), st.lists(st.integers(0, 255), min_size=1, max_size=4))
        ),
        "width": rng_range(d, 1, 8),
        "steps": rng_range(d, 1, 4),
        "density": d(st.floats(0.05, 0.95)),
    },
    "fbm": lambda d: {
        "hurst": d(st.floats(0.05, 0.95)),
        "num_vocab": d(st.integers(1, 20)),
        "length": rng_range(d, 2, 30),
    },
}


def wu(draw) -> dict:
    low = draw(st.integers(4, 20))
    size = draw(st.integers(16, 40))
    return {
        "vocab": {"num_vocab": size, "prob": draw(st.sampled_from(["uniform", "zipf"]))},
        "length": {"min": low, "max": draw(st.integers(max(low + 2, 7), 30))},
    }


def seqthetic(draw, **extra) -> dict:
    low = draw(st.integers(8, 30))
    return {
        "vocab": {"num_vocab": 60, "prob": draw(st.sampled_from(["uniform", "zipf"]))},
        "length": {"min": low, "max": draw(st.integers(low, 40))},
        **extra,
    }


WU = (
    "delete",
    "filter",
    "get_index",
    "search",
    "sort",
    "replace",
    "replace_many",
    "count",
    "deduplicate",
    "set",
    "longest_word",
    "union",
    "intersect",
    "set_1_minus_2",
    "set_2_minus_1",
    "remove_fl_occ",
    "rearrange_string",
)
DEP_LENGTHS = {"1": 5.0, "2": 3.0, "3": 1.0, "7": 1.0}
REQUIRED = {"tilt_flat_parens": {"dep_lengths": DEP_LENGTHS}}
PARAMS.update({f"wu_{name}": wu for name in WU})


def wu_dicts(draw, least_max: int, top) -> dict:
    """wu_count_common / wu_merge_dictionaries_three: length.min at most what Wu's sampler reaches."""
    high = draw(st.integers(least_max, 40))
    return {**wu(draw), "length": {"min": draw(st.integers(1, top(high))), "max": high}}


PARAMS["wu_count_common"] = lambda d: wu_dicts(d, 5, lambda h: h - h // 5)
PARAMS["wu_merge_dictionaries_three"] = lambda d: wu_dicts(d, 17, lambda h: h * 3 // 4)
PARAMS.update(
    {
        "tilt_nested_parens": lambda d: {
            "vocab": vocab(d, high=10),
            "length": d(st.integers(1, 30)),
            "p_open": d(st.floats(0.05, 0.95)),
        },
        "tilt_flat_parens": lambda d: {
            "vocab": vocab(d, high=10),
            "length": d(st.integers(1, 30)),
            "dep_lengths": DEP_LENGTHS,
        },
        "hu_shuffle_dyck": lambda d: {
            "k": d(st.integers(1, 5)),
            "length": d(st.integers(1, 40)),
            "max_depth": d(st.integers(1, 6)),
            "p_open": d(st.floats(0.05, 0.95)),
        },
        **{
            f"lime_{m}": lambda d: {
                "num_vocab": d(st.integers(12, 40)),
                "num_upper": 4,
                "num_lower": 3,
                "num_math": 3,
                "num_chars": rng_range(d, 1, 4),
                "pattern_length": rng_range(d, 1, 6),
            }
            for m in ("deduct", "abduct", "induct")
        },
        "seqthetic_identity": lambda d: seqthetic(d, reverse=d(st.booleans())),
        "seqthetic_duplicate": lambda d: seqthetic(d, num_duplicate=rng_range(d, 1, 3)),
        "seqthetic_deduplicate": lambda d: seqthetic(d),
        "seqthetic_delete": lambda d: seqthetic(
            d, should_delete_ratio=d(st.floats(0, 1)), seq_to_delete_length=rng_range(d, 1, 3)
        ),
        "seqthetic_sort_numbers": lambda d: sort_numbers(d),
        "seqthetic_ngram": lambda d: {
            "num_vocab": d(st.integers(1, 6)),
            "gram_count": d(st.integers(2, 3)),
            "length": rng_range(d, 1, 20),
        },
    }
)


def sort_numbers(draw) -> dict:
    low = draw(st.integers(0, 30))
    high = draw(st.integers(low, low + 20))
    return {"nums": {"min": low, "max": high}, "length": rng_range(draw, 1, high - low + 1)}


def ngram(draw) -> dict:
    v = vocab(draw, high=12)
    return {
        "vocab": v,
        "n": draw(st.integers(1, 4)),
        "branching": draw(st.integers(1, v["num_vocab"])),
        "exponent": draw(st.floats(0, 2)),
        "length": rng_range(draw, 1, 20),
    }


def build(domain_type: str, params: dict, seed: int, promoter: int):
    spec = load_spec(
        {
            "num_tokens": 1000,
            "seed": seed,
            "promoter_length": promoter,
            "domains": [{"type": domain_type, **params}],
        }
    )
    layout, domains = bind_domains(spec, seed)
    return layout, domains[0]


def test_every_domain_has_a_strategy():
    assert set(PARAMS) == set(load_domains())


def corrupt_in_alphabet(
    rng: np.random.Generator, sequence: np.ndarray, start: int, layout: RoleIds
) -> np.ndarray:
    bad = sequence.copy()
    at = int(rng.integers(start, len(bad)))
    choices = np.setdiff1d(np.arange(layout.vocab_size), [bad[at]])
    bad[at] = rng.choice(choices)
    return bad


@pytest.mark.parametrize("domain_type", sorted(PARAMS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_sequences_verify_and_corruptions_fail(domain_type, data):
    params = PARAMS[domain_type](data.draw)
    seed = data.draw(st.integers(-(2**40), 2**40))
    layout, domain = build(domain_type, params, seed, data.draw(st.integers(0, 3)))
    batch = domain.generate(generator(seed, 7), data.draw(st.integers(1, 6)))
    rng = generator(seed, 8)
    offsets = np.r_[0, np.cumsum(batch.sizes)]
    for i in range(len(batch.sizes)):
        sequence = batch.tokens[offsets[i] : offsets[i + 1]]
        mask = batch.mask[offsets[i] : offsets[i + 1]]
        domain.check(sequence)  # raises with the reason if the generated sequence is wrong
        assert np.array_equal(mask, domain.expected_loss_mask(sequence)), (
            "loss mask must cover exactly the output"
        )
        assert sequence.max() < layout.vocab_size
        start = len(domain.split(sequence)[0]) if domain.is_task else len(domain.promoter)
        outside = sequence.copy()
        outside[int(rng.integers(start, len(outside)))] = layout.vocab_size + 3
        assert not domain.verify(outside), "an id outside the alphabet must fail"
        if domain.unique_answer or domain_type in RIGID_LANGUAGES:
            bad = corrupt_in_alphabet(rng, sequence, start, layout)
            assert not domain.verify(bad), f"changed answer {bad[start:].tolist()} still verifies"
        if domain.is_task:
            assert not domain.verify(sequence[:start]), "a missing answer must fail"


@pytest.mark.parametrize("domain_type", sorted(PARAMS))
def test_generation_is_a_pure_function_of_the_key(domain_type):
    _, domain = build(domain_type, REQUIRED.get(domain_type, {}), 0, 1)
    first = domain.generate(generator(0, 1, 2), 5)
    again = domain.generate(generator(0, 1, 2), 5)
    other = domain.generate(generator(0, 1, 3), 5)
    assert np.array_equal(first.tokens, again.tokens) and np.array_equal(first.mask, again.mask)
    assert not np.array_equal(first.tokens, other.tokens)


@pytest.mark.parametrize("domain_type", ["union", "intersect", "set_1_minus_2", "set_2_minus_1"])
def test_distinct_pair_inputs_hold_no_repeated_token_with_overlap(domain_type):
    """``distinct: true`` promises no token repeats inside one input. input2's shared tokens
    were copied from random positions of input1, so two copies (or a copy onto one of input2's
    own) repeated a token in about half of the examples; verify did not look."""
    params = {
        "vocab": {"num_vocab": 12},
        "length": {"min": 4, "max": 8},
        "distinct": True,
        "repeat_prob": 0.0,
        "overlap": 0.7,
    }
    layout, domain = build(domain_type, params, 5, 1)
    batch = domain.generate(generator(5, 7), 300)
    sep, answer = layout.markers["sep"], layout.markers["answer"]
    offsets = np.r_[0, np.cumsum(batch.sizes)]
    shared = 0
    for i in range(len(batch.sizes)):
        sequence = batch.tokens[offsets[i] : offsets[i + 1]].tolist()
        body = sequence[1 : sequence.index(answer)]  # after the one-token promoter
        first, second = body[: body.index(sep)], body[body.index(sep) + 1 :]
        assert len(set(first)) == len(first) and len(set(second)) == len(second), sequence
        shared += len(set(first) & set(second))
        assert domain.verify(np.asarray(sequence))
    assert shared > 300  # the overlap is still there
    planted = batch.tokens[offsets[0] : offsets[1]].copy()
    planted[2] = planted[1]  # input1's second token repeats its first
    assert not domain.verify(planted)
