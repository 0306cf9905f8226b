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


# ---------------------------------------------------------------------------------------------
# Templates that are not prefix-stable, and generation prompts that are not prefixes


def target_pieces(tokenizer, ids: list[int], mask: list[int]) -> list[str]:
    """The decoded runs of consecutive target tokens."""
    ids_, mask_ = np.array(ids), np.array(mask)
    starts = np.flatnonzero(np.diff(np.concatenate([[0], mask_])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([mask_, [0]])) == -1) + 1
    return [tokenizer.decode(ids_[a:b].tolist()) for a, b in zip(starts, ends)]


TWO_TURNS = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello there"},
    {"role": "user", "content": "and?"},
    {"role": "assistant", "content": "bye"},
]

# Phi-3's template (microsoft/Phi-3-mini-4k-instruct): a finished conversation ends with EOS,
# so no rendered prefix is a prefix of the next, which the old prefix-by-prefix rendering refused
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + "
    "message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# Qwen3's rule in small: the last turn carries an empty <think> block, earlier ones lose it
QWEN3_LIKE = (
    "{% for m in messages %}{% if m.role == 'assistant' and loop.last %}"
    "{{ '<|im_start|>assistant\n<think>\n\n</think>\n\n' + m.content + '<|im_end|>\n' }}"
    "{% else %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# nemotron_3_nano's mismatch in small: the prompt opens <think>, the rendered turn closes it
NEMOTRON_LIKE = (
    "{% for m in messages %}{% if m.role == 'assistant' %}"
    "{{ '<|im_start|>assistant\n<think></think>' + m.content + '<|im_end|>\n' }}"
    "{% else %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n' }}{% endif %}"
)


def test_a_template_that_appends_eos_to_a_finished_conversation_is_masked(byte_tokenizer):
    """Phi-3: every turn's ``<|end|>\\n`` is a target and so is the closing EOS (as TRL's
    phi3_training.jinja marks them)."""
    byte_tokenizer.chat_template = PHI3
    ids, mask = render_conversation(byte_tokenizer, TWO_TURNS)
    assert target_pieces(byte_tokenizer, ids, mask) == [
        "hello there<|end|>\n",
        "bye<|end|>\n</s>",
    ]


def test_a_template_that_drops_earlier_reasoning_is_masked(byte_tokenizer):
    """Qwen3: the last turn keeps its ``<think>`` block (written after the generation prompt,
    so the model learns it), the earlier one has none; the old prefix renders refused this."""
    byte_tokenizer.chat_template = QWEN3_LIKE
    ids, mask = render_conversation(byte_tokenizer, TWO_TURNS)
    assert target_pieces(byte_tokenizer, ids, mask) == [
        "hello there<|im_end|>\n",
        "<think>\n\n</think>\n\nbye<|im_end|>\n",
    ]


def test_the_assistant_header_is_never_a_target(byte_tokenizer):
    """nemotron_3_nano: the generation prompt (``...assistant\\n<think>\\n``) is not a prefix
    of the rendered turn (``...assistant\\n<think></think>``); the target starts at the
    message's own text instead of swallowing the header."""
    byte_tokenizer.chat_template = NEMOTRON_LIKE
    ids, mask = render_conversation(byte_tokenizer, TWO_TURNS)
    assert target_pieces(byte_tokenizer, ids, mask) == [
        "hello there<|im_end|>\n",
        "bye<|im_end|>\n",
    ]


def test_a_chatml_end_of_turn_is_a_target(byte_tokenizer):
    """Qwen2.5 / ChatML: ``<|im_end|>`` is not EOS; it is what the model must learn to write
    to end a reply (and what ``synthlm chat`` stops at)."""
    byte_tokenizer.chat_template = QWEN3_LIKE.replace("<think>\n\n</think>\n\n", "")
    ids, mask = render_conversation(byte_tokenizer, TWO_TURNS)
    assert target_pieces(byte_tokenizer, ids, mask) == [
        "hello there<|im_end|>\n",
        "bye<|im_end|>\n",
    ]


def test_a_template_that_rewrites_the_answer_is_refused_with_a_way_out(byte_tokenizer):
    byte_tokenizer.chat_template = (
        "{% for m in messages %}{{ m.role + ': ' + m.content.upper() + '\n' }}{% endfor %}"
    )
    with pytest.raises(UserError, match=r"assistant message 2's text.*chat_template\.jinja"):
        render_conversation(byte_tokenizer, TWO_TURNS[:2])


@pytest.mark.parametrize(
    ("template", "marker"),
    [
        (DEFAULT_CHAT_TEMPLATE, "</s>"),
        (PHI3, "<|end|>"),
        (QWEN3_LIKE, "<|im_end|>"),
        ("{% for m in messages %}{{ '<|' + m.role + '|>\n' + m.content }}{% endfor %}", "<|user|>"),
        ("{% for m in messages %}{{ m.content }}{% endfor %}", None),
    ],
)
def test_the_end_of_turn_comes_from_the_template(byte_tokenizer, template, marker):
    from synthlm.text.chat_format import end_of_turn

    byte_tokenizer.chat_template = template
    assert end_of_turn(byte_tokenizer) == marker


# ---------------------------------------------------------------------------------------------
# Against TRL's assistant-only masks (its training templates), where TRL is installed

# Templates whose targets equal TRL's token for token. The others differ by design: TRL also
# trains the assistant header (deepseek, gpt-oss, muse_glimmer), part of the generation prompt
# (qwen2_5's "\n", qwen3_5/3_6/3_8's "<think>\n"), or what its training template renders
# differently (qwen3 keeps earlier <think> blocks; nemotron trains "<think></think>").
SAME_AS_TRL = [
    "cohere",
    "cohere2",
    "diffusion_gemma",
    "gemma3",
    "lfm2",
    "lfm2_v2",
    "lfm2_2_5",
    "lfm2_2_5_v2",
    "lfm2_2_5_vl",
    "llama3",
    "phi3",
    "phi3_5",
    "qwen2_5_vl",
    "qwen3_instruct_2507",
    "qwen3_vl",
]

TRL_CONVERSATIONS = [
    CONVERSATION,
    TWO_TURNS,
    [
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "4."},
    ],
]


