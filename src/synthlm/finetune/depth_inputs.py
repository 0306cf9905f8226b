"""DEPTH-marked fine-tuning inputs and their encoder attention (``finetune.depth_inputs``).

The DEPTH code fine-tunes a DEPTH model on inputs laid out as in pretraining, with the sentence
tokens in order instead of shuffled (``DepthTokenizer(..., randomize_sentence_token_ids=False)``
in ``encoder_decoder_utils/data_utils.py``)::

    <eosen> <sent_0> S1 <eosen> <sent_1> S2 ... <eosen>

and ``DEPTHDataCollatorFineTuning`` builds the encoder's mask from token types: the leading
``<eosen>`` and every token up to the next ``<sent_i>`` share a type (1 for the first
sentence, 2 for the second, ...), so each closing ``<eosen>`` belongs to the sentence it closes
and the final ``<eosen>`` to the last one. ``<sent_i>`` *and* ``<eosen>`` tokens attend
only to the tokens of their own type; every other token attends to the whole input. The
decoder is causal and cross-attention sees the whole input (targets hold no sentence tokens).

Here the text is split with a :mod:`synthlm.text.sentences` splitter (``nltk`` is the code's),
each sentence is encoded on its own (as the pretraining's paper construction does: the splitter
hands the space between sentences to the next one, where SentencePiece puts it), and inputs
longer than ``max_input_length`` are cut there, as the DEPTH tokenizer cuts them (with ``eos``,
``</s>`` stays last). Padding is
never attended (the DEPTH code pads every input to its full length and lets ordinary tokens
attend to the padding: docs/papers/depth.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthlm.errors import ConfigError
from synthlm.finetune.config import DepthInputsConfig
from synthlm.text.sentences import get_splitter, split_sentences
from synthlm.text.special_tokens import TextCodec, depth_token_names, vocabulary


@dataclass(frozen=True)
class DepthMarks:
    """The ids that mark sentences, how text is cut into them, and whether </s> ends inputs."""

    eosen: int
    sentences: np.ndarray  # <sent_0>, <sent_1>, ... in order
    splitter: str
    eos: bool = False

    @property
    def structural(self) -> np.ndarray:
        """Tokens that attend only within their sentence: <sent_i> and <eosen>."""
        return np.append(self.sentences, self.eosen)


def depth_marks(tokenizer: Any, cfg: DepthInputsConfig) -> DepthMarks:
    """<eosen> and <sent_i> of a DEPTH tokenizer (a synthlm DEPTH run saves it with its model);
    a tokenizer without them cannot mark sentences, and says so."""
    vocab = vocabulary(tokenizer)
    eosen, names = depth_token_names(vocab, cfg.num_sentinels, cfg.max_sentences)
    missing = [name for name in (eosen, *names) if name not in vocab]
    if missing:
        raise ConfigError(
            f"finetune.depth_inputs: the tokenizer has no {missing[0]} (of <eosen> and "
            f"{cfg.max_sentences} sentence tokens after {cfg.num_sentinels} sentinels); use the "
            "tokenizer a DEPTH pretraining run saved (model.init_from's final/), or check "
            "finetune.depth_inputs.num_sentinels / max_sentences"
        )
    get_splitter(cfg.splitter)  # an unknown splitter fails here, before any pair is read
    split_sentences("Ready. Set.", cfg.splitter)  # so does a splitter whose model is missing
    return DepthMarks(
        vocab[eosen], np.array([vocab[n] for n in names], dtype=np.int64), cfg.splitter, cfg.eos
    )


def encode_depth_input(
    text: str, codec: TextCodec, marks: DepthMarks, eos: int, limit: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(ids, token type of each id, whether text was cut) for one input of at most ``limit``
    tokens (``</s>`` last with ``marks.eos``). A structural token's type is negated (``-t``):
    it attends only to type ``t``."""
    sentences = split_sentences(text, marks.splitter)[: len(marks.sentences)] or [""]
    ids, types = [marks.eosen], [1]
    for number, sentence in enumerate(sentences, start=1):
        body = codec.encode(sentence)
        ids += [int(marks.sentences[number - 1]), *body, marks.eosen]
        types += [number] * (len(body) + 2)
    cut = len(ids) + marks.eos > limit
    ids, types = ids[: limit - marks.eos], types[: limit - marks.eos]
    if marks.eos:  # </s> shares the type of the token before it, as in the DEPTH tokenizer
        ids, types = [*ids, eos], [*types, types[-1]]
    ids_array, types_array = np.asarray(ids, dtype=np.int64), np.asarray(types, dtype=np.int64)
    types_array[np.isin(ids_array, marks.structural)] *= -1
    return ids_array, types_array, cut


def shuffle_sentence_ids(
    ids: np.ndarray, sentence_tokens: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``ids`` with sentence ``i``'s ``<sent_i>`` replaced by the i-th of a random permutation
    of all the sentence tokens, as ``DepthTokenizer.add_sentence_tokens_to_text(...,
    randomize=True)`` marks sentences (``np.random.shuffle`` of its sentence tokens, then one
    per sentence in order). Token types are untouched: they number sentences, not ids."""
    drawn = sentence_tokens[rng.permutation(len(sentence_tokens))]
    position = {int(token): number for number, token in enumerate(sentence_tokens)}
    out = ids.copy()
    for at in np.flatnonzero(np.isin(ids, sentence_tokens)):
        out[at] = drawn[position[int(ids[at])]]
    return out


def encoder_mask(types: Any, attention_mask: Any) -> Any:
    """Boolean ``[B, 1, L, L]`` encoder mask (True: may attend) from signed token types (see
    :func:`encode_depth_input`): a structural token sees the non-pad tokens of its type, every
    other token all non-pad ones."""
    valid = attention_mask.bool()
    restricted = types < 0
    same_type = types.abs()[:, :, None] == types.abs()[:, None, :]
    allowed = valid[:, None, :] & (~restricted[:, :, None] | same_type)
    return allowed[:, None]
