"""``fbm``: fractional Brownian motion paths quantised into ``num_vocab`` bins.

Paths are simulated exactly with the Davies-Harte method (circulant embedding of the fractional
Gaussian noise covariance, one FFT per block), not approximated. The prefix of an fBm path is an
fBm path, so one block simulates its longest length and cuts the others. Each path ``B(0..L-1)``
(``B(0) = 0``) is min-max scaled into bins ``0..num_vocab-1``: the lowest point always lands in
bin 0 and the highest in the last bin, which is what ``verify`` can check besides the alphabet.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import Field

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import DomainParams, IntRange, at_least
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import register_domain


class FbmParams(DomainParams):
    hurst: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="Hurst exponent H in (0, 1): < 0.5 rough, 0.5 Brownian, > 0.5 persistent.",
    )
    num_vocab: int = Field(
        64, ge=1, le=1 << 20, description="Quantisation bins (token ids 0..num_vocab-1)."
    )
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=64, max=256), description="Points per path (tokens)."
    )

    _long_enough = at_least("length", low=2)


@lru_cache(maxsize=16)
def _sqrt_eigenvalues(increments: int, hurst: float) -> np.ndarray:
    """sqrt(eigenvalues / 2N) of the circulant embedding of fGn's covariance (length 2N)."""
    k = np.arange(increments + 1, dtype=np.float64)
    gamma = 0.5 * (
        np.abs(k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst)
    )
    row = np.concatenate([gamma, gamma[-2:0:-1]])
    eigenvalues = np.fft.fft(row).real
    return np.sqrt(np.clip(eigenvalues, 0, None) / len(row))


def fbm_paths(rng: np.random.Generator, count: int, points: int, hurst: float) -> np.ndarray:
    """``count`` exact fBm paths of ``points`` points (B(0) = 0, unit-variance increments)."""
    increments = max(points - 1, 1)
    scale = _sqrt_eigenvalues(increments, float(hurst))
    noise = rng.standard_normal((count, len(scale))) + 1j * rng.standard_normal((count, len(scale)))
    fgn = np.fft.fft(scale * noise, axis=1).real[:, :increments]
    paths = np.zeros((count, points), dtype=np.float64)
    np.cumsum(fgn[:, : points - 1], axis=1, out=paths[:, 1:])
    return paths


def quantise(paths: np.ndarray, lengths: np.ndarray, bins: int) -> Ragged:
    """Min-max scale each path's first ``lengths[i]`` points into ``bins`` bins."""
    valid = np.arange(paths.shape[1]) < lengths[:, None]
    low = np.where(valid, paths, np.inf).min(axis=1, keepdims=True)
    high = np.where(valid, paths, -np.inf).max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    tokens = np.minimum(((paths - low) / span * bins).astype(np.int64), bins - 1)
    return Ragged(tokens[valid], lengths)


@register_domain(
    "fbm",
    family="stochastic",
    description="Fractional Brownian motion (Hurst H, exact Davies-Harte) quantised into "
    "num_vocab bins.",
)
class FractionalBrownianMotion(Domain):
    Params = FbmParams
    is_task = False

    @classmethod
    def alphabet_size(cls, params):
        return params.num_vocab

    def body(self, rng, n):
        lengths = self.params.length.sample(rng, n)
        paths = fbm_paths(rng, n, int(lengths.max()), self.params.hurst)
        return [(quantise(paths, lengths, self.params.num_vocab), True)]

    def mean_body_length(self):
        return self.params.length.mean

    def check_language(self, body):
        if not self.params.length.contains(len(body)):
            raise Malformed(f"length {len(body)} outside {self.params.length}")
        tokens = self.as_content(body, "path")
        if tokens.min() != 0 or tokens.max() != self.params.num_vocab - 1:
            raise Malformed("a min-max quantised path must reach the lowest and the highest bin")

    @property
    def unique_answer(self):
        return False
