"""``synthlm tokenize --chat``: conversations become one store whose mask is 1 exactly on the
assistant's answers, with the plain pipeline's guarantees (bytes independent of --workers and of
the input format, bad records reported with file:line, nothing written on failure)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.data import readers
from synthlm.data.store import TokenStore, store_exists
from synthlm.data.tokenization import tokenize
from synthlm.errors import UserError
from synthlm.text.chat_format import DEFAULT_CHAT_TEMPLATE
from synthlm.tokenizers import load_tokenizer, train_tokenizer

CUSTOM_TEMPLATE = (
    "{% for m in messages %}{{ '### ' + m['role'] + ':\\n' + m['content'] + eos_token + "
    "'\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}"
)


def conversation(i: int) -> list[dict[str, str]]:
    messages = [
        {"role": "user", "content": f"What is {i} plus one?"},
        {"role": "assistant", "content": f"It is {i + 1}."},
    ]
    if i % 3 == 0:
        messages = [{"role": "system", "content": "Answer in numbers."}, *messages]
    if i % 2:
        messages += [
            {"role": "user", "content": "And twice that?"},
            {"role": "assistant", "content": f"{2 * (i + 1)}, ünïcode."},
        ]
    return messages


def answers(messages: list[dict[str, str]], eos: str = "</s>") -> str:
    return "".join(m["content"] + eos + "\n" for m in messages if m["role"] == "assistant")


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "byte"
    train_tokenizer([], "byte", None, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def chats(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chats") / "chat.jsonl"
    return write_jsonl(path, [{"messages": conversation(i), "id": i} for i in range(300)])


def masked_text(prefix: Path, tok, i: int) -> tuple[str, str]:
    """(whole document, only its mask-1 tokens), decoded."""
    store = TokenStore(prefix)
    ids, mask = store.document(i).tolist(), store.mask(i).tolist()
    return tok.decode(ids), tok.decode([t for t, m in zip(ids, mask) if m])


def test_mask_marks_exactly_the_assistant_answers_and_conversations_end_with_eos(
    tmp_path, tok_dir, chats
):
    stats = tokenize([chats], tok_dir, tmp_path / "sft", chat=True, workers=1, quiet=True)
    prefix = Path(stats["outputs"]["messages"])
    assert prefix.name == "sft_messages_document" and stats["documents"]["messages"] == 300
    tok = load_tokenizer(tok_dir)
    store = TokenStore(prefix)
    for i in (0, 1, 2, 3, 299):
        text, trained = masked_text(prefix, tok, i)
        assert trained == answers(conversation(i)), "only answers and their end-of-turn carry loss"
        assert text.startswith(
            "<|system|>\nAnswer in numbers." if i % 3 == 0 else "<|user|>\nWhat is"
        )
        assert store.document(i)[-1] == tok.eos_id and store.mask(i)[-1] == 0, (
            "the separator EOS is never a target"
        )
    meta = store.metadata
    assert meta["chat"] and meta["append_eod"] and meta["chat_template"] == DEFAULT_CHAT_TEMPLATE
    assert meta["num_bytes"] > 0 and meta["tokenizer"]["kind"] == "byte"


def test_bytes_do_not_depend_on_worker_count(tmp_path, tok_dir, chats, monkeypatch):
    monkeypatch.setattr(
        readers, "CHUNK_RECORDS", 37
    )  # many chunks, so ordering across workers is exercised
    for workers in (1, 2):
        tokenize([chats], tok_dir, tmp_path / f"w{workers}", chat=True, workers=workers, quiet=True)
    for suffix in (".bin", ".idx", ".mask.bin", ".mask.idx"):
        one = (tmp_path / f"w1_messages_document{suffix}").read_bytes()
        assert one == (tmp_path / f"w2_messages_document{suffix}").read_bytes(), suffix


def test_every_input_format_gives_the_same_store(tmp_path, tok_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"messages": conversation(i)} for i in range(7)]
    write_jsonl(tmp_path / "c.jsonl", records)
    (tmp_path / "c.json").write_text(json.dumps(records), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "c.parquet")
    with open(
        tmp_path / "c.csv", "w", encoding="utf-8", newline=""
    ) as handle:  # a column of JSON text
        csv.writer(handle).writerows(
            [["messages"], *([json.dumps(r["messages"])] for r in records)]
        )
    stores = []
    for name in ("c.jsonl", "c.json", "c.parquet", "c.csv"):
        out = tmp_path / name.replace(".", "_")
        tokenize([tmp_path / name], tok_dir, out, chat=True, workers=1, quiet=True)
        prefix = Path(f"{out}_messages_document")
        stores.append(
            tuple(Path(f"{prefix}{s}").read_bytes() for s in (".bin", ".idx", ".mask.bin"))
        )
    assert all(s == stores[0] for s in stores[1:])


BAD = [
    "{not json",
    {"text": "no messages here"},
    {"messages": []},
    {"messages": [{"role": "robot", "content": "beep"}, {"role": "assistant", "content": "x"}]},
    {"messages": [{"role": "user", "content": "only a question"}]},
    {"messages": '[{"role": "user"}'},
]


def test_bad_records_are_skipped_and_named_by_file_and_line(tmp_path, tok_dir):
    good = [{"messages": conversation(i)} for i in range(2)]
    path = write_jsonl(tmp_path / "mixed.jsonl", [good[0], *BAD, good[1]])
    stats = tokenize([path], tok_dir, tmp_path / "out", chat=True, workers=1, quiet=True)
    assert stats["documents"]["messages"] == 2 and stats["bad_records"] == len(BAD)
    lines = [example.split(": ", 1)[0] for example in stats["bad_examples"]]
    assert lines == [f"{path}:{n}" for n in range(2, 2 + len(BAD))]
    reasons = " | ".join(stats["bad_examples"])
    for reason in (
        "invalid JSON",
        "missing key 'messages'",
        "non-empty list",
        "messages[0] must have role",
        "no assistant message",
        "not a JSON list",
    ):
        assert reason in reasons


def test_on_error_fail_exits_2_naming_the_line_and_writes_nothing(tmp_path, tok_dir):
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"messages": conversation(0)}, {"messages": []}])
    done = run_cli(
        "tokenize",
        str(path),
        "--chat",
        "-t",
        str(tok_dir),
        "-o",
        str(tmp_path / "out"),
        "--on-error",
        "fail",
        "-q",
    )
    assert done.returncode == 2
    assert f"{path}:2: 'messages' must be a non-empty list" in done.stderr
    assert not store_exists(tmp_path / "out_messages_document") and not list(tmp_path.glob("out*"))


def test_the_tokenizer_dirs_own_template_is_used_and_recorded(tmp_path, tok_dir, chats):
    import shutil

    own = tmp_path / "tok"
    shutil.copytree(tok_dir, own)
    (own / "chat_template.jinja").write_text(CUSTOM_TEMPLATE, encoding="utf-8")
    done = run_cli(
        "tokenize",
        str(chats),
        "--chat",
        "-t",
        str(own),
        "-o",
        str(tmp_path / "sft"),
        "--max-docs",
        "4",
        "-w",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "sft_messages_document: 4 documents" in done.stdout
    prefix = tmp_path / "sft_messages_document"
    text, trained = masked_text(prefix, load_tokenizer(own), 1)
    assert text.startswith("### user:\nWhat is 1 plus one?</s>\n### assistant:\nIt is 2.</s>")
    assert trained == answers(conversation(1))
    assert TokenStore(prefix).metadata["chat_template"] == CUSTOM_TEMPLATE


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"keys": ["messages", "other"]}, "one field"),
        ({"prepend_bos": True}, "--prepend-bos"),
    ],
)
def test_bad_chat_options_fail_before_any_work(tmp_path, tok_dir, chats, options, match):
    with pytest.raises(UserError, match=match):
        tokenize([chats], tok_dir, tmp_path / "out", chat=True, quiet=True, **options)
    assert not list(tmp_path.iterdir())


def test_text_files_are_refused_in_chat_mode(tmp_path, tok_dir):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(UserError, match=r"notes\.txt: --chat needs records"):
        tokenize([tmp_path / "notes.txt"], tok_dir, tmp_path / "out", chat=True, quiet=True)


def test_plain_mode_is_unchanged_by_default_keys(tmp_path, tok_dir):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "hello"}, {"text": "world"}])
    stats = tokenize([path], tok_dir, tmp_path / "plain", workers=1, quiet=True)
    store = TokenStore(stats["outputs"]["text"])
    assert (
        len(store) == 2
        and not store.has_mask
        and np.array_equal(store.document(0), load_tokenizer(tok_dir).encode("hello"))
    )


# Phi-3's template: a finished conversation ends with EOS, so no rendered prefix of a
# conversation is a prefix of the next (every record was refused as "not prefix-stable")
PHI3_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + "
    "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + "
    "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def tokenizer_with_template(tok_dir: Path, where: Path, template: str) -> Path:
    import shutil

    shutil.copytree(tok_dir, where)
    (where / "chat_template.jinja").write_text(template, encoding="utf-8")
    return where


def test_a_template_that_is_not_prefix_stable_tokenizes_every_record(tmp_path, tok_dir, chats):
    own = tokenizer_with_template(tok_dir, tmp_path / "tok", PHI3_TEMPLATE)
    stats = tokenize([chats], own, tmp_path / "sft", chat=True, workers=1, quiet=True, max_docs=6)
    assert (stats["documents"]["messages"], stats["bad_records"]) == (6, 0)
    text, trained = masked_text(tmp_path / "sft_messages_document", load_tokenizer(own), 1)
    assert text.endswith("<|end|>\n</s>"), "the template's EOS ends it: no second one"
    replies = [m["content"] for m in conversation(1) if m["role"] == "assistant"]
    assert trained == replies[0] + "<|end|>\n" + replies[1] + "<|end|>\n</s>"


def test_a_record_the_mask_cannot_cover_says_why_and_what_to_do(tmp_path, tok_dir, chats):
    upper = "{% for m in messages %}{{ m.role + ': ' + m.content.upper() + eos_token }}{% endfor %}"
    own = tokenizer_with_template(tok_dir, tmp_path / "tok", upper)
    with pytest.raises(UserError) as refused:
        tokenize([chats], own, tmp_path / "sft", chat=True, workers=1, quiet=True, max_docs=2)
    assert f"{chats}:1: the chat template does not write assistant message 3's text" in str(
        refused.value
    )
    assert "chat_template.jinja in the tokenizer dir" in str(refused.value)
