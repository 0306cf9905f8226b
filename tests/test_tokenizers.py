"""Tokenizers: one id convention, lossless round trips, and saved dirs that AutoTokenizer encodes identically."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.tokenizers import (
    ByteTokenizer,
    HFTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    load_tokenizer,
    to_hf,
    train_tokenizer,
)

EDGE_CASES = [
    "  leading spaces\n\nand blank lines  ",
    " x",
    "héllo ☃ 𝄞 wörld — ünïcode",
    "a  b   c\t\ttabs\r\nCRLF",
    "",
    "— Ü 😀 emoji and dashes",
    "  double leading space",
]
KINDS = {"bpe": 700, "unigram": 500, "sentencepiece": 700, "byte": None}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shakespeare: Path) -> Path:
    """The first 150 KB of tinyshakespeare, so training stays well under a second."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(shakespeare.read_text(encoding="utf-8")[:150_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus: Path) -> dict[str, Path]:
    """One saved tokenizer per kind, each with 8 extra tokens."""
    root = tmp_path_factory.mktemp("tokenizers")
    for kind, size in KINDS.items():
        train_tokenizer([corpus], kind, size, root / kind, extra_tokens=8, quiet=True)
    return {kind: root / kind for kind in KINDS}


@pytest.fixture(scope="module")
def documents(shakespeare: Path) -> list[str]:
    text = shakespeare.read_text(encoding="utf-8")
    return [d for d in text.split("\n\n") if d]


def auto_tokenizer(path: Path):
    from transformers import AutoTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoTokenizer.from_pretrained(str(path))


# -- the id convention ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_follows_the_id_convention(trained, kind):
    """ids 0..3 are unk, bos, eos, pad; the extra tokens are the last ids; vocab_size counts all."""
    tok = load_tokenizer(trained[kind])
    assert isinstance(tok, Tokenizer)
    assert tok.special_ids() == {"unk": 0, "bos": 1, "eos": 2, "pad": 3}
    expected_size = KINDS[kind] or 4 + 256 + 8
    assert tok.vocab_size == expected_size
    assert tok.extra_ids == list(range(expected_size - 8, expected_size))
    assert [tok.decode([i]) for i in tok.extra_ids[:2]] == ["<extra_id_0>", "<extra_id_1>"]


def test_byte_ids_are_the_utf8_bytes_plus_four():
    tok = ByteTokenizer()
    assert tok.encode("aé") == [ord("a") + 4, 0xC3 + 4, 0xA9 + 4]
    assert tok.vocab_size == 260


# -- lossless round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bpe", "byte", "sentencepiece", "unigram"])
def test_decode_encode_round_trips_all_of_tinyshakespeare(trained, documents, kind):
    tok = load_tokenizer(trained[kind])
    encoded = tok.encode_batch(documents)
    assert [tok.decode(ids) for ids in encoded] == documents
    whole = "\n\n".join(documents)
    assert tok.decode(tok.encode(whole)) == whole


@pytest.mark.parametrize("kind", ["bpe", "byte", "sentencepiece", "unigram"])
def test_round_trip_survives_unseen_characters_and_whitespace(trained, kind):
    tok = load_tokenizer(trained[kind])
    for text in EDGE_CASES:
        assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("kind", list(KINDS))
def test_literal_special_strings_are_text_not_special_ids(trained, kind):
    """A document that mentions "</s>" must not get an end-of-document id in the middle."""
    tok = load_tokenizer(trained[kind])
    ids = tok.encode("before </s> <s> <pad> <extra_id_0> after")
    assert not set(ids) & ({0, 1, 2, 3} | set(tok.extra_ids))
    assert tok.decode(ids) == "before </s> <s> <pad> <extra_id_0> after"


def test_decode_shows_specials_unless_skipped(trained):
    tok = load_tokenizer(trained["bpe"])
    ids = [tok.bos_id, *tok.encode("Hi"), tok.eos_id]
    assert tok.decode(ids) == "<s>Hi</s>"
    assert tok.decode(ids, skip_special=True) == "Hi"


def test_encode_flat_matches_encode_batch(trained, documents):
    for kind in KINDS:
        tok = load_tokenizer(trained[kind])
        flat, sizes = tok.encode_flat(documents[:50])
        batch = tok.encode_batch(documents[:50])
        assert sizes.tolist() == [len(ids) for ids in batch]
        assert flat.tolist() == [i for ids in batch for i in ids]


