"""T5 span corruption from its definition: noise counts, random span masks, sentinels, lengths.

Everything here is plain numpy on one sequence, so the span-corruption and DEPTH objectives
share one implementation and the tests can check it directly.

Counting rules (Raffel et al. 2020, as in T5's ``random_spans_noise_mask``): for a sequence of
``n`` tokens, ``round(n * noise_density)`` noise tokens (kept within ``[1, n-1]``), split into
``round(noise / mean_noise_span_length)`` spans (at least 1). Rounding is half-to-even, like
``tf.round`` / ``np.round``. One guard is added, as Hugging Face's T5 MLM example does: spans
are counted from ``min(noise, non_noise)``, because alternating spans need at least one
non-noise token per noise span; below density 0.5 this changes nothing.

The *same* counting function drives :func:`corrupted_lengths`, so the raw window length
computed by :func:`raw_length_for` gives inputs of exactly the requested length (the table in
the tests: 512 tokens at density 0.15 need 568 raw tokens and 114 target tokens).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from synthlm.errors import ConfigError


def noise_counts(
    length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
    """(noise tokens, noise spans) for a sequence of ``length`` tokens, rounded as T5 does."""
    if length < 2:
        raise ValueError(f"span corruption needs at least 2 tokens, got {length}")
    num_noise = int(np.round(length * noise_density))
    num_noise = min(max(num_noise, 1), length - 1)
    num_spans = int(np.round(min(num_noise, length - num_noise) / mean_noise_span_length))
    return num_noise, max(num_spans, 1)


def corrupted_lengths(
    length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
    """(input length, target length) after corrupting ``length`` raw tokens, EOS included.

    Inputs keep the non-noise tokens plus one sentinel per span; targets hold one sentinel per
    span plus the noise tokens; both end with EOS.
    """
    num_noise, num_spans = noise_counts(length, noise_density, mean_noise_span_length)
    return length - num_noise + num_spans + 1, num_noise + num_spans + 1


@lru_cache(maxsize=256)
def raw_length_for(
    input_length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
    """(raw tokens, target length) such that corrupted inputs fit ``input_length`` exactly.

    The longest raw length whose input still fits, as T5's ``compute_input_and_target_lengths``
    finds it, including its density-0.5 rule that gives up one raw token when the target would
    otherwise be one longer than the input (512 -> 766 raw / 512 target, not 767 / 513).
    """
    check_noise_options(noise_density, mean_noise_span_length)
    if input_length < 2:
        raise ConfigError(
            f"span corruption needs an input length of at least 2 tokens, got {input_length}"
        )
    raw = input_length
    while corrupted_lengths(raw + 1, noise_density, mean_noise_span_length)[0] <= input_length:
        raw += 1
    target = corrupted_lengths(raw, noise_density, mean_noise_span_length)[1]
    if noise_density == 0.5 and target > input_length:
        raw -= 1
        target = corrupted_lengths(raw, noise_density, mean_noise_span_length)[1]
    return raw, target


def check_noise_options(noise_density: float, mean_noise_span_length: float) -> None:
    """Fail before any work on values the mask cannot honour."""
    if not 0.0 < noise_density < 1.0:
        raise ConfigError(
            f"objective.noise_density: must be strictly between 0 and 1, got {noise_density}"
        )
    if mean_noise_span_length < 1.0:
        raise ConfigError(
            f"objective.mean_noise_span_length: must be >= 1, got {mean_noise_span_length}"
        )


def random_segmentation(num_items: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths of a uniformly random split of ``num_items`` into ``num_segments`` non-empty parts."""
    cuts = np.sort(rng.choice(num_items - 1, size=num_segments - 1, replace=False) + 1)
    return np.diff(np.concatenate(([0], cuts, [num_items])))


def random_spans_noise_mask(
    length: int, noise_density: float, mean_noise_span_length: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean noise mask: alternating non-noise / noise spans, starting with non-noise.

    Noise and non-noise tokens are each split at random into ``num_spans`` parts, then
    interleaved; span lengths are therefore random with the configured mean.
    """
    num_noise, num_spans = noise_counts(length, noise_density, mean_noise_span_length)
    noise_lengths = random_segmentation(num_noise, num_spans, rng)
    keep_lengths = random_segmentation(length - num_noise, num_spans, rng)
    noise_starts = np.cumsum(keep_lengths) + np.concatenate(([0], np.cumsum(noise_lengths)[:-1]))
    edges = np.zeros(length + 1, dtype=np.int32)
    edges[noise_starts] = 1  # starts and ends are all distinct: spans never touch
    edges[noise_starts + noise_lengths] = -1
    return np.cumsum(edges[:-1]).astype(bool)


def span_starts(mask: np.ndarray) -> np.ndarray:
    """True where a noise span begins (a noise token after a non-noise one, or at position 0)."""
    starts = mask.copy()
    starts[1:] &= ~mask[:-1]
    return starts


def corrupt(
    tokens: np.ndarray, mask: np.ndarray, sentinels: np.ndarray, first_sentinel: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) without EOS: each noise span becomes the next sentinel in the input,
    and the target lists every sentinel followed by the tokens it replaced.

    ``sentinels[k]`` is the id of ``<extra_id_k>``; numbering starts at ``first_sentinel`` so a
    caller corrupting several pieces (DEPTH's sentences) can keep one running order.
    """
    starts = span_starts(mask)
    num_spans = int(starts.sum())
    if first_sentinel + num_spans > len(sentinels):
        raise ConfigError(
            f"span corruption needs {first_sentinel + num_spans} sentinel tokens but only "
            f"{len(sentinels)} "
            "exist; lower the input length or mean span count, or raise objective.num_sentinels"
        )
    span_ids = sentinels[first_sentinel : first_sentinel + num_spans].astype(tokens.dtype)
    inputs = tokens.copy()
    inputs[starts] = span_ids
    inputs = inputs[~mask | starts]
    noise = tokens[mask]
    where = np.flatnonzero(starts[mask])  # index of each span's first token among noise tokens
    targets = np.insert(noise, where, span_ids)
    return inputs, targets


EVALUATION_MASKS = 0xE7A15  # keys evaluation masks apart from every other seeded stream


def evaluation_seed(seed: int, step: int) -> int:
    """The mask seed of the evaluation at ``step`` (``train.eval_draws: per_evaluation``): the
    original collators draw eval masks from a global generator, anew at every evaluation; keyed
    by the step, a resumed run repeats its evaluations exactly."""
    words = np.random.SeedSequence([EVALUATION_MASKS, seed & (2**64 - 1), step]).generate_state(2)
    return int(words[0]) | int(words[1]) << 32


def sample_rng(seed: int, tokens: np.ndarray, salt: int = 0) -> np.random.Generator:
    """A generator keyed by the seed and the window's content.

    Why not one stateful generator: collate runs in dataloader workers, each with a forked copy
    of the objective, so a shared generator would repeat masks across workers and could not be
    resumed. Keyed on content, a window gets the same corruption in every worker and on resume.
    """
    digest = hashlib.blake2b(
        np.ascontiguousarray(tokens).tobytes(), digest_size=8, person=b"synthlm-t5"
    ).digest()
    key = int.from_bytes(digest, "little")
    return np.random.Generator(
        np.random.Philox(key=[seed & (2**64 - 1), key ^ (salt & (2**64 - 1))])
    )
