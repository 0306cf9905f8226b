"""``synthlm chat``: prompts carry the conversation so far, /reset forgets it, an overflowing
context drops the oldest turns (never the system prompt), stop strings are never shown, and a
scripted session through a pipe gets one streamed reply per message, each on its own line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from synthlm.data.store import write_store
from synthlm.errors import UserError
from synthlm.inference.chat import (
    ChatSession,
    ContextOverflow,
    Conversation,
    StopFilter,
    TurnEnd,
    context_size,
    open_session,
    resolve_template,
    run_session,
)
from synthlm.inference.sampling import SamplingConfig
from synthlm.text.chat_format import DEFAULT_CHAT_TEMPLATE
from synthlm.tokenizers import load_tokenizer, to_hf, train_tokenizer

META_ID = 300  # past the byte tokenizer's 260 natural ids: a meta-language id in a 320-row model


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "byte"
    train_tokenizer([], "byte", None, out, quiet=True)
    return out


@pytest.fixture
def hf_tok(tok_dir):
    tok = to_hf(load_tokenizer(tok_dir))
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def rigged(tok_dir, tmp_path_factory) -> Path:
    """A 2-layer Llama whose greedy reply to any chat prompt is "ok" then EOS.

    Attention and MLP outputs are zeroed, so the last hidden state is the current token's
    embedding and the LM head is a bigram table: "\\n" (the end of the assistant header) -> "o"
    -> "k" -> a meta-language id (most likely) or EOS (second); the meta id -> "X" -> EOS. Only
    suppressing meta ids, as chat must, makes the reply "ok".
    """
    tok = load_tokenizer(tok_dir)
    newline, o, k, x = (tok.encode(c)[0] for c in "\nokX")
    chain = {newline: [o], o: [k], k: [META_ID, tok.eos_id], META_ID: [x], x: [tok.eos_id]}
    return bigram_chat_model(tok, chain, tmp_path_factory.mktemp("ckpt") / "rigged")


def bigram_chat_model(tok, chain: dict[int, list[int]], path: Path) -> Path:
    """A Llama that is a bigram table: token -> its followers, most likely first."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=320,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.bos_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        for slot, (current, following) in enumerate(chain.items()):
            model.model.embed_tokens.weight[current, slot] = 1.0
            for rank, nxt in enumerate(following):
                model.lm_head.weight[nxt, slot] = 10.0 - 3.0 * rank
    model.save_pretrained(path)
    tok.save(path)
    return path


# -------------------------------------------------------------------------------------------------
# Prompts and history (library)


def test_each_prompt_holds_the_system_prompt_and_every_earlier_exchange(hf_tok):
    chat = Conversation(hf_tok, max_context=1000, reserve=10, system="Be brief.")
    first = chat.prompt("Who wrote Hamlet?")
    assert (
        first.text == "<|system|>\nBe brief.</s>\n<|user|>\nWho wrote Hamlet?</s>\n<|assistant|>\n"
    )
    chat.add("Who wrote Hamlet?", "Shakespeare.")
    second = chat.prompt("When?")
    assert second.text == first.text + "Shakespeare.</s>\n<|user|>\nWhen?</s>\n<|assistant|>\n"
    assert (
        second.ids == hf_tok(second.text, add_special_tokens=False)["input_ids"]
        and second.dropped == 0
    )
    chat.reset()
    assert "Hamlet" not in chat.prompt("When?").text


def test_overflow_drops_the_oldest_turns_but_keeps_the_system_prompt(hf_tok):
    chat = Conversation(hf_tok, max_context=10_000, reserve=8, system="S.")
    for i in range(3):
        chat.add(f"question {i}", f"answer {i}")
    two_turns = len(chat.render("next", chat.turns[1:])[1])
    chat.max_context = two_turns + 8  # room for the last two turns only
    prompt = chat.prompt("next")
    assert prompt.dropped == 1 and len(prompt.ids) == two_turns
    assert (
        "question 0" not in prompt.text
        and "question 1" in prompt.text
        and prompt.text.startswith("<|system|>\nS.")
    )
    assert [t.user for t in chat.turns] == ["question 1", "question 2"], (
        "dropped turns are forgotten"
    )
    chat.max_context = 20
    with pytest.raises(ContextOverflow, match="more than the 12 left in the 20-token context"):
        chat.prompt("a message far too long for this tiny context")


