"""Counter-based randomness: every block of sequences has its own key, never ``seed + i``.

A block of sequences of one domain in one split is generated from
``Philox(SeedSequence(seed, spawn_key=(BLOCKS, split, domain, block)))``. The key is a pure
function of those four numbers, so any worker can produce any block and every worker count (and
every machine, since numpy's bit generators are platform independent) yields the same bytes.
Seeds may be any Python int, 0 and negatives included: ``SeedSequence`` takes the magnitude and
the sign as two entropy words, so no seed is special and no two seeds share a stream.

The 64-bit mixing function (splitmix64) is hand-written because numpy has no vectorised integer
hash; we need one for the implicit n-gram transition table and for sequence fingerprints.
"""

from __future__ import annotations

import numpy as np

# Stream kinds: the first word of every spawn key, so streams for different purposes never meet.
BLOCKS = 0
PROMOTERS = 1
TABLES = 2

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def entropy(seed: int) -> list[int]:
    """Entropy words for ``SeedSequence``: magnitude and sign, so -1 and 1 differ."""
    return [abs(int(seed)), int(seed < 0)]


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy(seed), spawn_key=tuple(int(k) for k in key))


def generator(seed: int, *key: int) -> np.random.Generator:
    """A Philox generator keyed by ``(seed, *key)``."""
    return np.random.Generator(np.random.Philox(seed_sequence(seed, *key)))


def block_generator(seed: int, split: int, domain: int, block: int) -> np.random.Generator:
    """The generator of one block of sequences (see the module docstring)."""
    return generator(seed, BLOCKS, split, domain, block)


def table_key(seed: int, domain: int) -> np.uint64:
    """A 64-bit key for a domain's implicit tables (e.g. n-gram successors)."""
    return np.uint64(seed_sequence(seed, TABLES, domain).generate_state(1, np.uint64)[0])


def splitmix64(values: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on uint64 (wrapping arithmetic)."""
    z = np.asarray(values, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def sequence_hashes(tokens: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """One 64-bit fingerprint per sequence (order- and length-sensitive) for split overlap."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), dtype=np.uint64)
    if len(tokens) == 0:
        return splitmix64(out ^ sizes.astype(np.uint64))
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    positions = np.arange(len(tokens), dtype=np.int64) - np.repeat(starts, sizes)
    mixed = splitmix64(tokens.astype(np.uint64) ^ (positions.astype(np.uint64) << np.uint64(32)))
    nonempty = sizes > 0
    out[nonempty] = np.add.reduceat(mixed, starts[nonempty])
    return splitmix64(out ^ splitmix64(sizes.astype(np.uint64)))
