"""The stochastic domains are what they claim: exact fBm with the requested Hurst exponent, an
n-gram model whose table is fixed by the seed, Zipf vocabularies with the requested skew."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from synthlm.synth import load_spec, make_plan
from synthlm.synth.domains.fbm import fbm_paths
from synthlm.synth.rng import generator, sequence_hashes
from synthlm.synth.vocab import TokenSampler, VocabSpec


@pytest.mark.parametrize("hurst", [0.2, 0.5, 0.8])
def test_fbm_increments_scale_with_the_hurst_exponent(hurst):
    paths = fbm_paths(generator(0, 9), 400, 257, hurst)
    assert np.all(paths[:, 0] == 0)
    # Var(B(t + k) - B(t)) = k ** (2H) for unit-variance fBm, exactly, at every lag.
    variances = [np.var(paths[:, k:] - paths[:, :-k]) for k in (1, 4, 16, 64)]
    slope = np.polyfit(np.log([1, 4, 16, 64]), np.log(variances), 1)[0]
    assert abs(slope / 2 - hurst) < 0.04
    assert abs(variances[0] - 1) < 0.05


def ngram_plan(seed: int):
    return make_plan(
        load_spec(
            {
                "num_tokens": 1000,
                "seed": seed,
                "domains": [{"type": "ngram", "n": 2, "branching": 2, "vocab": {"num_vocab": 50}}],
            }
        )
    )


def test_ngram_follows_a_seeded_sparse_table():
    domain = ngram_plan(5).domains[0]
    batch = domain.generate(generator(5, 1), 50)
    tokens = batch.tokens
    body_starts = np.r_[0, np.cumsum(batch.sizes)[:-1]] + 1  # skip the promoter
    successors: dict[int, set[int]] = {}
    for start, size in zip(body_starts, batch.sizes - 1):
        body = tokens[start : start + size]
        for a, b in itertools.pairwise(body):
            successors.setdefault(int(a), set()).add(int(b))
    assert max(len(s) for s in successors.values()) <= 2, (
        "each context has at most `branching` successors"
    )
    other = ngram_plan(6).domains[0]
    assert domain.key != other.key
    context, rank = np.arange(50, dtype=np.uint64), np.zeros(50, dtype=np.int64)
    assert not np.array_equal(domain.successors(context, rank), other.successors(context, rank))


def test_zipf_sampler_matches_its_probabilities():
    spec = VocabSpec(num_vocab=20, prob={"exponent": 1.5, "shift": 1.0})
    draws = TokenSampler(spec).sample(generator(1, 2), 200_000)
    observed = np.bincount(draws, minlength=20) / len(draws)
    assert np.abs(observed - spec.probabilities()).max() < 0.01
    distinct = TokenSampler(spec).sample_distinct(generator(1, 3), np.array([20, 5, 19]))
    for row in distinct.tolist():
        assert len(set(row)) == len(row)


def test_sequence_hashes_tell_sequences_apart():
    tokens = np.array([1, 2, 2, 1, 1, 1, 1, 2], dtype=np.int64)  # [1 2] [2 1] [1 1] [1 2]
    hashes = sequence_hashes(tokens, np.array([2, 2, 2, 2]))
    assert hashes[0] != hashes[1] and hashes[0] == hashes[3] != hashes[2]
    assert (
        sequence_hashes(np.array([1, 2]), np.array([1, 1]))[0]
        != sequence_hashes(np.array([1, 2]), np.array([2, 0]))[0]
    )