def trl_template_tokenizer(name: str):
    """A byte-level tokenizer with the template's role markers as special tokens, and the
    template (as the audit built them; no download)."""
    import re
    from pathlib import Path

    import trl

    template = (Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja").read_text()
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"</s>": 0, **{c: i + 1 for i, c in enumerate(alphabet)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", bos_token="</s>")
    pattern = r"<\|[a-z_]+\|>|<start_of_turn>|<end_of_turn>|<｜[^｜]+｜>"
    tok.add_special_tokens(
        {"additional_special_tokens": sorted(set(re.findall(pattern, template)))}
    )
    tok.chat_template = template
    return tok


@pytest.mark.parametrize("name", SAME_AS_TRL)
def test_targets_equal_trls_assistant_only_masks(name):
    pytest.importorskip("trl")
    from trl.chat_template_utils import get_training_chat_template

    tok = trl_template_tokenizer(name)
    training = get_training_chat_template(tok) or tok.chat_template
    for messages in TRL_CONVERSATIONS:
        ids, mask = render_conversation(tok, messages)
        trl = tok.apply_chat_template(
            messages,
            chat_template=training,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        assert ids == list(trl["input_ids"])
        assert mask == list(trl["assistant_masks"]), target_pieces(tok, ids, mask)


def test_nemotron_targets_are_trls_without_the_templates_think_block():
    """nemotron_3_nano (finding 4): TRL trains ``<think></think>`` + answer + end of turn, never
    the header; synthlm trains the answer and its end of turn, never the header either."""
    pytest.importorskip("trl")
    from trl.chat_template_utils import get_training_chat_template

    tok = trl_template_tokenizer("nemotron_3_nano")
    ids, mask = render_conversation(tok, TWO_TURNS)
    ours = target_pieces(tok, ids, mask)
    trl = tok.apply_chat_template(
        TWO_TURNS,
        chat_template=get_training_chat_template(tok),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert list(trl["input_ids"]) == ids
    theirs = target_pieces(tok, ids, list(trl["assistant_masks"]))
    assert theirs == ["<think></think>" + piece for piece in ours]
    assert ours == ["hello there<|im_end|>\n", "bye<|im_end|>\n"]