@pytest.mark.parametrize(
    "pieces", [["ab", "c<EN", "D>tail"], ["abc<", "E", "ND", ">"], ["abc", "<END>"]]
)
def test_a_stop_string_split_across_tokens_is_never_streamed(pieces):
    shown: list[str] = []
    sink = StopFilter(["<END>"], shown.append)
    for piece in pieces:
        sink.feed(piece)
    sink.feed("", final=True)
    assert "".join(shown) == sink.text == "abc"


def test_without_stops_text_streams_as_it_comes():
    shown: list[str] = []
    sink = StopFilter([], shown.append)
    sink.feed("he")
    assert shown == ["he"]


def test_template_order_flag_then_tokenizer_then_training_data_then_default(tmp_path, hf_tok):
    prefix = tmp_path / "chat_messages_document"
    write_store(prefix, [[5, 6]], vocab_size=260, masks=[[0, 1]], chat_template="TRAINED")
    config = {
        "data": {
            "sources": [
                {"name": "web", "path": str(tmp_path / "missing")},
                {"name": "chat", "path": str(prefix)},
            ]
        }
    }
    hf_tok.chat_template = None
    assert resolve_template(hf_tok, config) == "TRAINED"
    assert resolve_template(hf_tok, {}) == DEFAULT_CHAT_TEMPLATE
    hf_tok.chat_template = "OWN"
    assert resolve_template(hf_tok, config) == "OWN"
    assert resolve_template(hf_tok, config, "FLAG") == "FLAG"


def test_context_defaults_to_training_length_and_must_hold_a_reply(rigged):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(rigged)
    assert context_size(model, 64, None, 16) == 64
    assert context_size(model, None, None, 16) == 512  # the model's positions
    with pytest.raises(UserError, match="exceeds the model's 512 positions"):
        context_size(model, None, 1024, 16)
    with pytest.raises(UserError, match="leaves no room for a prompt"):
        context_size(model, 64, None, 64)


def test_default_reply_budget_shrinks_to_a_short_context(rigged):
    """A model trained at a short seq_len chats with the defaults: the reply budget nobody chose
    becomes half the context; a budget the user chose that cannot fit stays an error."""
    sampling = SamplingConfig(temperature=0, max_new_tokens=256)
    session = open_session(
        rigged, sampling, max_context=64, reply_fits_context=True, device="cpu", quiet=True
    )
    assert (session.sampling.max_new_tokens, session.conversation.reserve) == (32, 32)
    roomy = open_session(
        rigged, sampling, max_context=512, reply_fits_context=True, device="cpu", quiet=True
    )
    assert roomy.sampling.max_new_tokens == 256
    with pytest.raises(UserError, match="--max-new-tokens 256 leaves no room"):
        open_session(rigged, sampling, max_context=64, device="cpu", quiet=True)


def test_session_commands_and_suppressed_meta_ids(rigged, tok_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rigged)
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(rigged).eval()
    sampling = SamplingConfig(temperature=0, max_new_tokens=6)
    session = ChatSession(model, tok, Conversation(tok, 512, 6), sampling, range(260, 320))
    out, err = io.StringIO(), io.StringIO()
    served = run_session(
        session, ["hi", "/oops", "", "/reset", "again", "/exit", "never"], out, err
    )
    assert (served, out.getvalue()) == (2, "ok\nok\n")
    assert "[unknown command /oops" in err.getvalue() and "[history cleared]" in err.getvalue()
    assert [t.user for t in session.conversation.turns] == ["again"]
    session.suppress_ids = ()
    session.respond("hi", out, err)
    assert session.conversation.turns[-1].assistant == "okX", (
        "without suppression the meta id is generated"
    )


# -------------------------------------------------------------------------------------------------
# The real command, scripted through a pipe