ASCII_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=120) | st.lists(
    st.sampled_from(
        [
            "'s",
            "'ll",
            "'d",
            "'",
            " ",
            "  ",
            "\n",
            "\n\n",
            "\t",
            "\r\n",
            "\x0b",
            "\x0c",
            "\x1c",
            "\x85",
            "a",
            "Ab",
            "zebra",
            "12",
            " 3",
            "!!",
            " ?",
            "x'y",
            "é",
            "☃",
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(ASCII_TEXT, min_size=1, max_size=6))
def test_piece_cache_gives_exactly_the_tokenizers_ids(trained, texts):
    """The pipeline's fast path (ASCII pieces cached) must never change a single id."""
    tok = load_tokenizer(trained["bpe"])
    assert tok.piece_cache is not None
    flat, sizes = tok.encode_flat(texts)
    reference = tok.encode_batch(texts)
    assert sizes.tolist() == [len(ids) for ids in reference]
    assert flat.tolist() == [i for ids in reference for i in ids]


def test_piece_cache_stays_exact_when_it_restarts(trained, documents, monkeypatch):
    from synthlm.tokenizers import PieceCache

    monkeypatch.setattr(PieceCache, "LIMIT", 50)
    tok = load_tokenizer(trained["bpe"])
    for start in (0, 40, 80):
        batch = documents[start : start + 40]
        flat, _ = tok.encode_flat(batch)
        assert flat.tolist() == [i for ids in tok.encode_batch(batch) for i in ids]
        assert set(tok.piece_cache.ids) == set(
            PieceCache.split(batch)
        )  # restarted: only this batch's pieces


def test_piece_cache_applies_only_to_plain_byte_level_bpe(trained):
    assert load_tokenizer(trained["bpe"]).piece_cache is not None
    assert load_tokenizer(trained["unigram"]).piece_cache is None
    assert load_tokenizer(trained["sentencepiece"] / "tokenizer.json").piece_cache is None


# -- saved dirs load in transformers ----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_saved_dir_loads_with_autotokenizer_and_encodes_identically(trained, documents, kind):
    tok = load_tokenizer(trained[kind])
    auto = auto_tokenizer(trained[kind])
    assert len(auto) == tok.vocab_size
    assert (auto.unk_token_id, auto.bos_token_id, auto.eos_token_id, auto.pad_token_id) == (
        0,
        1,
        2,
        3,
    )
    texts = documents[:300] + EDGE_CASES
    assert [auto(t, add_special_tokens=True)["input_ids"] for t in texts] == tok.encode_batch(texts)
    assert [auto.decode(ids) for ids in tok.encode_batch(texts[:20])] == [
        tok.decode(ids) for ids in tok.encode_batch(texts[:20])
    ]


def test_autotokenizer_agrees_on_literal_specials_when_told_to_split_them(trained):
    tok = load_tokenizer(trained["bpe"])
    auto = auto_tokenizer(trained["bpe"])
    text = "a </s> b"
    assert auto(text, split_special_tokens=True)["input_ids"] == tok.encode(text)


def test_save_into_a_checkpoint_dir_keeps_its_other_files(trained, tmp_path):
    """Checkpoints carry the tokenizer next to config.json and the weights."""
    checkpoint = tmp_path / "step-10"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    load_tokenizer(trained["sentencepiece"]).save(checkpoint)
    assert (checkpoint / "config.json").read_text() == "{}"
    with pytest.raises(UserError, match=r"already holds a tokenizer \(tokenizer.json\)"):
        load_tokenizer(trained["bpe"]).save(checkpoint)
    load_tokenizer(trained["bpe"]).save(checkpoint, overwrite=True)
    assert not (checkpoint / "tokenizer.model").exists()  # nothing of the old tokenizer is left
    assert load_tokenizer(checkpoint).kind == "bpe"
    assert auto_tokenizer(checkpoint)("To be")["input_ids"] == load_tokenizer(
        trained["bpe"]
    ).encode("To be")
    assert not list(checkpoint.glob("*.tmp-*"))


def test_to_hf_returns_a_transformers_tokenizer(trained):
    tok = load_tokenizer(trained["byte"])
    hf = to_hf(tok)
    assert hf("hé")["input_ids"] == tok.encode("hé")
    assert hf.eos_token == "</s>"


# -- loading every format ---------------------------------------------------------------------------


def test_loads_tokenizer_json_file_gpt2_files_and_a_plain_hf_dir(trained, tmp_path, documents):
    reference = load_tokenizer(trained["bpe"])
    text = documents[3]
    from_json = load_tokenizer(trained["bpe"] / "tokenizer.json")
    assert from_json.encode(text) == reference.encode(text)
    assert (
        from_json.special_ids() == reference.special_ids()
    )  # from tokenizer_config.json beside it

    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    reference.hf_backend().model.save(str(gpt2))  # writes vocab.json + merges.txt
    from_files = load_tokenizer(gpt2)
    assert from_files.encode(text) == reference.encode(text)
    assert load_tokenizer(gpt2 / "vocab.json").encode(text) == reference.encode(text)

    plain = tmp_path / "plain"
    auto_tokenizer(trained["bpe"]).save_pretrained(
        str(plain)
    )  # transformers' own layout, no synthlm file
    from_plain = load_tokenizer(plain)
    assert from_plain.encode(text) == reference.encode(text)
    assert from_plain.special_ids() == reference.special_ids()


def test_gpt2_files_use_endoftext_as_eos(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    tok = load_tokenizer(tmp_path)
    assert tok.encode("ab") == [2]
    assert (tok.eos_id, tok.bos_id) == (3, 3)


def test_loads_a_sentencepiece_model_file(trained, documents):
    tok = load_tokenizer(trained["sentencepiece"] / "tokenizer.model")
    assert isinstance(tok, SentencePieceTokenizer)
    assert tok.decode(tok.encode(documents[5])) == documents[5]


def test_byte_needs_no_files():
    tok = load_tokenizer("byte")
    assert tok.describe()["path"] == "byte"
    assert tok.decode(tok.encode("ok ☃")) == "ok ☃"


def test_unknown_specs_are_user_errors(tmp_path):
    # a mistyped local path fails at once, never tried as a hub name
    with pytest.raises(UserError, match="missing-dir: no such file or directory"):
        load_tokenizer(tmp_path / "missing-dir")
    bad = tmp_path / "tok.txt"
    bad.write_text("x")
    with pytest.raises(UserError, match="not a tokenizer file"):
        load_tokenizer(bad)
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{}")
    with pytest.raises(UserError, match="not a Hugging Face tokenizer.json"):
        load_tokenizer(broken)


# -- adding tokens ----------------------------------------------------------------------------------


def test_add_pad_to_a_sentencepiece_model_without_one(tmp_path, corpus):
    """Llama 2's tokenizer has pad_id -1; --add-pad appends <pad> as the last id, no hand edit."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=400, pad_id=-1, minloglevel=2
    )
    (tmp_path / "llama.model").write_bytes(model.getvalue())
    result = run_cli(
        "tokenizer",
        "convert",
        str(tmp_path / "llama.model"),
        "--add-pad",
        "--out",
        str(tmp_path / "padded"),
    )
    assert result.returncode == 0, result.stderr
    tok = load_tokenizer(tmp_path / "padded")
    assert tok.pad_id == 400 and tok.vocab_size == 401
    assert tok.encode(lines[0]) == load_tokenizer(tmp_path / "llama.model").encode(lines[0])
    auto = auto_tokenizer(tmp_path / "padded")
    assert auto.pad_token_id == 400
    assert auto(lines[0])["input_ids"] == tok.encode(lines[0])


@pytest.mark.parametrize("kind", list(KINDS))
def test_extend_continues_extra_token_numbering(trained, kind):
    tok = load_tokenizer(trained[kind])
    bigger = tok.extend(extra_tokens=3)
    assert bigger.vocab_size == tok.vocab_size + 3
    assert bigger.extra_ids[:8] == tok.extra_ids
    assert bigger.decode([bigger.extra_ids[-1]]) == "<extra_id_10>"


def test_extend_adds_pad_to_a_hf_tokenizer_without_one(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "<|endoftext|>": 2}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tok = load_tokenizer(tmp_path)
    assert tok.pad_id is None
    padded = tok.extend(pad=True, extra_tokens=1)
    assert (padded.pad_id, padded.extra_ids, padded.vocab_size) == (3, [4], 5)
    assert padded.decode([padded.pad_id]) == "<pad>"
    assert isinstance(padded, HFTokenizer)


# -- provenance, pickling, errors -------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_describe_is_stable_and_pickling_keeps_behaviour(trained, kind, documents):
    """Workers receive tokenizers by pickle; shards compare describe() before merging."""
    tok = load_tokenizer(trained[kind])
    again = load_tokenizer(trained[kind])
    assert tok.describe() == again.describe()
    assert tok.describe()["path"] == str(trained[kind].resolve())
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode_batch(documents[:20]) == tok.encode_batch(documents[:20])
    assert clone.encode("x </s>") == tok.encode("x </s>")


def test_training_rejects_bad_requests(tmp_path, corpus):
    with pytest.raises(UserError, match="choose one of bpe, byte, sentencepiece, unigram"):
        train_tokenizer([corpus], "wordpiece", 500, tmp_path / "a")
    with pytest.raises(UserError, match="too small"):
        train_tokenizer([corpus], "bpe", 200, tmp_path / "b")
    with pytest.raises(UserError, match="exactly 270 ids"):
        train_tokenizer([], "byte", 300, tmp_path / "c", extra_tokens=10)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "tokenizer.json").write_text("{}")
    with pytest.raises(UserError, match="already holds a tokenizer"):
        train_tokenizer([corpus], "bpe", 500, tmp_path / "full")
    with pytest.raises(UserError, match="distinct non-empty"):
        train_tokenizer([corpus], "bpe", 500, tmp_path / "e", special_tokens={"eos": "<s>"})
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(UserError, match="no documents"):
        train_tokenizer([empty], "bpe", 500, tmp_path / "d", txt_mode="line")


def test_training_reads_jsonl_keys(tmp_path):
    lines = [json.dumps({"body": f"zebra quagga {i} zebra"}) for i in range(200)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    tok = train_tokenizer(
        [tmp_path / "d.jsonl"], "bpe", 300, tmp_path / "tok", keys=["body"], quiet=True
    )
    assert len(tok.encode("zebra quagga")) < len("zebra quagga")  # merges were learned from the key


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, shakespeare: Path) -> Path:
    """20 KB of tinyshakespeare: far too little text for a 32,000-id vocabulary."""
    path = tmp_path_factory.mktemp("small") / "small.txt"
    path.write_text(shakespeare.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    return path


def shortfall_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: asked for")]


@pytest.mark.parametrize(
    ("kind", "sp_model_type"),
    [("bpe", None), ("unigram", None), ("sentencepiece", "bpe"), ("sentencepiece", "unigram")],
)
def test_a_vocabulary_short_of_the_request_is_warned_and_recorded(
    tmp_path, small_corpus, capsys, kind, sp_model_type
):
    tok = train_tokenizer(
        [small_corpus],
        kind,
        32_000,
        tmp_path / "tok",
        extra_tokens=3,
        sp_model_type=sp_model_type,
        quiet=True,
    )
    assert tok.vocab_size < 32_000
    [line] = shortfall_lines(capsys.readouterr().err)
    assert f"asked for 32,000 ids, the corpus gave {tok.vocab_size:,}: {kind}" in line
    meta = json.loads((tmp_path / "tok" / "synthlm_tokenizer.json").read_text())
    assert (meta["requested_vocab_size"], meta["vocab_size"]) == (32_000, tok.vocab_size)


def test_a_vocabulary_of_the_requested_size_is_not_warned(tmp_path, small_corpus, capsys):
    train_tokenizer([small_corpus], "bpe", 400, tmp_path / "bpe", quiet=True)
    train_tokenizer([], "byte", None, tmp_path / "byte", extra_tokens=2, quiet=True)
    assert "warning" not in capsys.readouterr().err


def test_cli_sentencepiece_warns_in_one_line_without_its_own_log(tmp_path, small_corpus):
    """Not --quiet, yet sentencepiece's hundreds of log lines stay out of stderr."""
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(small_corpus),
        "--kind",
        "sentencepiece",
        "--vocab-size",
        "32000",
        "--out",
        str(tmp_path / "sp"),
    )
    assert result.returncode == 0, result.stderr
    actual = json.loads((tmp_path / "sp" / "synthlm_tokenizer.json").read_text())["vocab_size"]
    assert actual < 32_000 and f"{actual} ids" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: asked for 32,000 ids, the corpus gave {actual:,}: ")


def test_verbose_training_lets_sentencepiece_log(tmp_path, small_corpus, capfd):
    train_tokenizer([small_corpus], "sentencepiece", 600, tmp_path / "q")
    assert "trainer_interface" not in capfd.readouterr().err
    train_tokenizer([small_corpus], "sentencepiece", 600, tmp_path / "v", verbose=True)
    assert "trainer_interface" in capfd.readouterr().err


def test_cli_verbose_flag_reaches_sentencepiece(tmp_path, small_corpus):
    args = ["--input", str(small_corpus), "--kind", "sentencepiece", "--vocab-size", "600"]
    result = run_cli("tokenizer", "train", *args, "--out", str(tmp_path / "v"), "--verbose")
    assert result.returncode == 0 and "trainer_interface" in result.stderr


def test_cli_unigram_too_small_for_the_corpus_characters_is_a_clear_error(tmp_path):
    """The tokenizers library raises a bare Exception when distinct characters outnumber the
    pieces; a user gets one error line naming --vocab-size and the way out."""
    text = tmp_path / "han.txt"
    text.write_text("".join(chr(c) for c in range(0x4E00, 0x4E00 + 800)) * 2 + "\n")
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(text),
        "--kind",
        "unigram",
        "--vocab-size",
        "600",
        "--out",
        str(tmp_path / "u"),
        "-q",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: --vocab-size 600: the unigram trainer keeps every")
    assert "Traceback" not in result.stderr and not (tmp_path / "u" / "tokenizer.json").exists()


def test_cli_train_takes_many_inputs_after_one_flag_and_info_reports(tmp_path, corpus):
    second = tmp_path / "more.txt"
    second.write_text("More text for the tokenizer.\n" * 50)
    out = tmp_path / "tok"
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(corpus),
        str(second),
        "--kind",
        "bpe",
        "--vocab-size",
        "600",
        "--extra-tokens",
        "4",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    meta = json.loads((out / "synthlm_tokenizer.json").read_text())
    assert len(meta["trained_on"]) == 2
    info = run_cli("tokenizer", "info", str(out), "--encode", "To be ☃")
    report = json.loads(info.stdout)
    assert report["vocab_size"] == 600 and report["extra_id_range"] == [596, 599]
    assert report["encoded"]["lossless"] is True


def test_cli_bad_kind_exits_2_with_one_line(tmp_path, corpus):
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(corpus),
        "--kind",
        "nope",
        "--vocab-size",
        "500",
        "--out",
        str(tmp_path / "t"),
    )
    assert result.returncode == 2
    assert "error: --kind 'nope': choose one of" in result.stderr
    assert not (tmp_path / "t").exists()


def test_sentencepiece_unigram_model_round_trips_unseen_characters(tmp_path, corpus):
    """--kind sentencepiece --sp-model-type unigram also falls back to bytes (here and in AutoTokenizer)."""
    tok = train_tokenizer(
        [corpus], "sentencepiece", 600, tmp_path / "spu", sp_model_type="unigram", quiet=True
    )
    hf = auto_tokenizer(tmp_path / "spu")
    for text in EDGE_CASES:
        ids = tok.encode(text)
        assert tok.unk_id not in ids and tok.decode(ids) == text
        assert hf.decode(hf(text)["input_ids"]) == text


@pytest.mark.parametrize("kind", list(KINDS))
def test_autotokenizer_returns_only_what_llama_and_t5_forward_accept(trained, kind):
    """No token_type_ids: model.generate(**tokenizer(text, return_tensors="pt")) must not raise.

    transformers 5 leaves them out anyway; 4.x adds them unless tokenizer_config.json says not.
    """
    assert set(auto_tokenizer(trained[kind])("Hello there")) == {"input_ids", "attention_mask"}
    config = json.loads((trained[kind] / "tokenizer_config.json").read_text())
    assert config["model_input_names"] == ["input_ids", "attention_mask"]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_cli_output_redirected_is_only_the_summary(tmp_path, small_corpus, kind):
    """The tokenizers library's progress bars are for terminals: piped, they left blank lines in
    the stdout scripts read."""
    args = ["--input", str(small_corpus), "--kind", kind, "--vocab-size", "400"]
    result = run_cli("tokenizer", "train", *args, "--out", str(tmp_path / kind))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        line for line in result.stdout.splitlines() if line.startswith("wrote ")
    ]


