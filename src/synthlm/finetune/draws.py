"""The random choices a pair makes each time it is used, as the original collators make them.

Three things the original code draws per use of an example, each with Python's or numpy's
global generator in the collator:

* which of Tk-Instruct's encodings writes the prompt (``natural_instructions.tk_instruct``);
* which ``<sent_i>`` ids mark the input's sentences (``depth_inputs.sentence_ids: shuffled``);
* which of a natural-instructions instance's outputs is the target (``random.choice``).

synthlm keys every draw instead (why: a global generator repeats across dataloader workers
and cannot be resumed): a training pair draws by ``(seed, epoch, pair)``; an evaluation pair
once by ``(seed, role, pair)`` (``train.eval_draws: fixed``), or anew at every evaluation by
``(seed, role, step, pair)`` (``per_evaluation``: the collators draw at every evaluation).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synthlm.finetune.data import Pair, PairSet

# per-pair draws, each kind keyed apart from every other seeded stream
ENCODING_DRAW = 0x7E1C  # natural_instructions.tk_instruct: which encoding
SENTENCE_DRAW = 0x5E47  # depth_inputs.sentence_ids: shuffled: which <sent_i> ids
TARGET_DRAW = 0x7A96  # which output is the target (evaluation draws; training keys its own)
EVALUATION = 0xE7A1 << 16  # marks a kind drawn anew at each evaluation

ROLE_KEYS = {"train": 0, "valid": 1, "test": 2}


def pair_rng(kind: int, seed: int, stream: int, index: int) -> np.random.Generator:
    """One pair's draw of ``kind``: ``stream`` is an epoch (training) or a role key."""
    return np.random.default_rng([kind, seed & (2**64 - 1), stream, index])


def evaluation_rng(kind: int, seed: int, role: str, step: int, index: int) -> np.random.Generator:
    """The draw of ``kind`` for one evaluation pair at the evaluation of ``step``."""
    return np.random.default_rng(
        [EVALUATION | kind, seed & (2**64 - 1), ROLE_KEYS[role], step, index]
    )


def with_encoding(pair: Pair, rng: np.random.Generator) -> Pair:
    """The pair written with one of its encodings (``input_alternatives``)."""
    if not pair.input_alternatives:
        return pair
    pick = int(rng.integers(len(pair.input_alternatives)))
    return dataclasses.replace(pair, input_ids=pair.input_alternatives[pick])


def with_sentence_ids(pair: Pair, sentence_tokens: np.ndarray, rng: np.random.Generator) -> Pair:
    from synthlm.finetune.depth_inputs import shuffle_sentence_ids

    ids = shuffle_sentence_ids(pair.input_ids, sentence_tokens, rng)
    return dataclasses.replace(pair, input_ids=ids)


def with_target(pair: Pair, pick: int) -> Pair:
    """The pair with its ``pick``-th output as the target (and the reference it is scored by)."""
    assert pair.alternatives is not None
    text = pair.alternative_texts[pick] if pair.alternative_texts else pair.target_text
    return dataclasses.replace(pair, target_ids=pair.alternatives[pick], target_text=text)


def has_draws(pairs: PairSet) -> bool:
    """Whether the pairs' evaluation draws anything (else ``per_evaluation`` would be a no-op)."""
    return pairs.sentence_tokens is not None or any(
        p.input_alternatives or p.alternatives for p in pairs.pairs
    )


def drawn_for_evaluation(pairs: PairSet, seed: int, step: int) -> PairSet:
    """``train.eval_draws: per_evaluation``: every pair's draws for the evaluation at ``step``
    (the same step draws the same, so a resumed run repeats its evaluations exactly)."""
    role = pairs.name  # a pair set is named by its role (valid, test)
    drawn = []
    for pair in pairs.pairs:
        index = pair.index
        if pair.input_alternatives:
            pair = with_encoding(pair, evaluation_rng(ENCODING_DRAW, seed, role, step, index))
        if pairs.sentence_tokens is not None:
            rng = evaluation_rng(SENTENCE_DRAW, seed, role, step, index)
            pair = with_sentence_ids(pair, pairs.sentence_tokens, rng)
        if pair.alternatives:
            rng = evaluation_rng(TARGET_DRAW, seed, role, step, index)
            pair = with_target(pair, int(rng.integers(len(pair.alternatives))))
        drawn.append(pair)
    return dataclasses.replace(pairs, pairs=drawn)
