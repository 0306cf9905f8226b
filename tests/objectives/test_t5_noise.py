"""T5 noise masks and length math, checked against the definition and the published table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlm.errors import ConfigError
from synthlm.objectives.t5_noise import (
    corrupt,
    corrupted_lengths,
    noise_counts,
    random_segmentation,
    random_spans_noise_mask,
    raw_length_for,
    sample_rng,
    span_starts,
)

SENTINELS = np.arange(1000, 1100)


@pytest.mark.parametrize(
    ("density", "raw", "target"),
    [(0.15, 568, 114), (0.3, 639, 257), (0.5, 766, 512)],
)
def test_length_table_reproduced_exactly(density: float, raw: int, target: int) -> None:
    """The raw window and target lengths T5/nanoT5 users know, for 512 input tokens, span 3."""
    assert raw_length_for(512, density, 3.0) == (raw, target)
    # ...and corrupting that many raw tokens gives inputs of exactly 512 tokens.
    assert corrupted_lengths(raw, density, 3.0) == (512, target)


def test_raw_length_is_the_longest_that_fits() -> None:
    for density in (0.1, 0.15, 0.3, 0.45):
        for length in (64, 128, 512, 1024):
            raw, _ = raw_length_for(length, density, 3.0)
            assert corrupted_lengths(raw, density, 3.0)[0] <= length
            assert corrupted_lengths(raw + 1, density, 3.0)[0] > length


def test_noise_density_and_span_length_over_10k_masks() -> None:
    """Measured over 10k masks, density and mean span length are within 2% of the settings."""
    rng = np.random.default_rng(0)
    masks = np.stack([random_spans_noise_mask(568, 0.15, 3.0, rng) for _ in range(10_000)])
    density = masks.mean()
    spans = np.stack([span_starts(m) for m in masks]).sum()
    mean_span = masks.sum() / spans
    assert abs(density - 0.15) / 0.15 < 0.02
    assert abs(mean_span - 3.0) / 3.0 < 0.02
    # The spans really are random: positions are hidden about equally often, masks differ.
    per_position = masks.mean(axis=0)
    assert abs(per_position[100:284].mean() - per_position[284:468].mean()) < 0.01
    assert len({m.tobytes() for m in masks[:100]}) == 100
    assert not masks[:, 0].any(), "T5 masks start with a non-noise span"


def test_span_lengths_follow_random_segmentation() -> None:
    rng = np.random.default_rng(1)
    lengths = np.concatenate([random_segmentation(90, 30, rng) for _ in range(2000)])
    assert lengths.min() >= 1
    assert abs(lengths.mean() - 3.0) < 1e-9  # every split sums to 90 in 30 parts
    assert lengths.max() > 8  # not a fixed span length


def test_corrupt_hand_checked_example() -> None:
    tokens = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    mask = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 1], dtype=bool)
    inputs, targets = corrupt(tokens, mask, SENTINELS)
    assert inputs.tolist() == [10, 11, 1000, 14, 15, 16, 1001, 18, 1002]
    assert targets.tolist() == [1000, 12, 13, 1001, 17, 1002, 19]
    # numbering may continue from an earlier piece
    inputs, targets = corrupt(tokens[:4], mask[:4], SENTINELS, first_sentinel=5)
    assert inputs.tolist() == [10, 11, 1005]
    assert targets.tolist() == [1005, 12, 13]


@settings(max_examples=150, deadline=None)
@given(
    length=st.integers(2, 700),
    density=st.floats(0.05, 0.95),
    span=st.floats(1.0, 8.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_mask_counts_and_corruption_invert(
    length: int, density: float, span: float, seed: int
) -> None:
    """Any mask holds exactly the T5 counts; inputs + targets give back the original tokens."""
    mask = random_spans_noise_mask(length, density, span, np.random.default_rng(seed))
    num_noise, num_spans = noise_counts(length, density, span)
    assert mask.sum() == num_noise
    assert span_starts(mask).sum() == num_spans
    if num_spans > len(SENTINELS):
        return
    tokens = np.arange(length) + 1
    inputs, targets = corrupt(tokens, mask, SENTINELS)
    assert (len(inputs) + 1, len(targets) + 1) == corrupted_lengths(length, density, span)
    assert reassemble(inputs, targets).tolist() == tokens.tolist()


def reassemble(inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Put each sentinel's tokens back in place of the sentinel."""
    is_sentinel = np.isin(targets, SENTINELS)
    groups = np.split(targets, np.flatnonzero(is_sentinel)[1:]) if len(targets) else []
    hidden = {int(g[0]): g[1:] for g in groups}
    out = [hidden[int(t)] if t in hidden else [t] for t in inputs]
    return np.concatenate(out) if out else np.array([], dtype=int)


def test_rng_is_keyed_by_seed_and_content() -> None:
    tokens = np.arange(200)
    first = random_spans_noise_mask(200, 0.15, 3.0, sample_rng(7, tokens))
    again = random_spans_noise_mask(200, 0.15, 3.0, sample_rng(7, tokens.copy()))
    other_seed = random_spans_noise_mask(200, 0.15, 3.0, sample_rng(8, tokens))
    other_tokens = random_spans_noise_mask(200, 0.15, 3.0, sample_rng(7, tokens + 1))
    assert (first == again).all()
    assert (first != other_seed).any()
    assert (first != other_tokens).any()


@pytest.mark.parametrize(("density", "span"), [(0.0, 3.0), (1.0, 3.0), (0.15, 0.5)])
def test_bad_noise_options_are_config_errors(density: float, span: float) -> None:
    with pytest.raises(ConfigError, match="objective"):
        raw_length_for(512, density, span)


def test_too_few_sentinels_is_a_config_error() -> None:
    mask = np.ones(8, dtype=bool)
    mask[::2] = False  # four spans
    with pytest.raises(ConfigError, match="sentinel"):
        corrupt(np.arange(8), mask, SENTINELS[:3])