def test_a_training_stopped_while_saving_leaves_no_tokenizer(tmp_path, monkeypatch):
    """The files are written into a staging dir that becomes ``out`` in one rename: stopped
    after tokenizer.json, a run used to leave a dir that loaded as another, incomplete
    tokenizer and made the rerun ask for --overwrite."""
    from synthlm.tokenizers import base

    real, written = base.atomic_write_text, []

    def stop_after_first(path, text):
        if written:
            raise KeyboardInterrupt
        written.append(path)
        return real(path, text)

    monkeypatch.setattr(base, "atomic_write_text", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)
    assert written and not (tmp_path / "tok").exists()
    assert [p.name for p in tmp_path.iterdir()] == []
    monkeypatch.setattr(base, "atomic_write_text", real)
    train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)  # no --overwrite needed
    assert load_tokenizer(tmp_path / "tok").kind == "byte"


def test_a_bare_gpt_neox_style_tokenizer_json_gets_neoxs_roles(tmp_path):
    """GPT-NeoX's <|endoftext|> is its bos and its eos and <|padding|> its pad: a bare
    tokenizer.json holding them used to get eos only (so --prepend-bos was refused) where the
    same vocabulary as vocab.json + merges.txt got bos too."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<|endoftext|>": 0, "<|padding|>": 1, **{c: i + 2 for i, c in enumerate("abc ")}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.save(str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(tmp_path / "tokenizer.json")
    assert tok.special_ids() == {"bos": 0, "eos": 0, "pad": 1}