def chat_cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    """``synthlm chat`` in a subprocess with ``stdin`` piped in (so stdin is not a terminal)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "synthlm", "chat", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def prompts_in(stderr: str) -> list[str]:
    return [
        block.split("\n", 1)[1].split("\n[end of prompt]")[0]
        for block in stderr.split("[prompt: ")[1:]
    ]


def test_scripted_session_remembers_resets_and_drops_old_turns(rigged, tmp_path):
    script = "hello\nhow are you\nthird one\n/reset\nagain\n"
    hf = to_hf(load_tokenizer(rigged))
    hf.chat_template = DEFAULT_CHAT_TEMPLATE
    probe = Conversation(hf, 10_000, 0, system="Be brief.")
    probe.add("hello", "ok")
    probe.add("how are you", "ok")
    fits_two_turns = len(probe.render("third one", probe.turns[1:])[1]) + 4  # but not all three
    done = chat_cli(
        str(rigged),
        "--system",
        "Be brief.",
        "--temperature",
        "0",
        "--max-new-tokens",
        "4",
        "--max-context",
        str(fits_two_turns),
        "--show-prompt",
        "--device",
        "cpu",
        stdin=script,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ok"] * 4
    prompts = prompts_in(done.stderr)
    assert len(prompts) == 4
    assert prompts[1] == prompts[0] + "ok</s>\n<|user|>\nhow are you</s>\n<|assistant|>\n", (
        "turn 2 sees turn 1"
    )
    assert "[context full: dropped the oldest turn" in done.stderr
    assert (
        prompts[2].startswith("<|system|>\nBe brief.</s>\n<|user|>\nhow are you")
        and "hello" not in prompts[2]
    )
    assert prompts[3] == "<|system|>\nBe brief.</s>\n<|user|>\nagain</s>\n<|assistant|>\n", (
        "/reset forgets everything"
    )


def test_bad_flags_exit_2_before_loading(rigged, tmp_path):
    done = chat_cli(str(rigged), "--chat-template", str(tmp_path / "none.jinja"), stdin="hi\n")
    assert (
        done.returncode == 2 and "--chat-template" in done.stderr and "no such file" in done.stderr
    )
    done = chat_cli(str(tmp_path / "nowhere"), stdin="")
    assert done.returncode == 2 and "checkpoint not found" in done.stderr


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("  \n", "the file is empty"),  # would otherwise fall back to another template silently
        ("{% for m in messages %}{{ m.content }", "not a valid Jinja template"),
        ("{{ messages[0].content.nope.deeper }}", "fails on a user message"),
    ],
)
def test_a_chat_template_that_cannot_render_is_refused(rigged, tmp_path, template, says):
    path = tmp_path / "t.jinja"
    path.write_text(template, encoding="utf-8")
    done = chat_cli(str(rigged), "--chat-template", str(path), stdin="hi\n")
    assert done.returncode == 2, done.stderr
    assert f"--chat-template {path}" in done.stderr and says in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_jsonl_chat_carries_multi_line_messages_and_replies(tok_dir, tmp_path):
    """--jsonl: a message with newlines reaches the prompt whole, a reply with newlines comes
    back as one record, and every message (and /reset) gets exactly one record."""
    import json

    tok = load_tokenizer(tok_dir)
    newline, o, k = (tok.encode(c)[0] for c in "\nok")
    lines = bigram_chat_model(tok, {newline: [o], o: [k], k: [newline]}, tmp_path / "lines")
    script = (
        json.dumps("first line\nsecond line")
        + "\n\n"  # a blank line is no record
        + json.dumps({"role": "user", "content": "again"})
        + "\n"
        + json.dumps("/reset")
        + "\n"
        + json.dumps("x" * 400)  # cannot fit a 100-token context
        + "\n"
    )
    args = ("--jsonl", "--temperature", "0", "-n", "5", "--max-context", "100", "--device", "cpu")
    done = chat_cli(str(lines), *args, "--show-prompt", stdin=script)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r.get("reply") for r in records] == ["ok\nok", "ok\nok", None, None]
    assert records[2] == {"reset": True} and records[3]["error"].startswith("not sent:")
    assert "<|user|>\nfirst line\nsecond line</s>" in prompts_in(done.stderr)[0]
    assert f"[prompt: {records[0]['prompt_tokens']} tokens]" in done.stderr
    assert prompts_in(done.stderr)[1].endswith("ok\nok</s>\n<|user|>\nagain</s>\n<|assistant|>\n")
    bad = chat_cli(str(lines), *args, stdin=json.dumps("hi") + "\n{not json}\n")
    assert bad.returncode == 2 and "stdin line 2: not JSON" in bad.stderr
    assert [json.loads(line)["reply"] for line in bad.stdout.splitlines()] == ["ok\nok"]


# -------------------------------------------------------------------------------------------------
# Replies end at the template's end of turn (not only at EOS)

MARKED = (
    "{% for m in messages %}{{ m.role + ':\n' + m.content + '<END>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:\n' }}{% endif %}"
)
CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def run_on_session(path: Path, template: str, specials: Sequence[str] = ()) -> ChatSession:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if specials:
        tok.add_special_tokens({"additional_special_tokens": list(specials)})
    tok.chat_template = template
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    sampling = SamplingConfig(temperature=0, max_new_tokens=24)
    return ChatSession(model, tok, Conversation(tok, 512, 24), sampling)


def test_a_reply_stops_at_a_text_end_of_turn_and_keeps_nothing_past_it(tok_dir, tmp_path):
    """A model that, as trained on chat stores, writes the template's ``<END>`` after its
    answer and would then run on: the reply is cut there, before the next "turn" it invents,
    and the history holds only the answer."""
    tok = load_tokenizer(tok_dir)
    newline, o, k, lt, e, n, d, gt = (tok.encode(c)[0] for c in "\nok<END>")
    chain = {newline: [o], o: [k], k: [lt], lt: [e], e: [n], n: [d], d: [gt], gt: [newline]}
    session = run_on_session(bigram_chat_model(tok, chain, tmp_path / "m"), MARKED)
    assert session.turn_end == TurnEnd("<END>", None)
    out, err = io.StringIO(), io.StringIO()
    assert run_session(session, ["hi", "again"], out, err) == 2
    assert out.getvalue() == "ok\nok\n"
    assert [t.assistant for t in session.conversation.turns] == ["ok", "ok"]
    assert session.conversation.render("more")[0].count("ok<END>\n") == 2


def test_a_reply_stops_at_a_special_end_of_turn_token(tok_dir, tmp_path):
    """ChatML with ``<|im_end|>`` one special token (Qwen): it stops generation as EOS does
    (streamed text skips special tokens, so without the stop the reply runs on unseen)."""
    tok = load_tokenizer(tok_dir)
    newline, o, k = (tok.encode(c)[0] for c in "\nok")
    im_end = 260  # the first id past the byte tokenizer's: the added special token
    chain = {newline: [o], o: [k], k: [im_end], im_end: [newline]}
    path = bigram_chat_model(tok, chain, tmp_path / "m")
    session = run_on_session(path, CHATML, specials=["<|im_end|>"])
    assert session.tokenizer.convert_tokens_to_ids("<|im_end|>") == im_end
    assert session.turn_end == TurnEnd("<|im_end|>", im_end)
    out, err = io.StringIO(), io.StringIO()
    run_session(session, ["hi"], out, err)
    assert out.getvalue() == "ok\n"


def test_the_default_templates_end_of_turn_is_eos(hf_tok):
    assert TurnEnd.of(hf_tok) == TurnEnd("</s>", hf_tok.eos_token_id)


def test_a_system_prompt_the_template_refuses_is_a_clean_error(rigged, tmp_path):
    """Gemma's template raises "System role not supported": checked before the chat starts,
    exit 2 naming the template's refusal, no traceback."""
    path = tmp_path / "gemma_like.jinja"
    path.write_text(
        "{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}" + DEFAULT_CHAT_TEMPLATE,
        encoding="utf-8",
    )
    done = chat_cli(str(rigged), "--chat-template", str(path), "--system", "Be brief", stdin="hi\n")
    assert done.returncode == 2, done.stderr
    assert "System role not supported" in done.stderr and "--system" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    fine = chat_cli(str(rigged), "--chat-template", str(path), "-n", "3", stdin="hi\n")
    assert fine.returncode == 0, fine.stderr
