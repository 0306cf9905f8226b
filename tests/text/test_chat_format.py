"""SFT rendering: only the assistant's answers (and their end-of-turn) carry loss."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from synthlm.errors import UserError
from synthlm.text.chat_format import DEFAULT_CHAT_TEMPLATE, render_conversation, validate_messages


@pytest.fixture
def byte_tokenizer():
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"</s>": 0, **{c: i + 1 for i, c in enumerate(alphabet)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>")


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Who wrote Hamlet?"},
    {"role": "assistant", "content": "Shakespeare."},
    {"role": "user", "content": "When?"},
    {"role": "assistant", "content": "About 1600."},
]


def test_only_assistant_answers_are_targets(byte_tokenizer):
    ids, mask = render_conversation(byte_tokenizer, CONVERSATION)
    assert len(ids) == len(mask)
    ids, mask = np.array(ids), np.array(mask)
    starts = np.flatnonzero(np.diff(np.concatenate([[0], mask])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([mask, [0]])) == -1) + 1
    pieces = [byte_tokenizer.decode(ids[a:b].tolist()) for a, b in zip(starts, ends)]
    assert pieces == ["Shakespeare.</s>\n", "About 1600.</s>\n"]
    assert byte_tokenizer.decode(ids.tolist()).startswith("<|system|>\nBe brief.</s>")


def test_tokenizer_without_template_gets_the_default(byte_tokenizer):
    byte_tokenizer.chat_template = None
    render_conversation(byte_tokenizer, CONVERSATION[:3])
    assert byte_tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "non-empty list"),
        ([{"role": "robot", "content": "x"}], r"messages\[0\] must have role"),
        ([{"role": "user", "content": "hi"}], "no assistant message"),
    ],
)
def test_bad_conversations_are_named(messages, match):
    with pytest.raises(UserError, match=match):
        validate_messages(messages, "chat.jsonl:3")
