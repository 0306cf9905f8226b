"""DEPTH examples built as the paper's code builds them (``objective: {name: depth,
construction: paper}``), for reproducing Bamberger et al. exactly.

Per example (one document; ``data.packing: false``):

1. The document's first ``max_sentences`` sentences, each after ``<eosen> <sent_x>``, the
   sentence tokens a random permutation (no repeats); then a closing ``<eosen>``. The whole
   sequence is cut to ``seq_len`` tokens. There is no ``</s>``: the DEPTH tokenizer pads the
   marked-up text to the input length *before* appending ``</s>``, so the truncation to the
   input length always removes it (checked by running the released code).
2. One T5 noise mask (density, mean span length) over the *whole* sequence, special tokens
   counted, rolled by a uniform random offset, shifted right by two positions; positions
   holding special tokens (the tokenizer's ``all_special_ids``: pad, ``</s>``, ``<unk>``, the
   sentinels, ``<eosen>``, ``<sent_x>``) are then unmasked. The real density is therefore
   below the nominal one, and a span hitting a special token is split in two.
3. Each span start gets a sentinel drawn *with replacement* from the ``<extra_id_*>`` pool
   (the same sentinel may mark two spans of one example).
4. Input: the sequence with each span replaced by its sentinel. Target, in the original
   order: every ``<eosen>`` and ``<sent_x>``, and each span as its sentinel followed by its
   tokens; no ``</s>``; padded to the input length with pad targets that are trained.
5. Shuffling is decided once per batch (``collate`` call): when on, the input's segments
   ``<sent_x> ... <eosen>`` after the leading ``<eosen>`` are permuted, and, as the code does
   (it finds no ``</s>`` and writes ``<eosen> </s>`` over the last two padding slots), the
   input ends with ``<eosen> </s>`` in the last two positions of the window, padding between.
   Those two tokens belong to no sentence (the code's token type 0).
"""

from __future__ import annotations

import numpy as np

from synthlm.objectives.t5_noise import random_spans_noise_mask


def paper_sequence(
    sentences: list[np.ndarray], sentence_ids: np.ndarray, eosen: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, owner): ``<eosen> <sent_a> S1 <eosen> <sent_b> S2 ... <eosen>`` cut to
    ``seq_len``; ``owner`` is the sentence index of each token (its segment ``<sent_x> Sx
    <eosen>``). As the DEPTH code's token types, the leading ``<eosen>`` belongs to the first
    sentence, so that sentence's token may attend to it."""
    tokens, owner = [np.array([eosen])], [np.array([0])]
    for i, sentence in enumerate(sentences):
        tokens.append(np.concatenate(([sentence_ids[i]], sentence, [eosen])))
        owner.append(np.full(len(sentence) + 2, i))
    return (
        np.concatenate(tokens).astype(np.int64)[:seq_len],
        np.concatenate(owner).astype(np.int64)[:seq_len],
    )


def paper_noise_mask(
    length: int,
    noise_density: float,
    mean_noise_span_length: float,
    special: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """T5 spans over the whole sequence, rolled, shifted right by two, specials unmasked."""
    if length < 2:
        return np.zeros(length, dtype=bool)
    mask = random_spans_noise_mask(length, noise_density, mean_noise_span_length, rng)
    mask = np.roll(mask, int(rng.integers(0, length)))
    shifted = np.concatenate(([False, False], mask[:-2]))
    return shifted & ~special


def paper_corrupt(
    tokens: np.ndarray,
    owner: np.ndarray,
    noise: np.ndarray,
    label_specials: np.ndarray,
    sentinel_pool: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input, owner of each input token, labels) for one sequence and its noise mask."""
    starts = noise.copy()
    starts[1:] &= ~noise[:-1]
    sentinels = rng.choice(sentinel_pool, size=int(starts.sum()), replace=True)
    inputs = tokens.copy()
    inputs[starts] = sentinels
    keep = ~noise | starts
    targets = noise | np.isin(tokens, label_specials)
    labels = np.insert(tokens[targets], np.flatnonzero(starts[targets]), sentinels)
    return inputs[keep], owner[keep], labels.astype(np.int64)


def paper_shuffle(
    inputs: np.ndarray,
    owner: np.ndarray,
    eosen: int,
    eos: int,
    pad: int,
    seq_len: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Permute the segments ``<sent_x> ... <eosen>`` after the leading ``<eosen>``; the result
    is ``seq_len`` long and ends with ``<eosen> </s>`` (owner -1) after padding (owner -1)."""
    body_end = max(1, min(len(inputs), seq_len - 2))
    tokens, owners = inputs[1:body_end], owner[1:body_end]
    order = rng.permutation(np.unique(owners))
    pieces = [np.flatnonzero(owners == s) for s in order]
    where = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    owners = owners[where]
    first = owners[0] if len(owners) else -1  # as the code's token types
    fill = seq_len - 3 - len(where)
    shuffled = np.concatenate(([eosen], tokens[where], np.full(fill, pad), [eosen, eos]))
    owned = np.concatenate(([first], owners, np.full(fill + 2, -1)))
    return shuffled.astype(np.int64), owned.astype(np.int64)
