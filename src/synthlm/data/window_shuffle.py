"""A keyed permutation of ``range(n)`` evaluated one index at a time (``data.shuffle_windows``).

Megatron's and GPT-NeoX's ``GPTDataset`` shuffle the samples cut from the document stream
(their ``shuffle_idx``), so the rows of one long document land in different steps. Doing the
same with a stored permutation would cost 8 bytes per window in every dataloader worker
(1.2 GB for one pass over the Pile at 2,048 tokens), and our samples must stay pure functions
of their index. A Feistel network gives a bijection on ``[0, 2^bits)`` from a key alone, and
cycle-walking (apply it again until the value falls below ``n``) restricts it to ``[0, n)``:
O(1) memory, a few microseconds per index. numpy and the standard library have no such
index-at-a-time permutation, hence the few lines here.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
ROUNDS = 4  # a 4-round Feistel network with a good round function is a pseudo-random permutation


def _mix(value: int) -> int:
    """splitmix64's finaliser: every input bit changes about half the output bits."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & MASK64
    return value ^ (value >> 31)


class IndexPermutation:
    """``self(i)`` for ``i`` in ``range(n)`` is a permutation of ``range(n)`` fixed by ``key``."""

    def __init__(self, n: int, key: tuple[int, ...]) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        self.n = n
        half = max(1, ((n - 1).bit_length() + 1) // 2)  # both halves of 2 x half >= n's bits
        self.half, self.half_mask = half, (1 << half) - 1
        seed = 0
        for part in key:
            seed = _mix(seed ^ (part & MASK64))
        self.round_keys = [_mix(seed + r + 1) for r in range(ROUNDS)]

    def _feistel(self, value: int) -> int:
        left, right = value >> self.half, value & self.half_mask
        for round_key in self.round_keys:
            left, right = right, left ^ (_mix(right ^ round_key) & self.half_mask)
        return (left << self.half) | right

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} outside range({self.n})")
        value = self._feistel(index)
        while value >= self.n:  # the domain is < 4n, so a few steps on average
            value = self._feistel(value)
        return value
