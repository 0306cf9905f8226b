"""Text made back from token ids: how outputs are scored and how an over-long prompt is cut.

Two rules come from nanoT5's Super-NaturalInstructions evaluation (``train_utils.predict`` and
``DataCollatorForNI`` in github.com/PiotrNawrot/nanoT5), which ran on transformers 4.30:

* **Scored text** (``finetune.scored_text: cleaned_up``): the prediction and the reference are
  both decoded from their token ids without special tokens, then put through transformers'
  ``clean_up_tokenization`` (``clean_up_tokenization_spaces=True``) and stripped. The clean-up
  joins English tokenization artifacts ("do n't" -> "don't", "care ." -> "care."), which
  changes the words ROUGE sees. The default, ``decoded``, scores the text as the tokenizer
  decodes it and the reference as written.
* **An over-long prompt** (``finetune.natural_instructions.long_prompt_cut: retokenized_text``):
  the collator decodes the prompt's first ``max_input_length`` ids without special tokens
  (``<unk>`` pieces vanish; transformers 4.30's default clean-up applies) and tokenizes that
  text again, cut at the limit. The default, ``first_ids``, keeps the first
  ``max_input_length - 1`` ids and appends ``</s>``.

The clean-up is restated here from its definition (the same ten replacements in transformers
4.30 and 5.x): synthlm's tokenizers decode through ``tokenizers`` directly, and transformers 5
no longer cleans up T5 text by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthlm.protocols import Tokenizer

# PreTrainedTokenizerBase.clean_up_tokenization: each applied to the whole text, in this order
CLEAN_UP_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def clean_up_tokenization(text: str) -> str:
    """``text`` with transformers' English clean-up: no space before ``. ? ! ,`` and the
    contractions ``n't 'm 's 've 're``; ``" ' "`` becomes ``"'"``. Plain string replacements,
    so it also joins spaces a text had on purpose ("x . y" -> "x. y"), as transformers does."""
    for old, new in CLEAN_UP_REPLACEMENTS:
        text = text.replace(old, new)
    return text


def scored_text(tokenizer: Tokenizer, ids: Sequence[int], *, clean_up: bool) -> str:
    """The text a metric reads for ``ids``: decoded without special tokens (``</s>``, pads,
    ``<unk>``, sentinels), with transformers' clean-up when ``clean_up``, and stripped."""
    text = tokenizer.decode(list(ids), skip_special=True)
    return (clean_up_tokenization(text) if clean_up else text).strip()


def retokenized_cut(encoded: list[list[int]], tokenizer: Tokenizer, limit: int) -> list[list[int]]:
    """``encoded`` (ids without ``</s>``) with every prompt over ``limit`` tokens (``</s>``
    counted) replaced by the ids of its first ``limit`` ids' text: decoded without special
    tokens, cleaned up and tokenized again. The result may still exceed the limit (the caller
    cuts it as any input, ``</s>`` last); prompts that fit are returned as they are."""
    over = [i for i, ids in enumerate(encoded) if len(ids) + 1 > limit]
    if not over:
        return encoded
    texts = [
        clean_up_tokenization(tokenizer.decode(encoded[i][:limit], skip_special=True)) for i in over
    ]
    result = list(encoded)
    for i, ids in zip(over, tokenizer.encode_batch(texts), strict=True):
        result[i] = ids
    return result
