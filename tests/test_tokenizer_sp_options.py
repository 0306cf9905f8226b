"""``synthlm tokenizer train --kind sentencepiece --sp-defaults library --sp-option KEY=VALUE``.

The side-by-side test trains one model with the sentencepiece library exactly as Rocket
(DRAGNLabs/Rocket, slurm/train_tokenizer.sh) calls it and one through synthlm's CLI with the
matching options, and holds them to the same pieces, scores, settings and ids. The error tests
hold every refusal to exit status 2 and one line naming the option, before any input is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.tokenizers import load_tokenizer, train_tokenizer
from synthlm.tokenizers.sp_options import llama_recipe

VOCAB = 400
# slurm/train_tokenizer.sh (newest commit) hands these to spm.SentencePieceTrainer.train; the
# rest is the library's default (unigram, nmt_nfkc, whitespace cleanup, no byte fallback)
ROCKET_ARGS = (
    "--input={input} --input_format=text --input_sentence_size=1000000 "
    "--train_extremely_large_corpus=false --model_prefix={prefix} --vocab_size={vocab} "
    "--shuffle_input_sentence=true --pad_id=3 --minloglevel=2"
)
ROCKET_AS_SP_OPTIONS = [
    "input_sentence_size=1000000",
    "train_extremely_large_corpus=false",
    "shuffle_input_sentence=true",
    "pad_id=3",
]
TEXTS = [
    "To be, or not to be: that is the question.",
    "  Whether 'tis nobler   in the mind to suffer 1604 slings\tand arrows",
    "ﬁne Ünïcødé ☃: characters unseen in training (汉字) become unk",
    "KING RICHARD III:\nNow is the winter of our discontent",
]


def model_proto(path: Path):
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def settings(spec, *, skip: tuple[str, ...] = ()) -> dict:
    """Every field's value (set or default), so an unset field equals the same value set."""
    return {f.name: getattr(spec, f.name) for f in spec.DESCRIPTOR.fields if f.name not in skip}


@pytest.fixture(scope="module")
def train_txt(tmp_path_factory, shakespeare: Path) -> Path:
    path = tmp_path_factory.mktemp("sp_options") / "train.txt"
    lines = shakespeare.read_text(encoding="utf-8").splitlines()[:3000]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rocket_model(train_txt: Path) -> Path:
    """Rocket's model, trained by the library from its own argument string (3000 lines, fewer
    than input_sentence_size: all are used, nothing is sampled)."""
    import sentencepiece as spm

    prefix = train_txt.parent / "rocket"
    spm.SentencePieceTrainer.train(ROCKET_ARGS.format(input=train_txt, prefix=prefix, vocab=VOCAB))
    return prefix.with_suffix(".model")


def test_rockets_tokenizer_side_by_side(tmp_path, train_txt, rocket_model):
    import sentencepiece as spm

    options = [word for option in ROCKET_AS_SP_OPTIONS for word in ("--sp-option", option)]
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(train_txt),
        "--kind",
        "sentencepiece",
        "--sp-defaults",
        "library",
        "--vocab-size",
        str(VOCAB),
        *options,
        "--out",
        str(tmp_path / "tok"),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    theirs, ours = model_proto(rocket_model), model_proto(tmp_path / "tok" / "tokenizer.model")
    assert [(p.piece, p.score, p.type) for p in ours.pieces] == [
        (p.piece, p.score, p.type) for p in theirs.pieces
    ]
    where = ("input", "input_format", "model_prefix")  # synthlm feeds the text itself
    assert settings(ours.trainer_spec, skip=where) == settings(theirs.trainer_spec, skip=where)
    assert settings(ours.normalizer_spec) == settings(theirs.normalizer_spec)
    assert theirs.normalizer_spec.name == "nmt_nfkc" and not theirs.trainer_spec.byte_fallback

    expected = spm.SentencePieceProcessor(model_file=str(rocket_model)).encode(TEXTS)
    assert 0 in [i for ids in expected for i in ids], "unseen characters are <unk> here"
    assert [load_tokenizer(tmp_path / "tok").encode(text) for text in TEXTS] == expected
    saved = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))  # AutoTokenizer's
    assert [saved.encode(text, add_special_tokens=False).ids for text in TEXTS] == expected
    meta = json.loads((tmp_path / "tok" / "synthlm_tokenizer.json").read_text())["options"]
    assert (meta["sp_defaults"], meta["sp_model_type"]) == ("library", "unigram")
    assert meta["sp_options"] == {
        "input_sentence_size": 1_000_000,
        "train_extremely_large_corpus": False,
        "shuffle_input_sentence": True,
        "pad_id": 3,
    }
    assert meta["sentencepiece_args"] == {
        **meta["sp_options"],
        "vocab_size": VOCAB,
        **{"unk_id": 0, "bos_id": 1, "eos_id": 2},
        **{"unk_piece": "<unk>", "bos_piece": "<s>", "eos_piece": "</s>", "pad_piece": "<pad>"},
    }


def test_library_defaults_read_the_same_sentences_as_the_library(tmp_path, shakespeare):
    """With input_sentence_size below the line count and shuffle_input_sentence=false the
    library trains on the first sentences it counts, whitespace-only lines included (not empty
    ones): synthlm must feed it the same lines. (With shuffling, synthlm draws the sample itself:
    tests/test_tokenizer_sampling.py.)"""
    import sentencepiece as spm

    lines = shakespeare.read_text(encoding="utf-8").splitlines()[:6000]
    lines[10] = lines[500] = "   "
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    args = {
        "vocab_size": VOCAB,
        "pad_id": 3,
        "input_sentence_size": 1000,
        "shuffle_input_sentence": False,
    }
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "lib"), minloglevel=2, **args
    )
    options = [f"{key}={str(value).lower()}" for key, value in args.items()]
    train_tokenizer(
        [corpus],
        "sentencepiece",
        VOCAB,
        tmp_path / "tok",
        sp_defaults="library",
        sp_options=options,
        quiet=True,
    )
    theirs, ours = (
        model_proto(tmp_path / "lib.model"),
        model_proto(tmp_path / "tok" / "tokenizer.model"),
    )
    assert [(p.piece, p.score) for p in ours.pieces] == [(p.piece, p.score) for p in theirs.pieces]
    # the first 1000 lines differ from the whole file's: the option reached the library
    whole = tmp_path / "whole"
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(whole), minloglevel=2, vocab_size=VOCAB, pad_id=3
    )
    assert [p.piece for p in model_proto(whole.with_suffix(".model")).pieces] != [
        p.piece for p in ours.pieces
    ]


def test_an_option_overrides_only_its_key_of_synthlms_recipe(tmp_path, train_txt):
    tok = train_tokenizer(
        [train_txt],
        "sentencepiece",
        VOCAB,
        tmp_path / "tok",
        sp_options=["normalization_rule_name=nmt_nfkc", "byte_fallback=false", "num_threads=1"],
        quiet=True,
    )
    proto = model_proto(tmp_path / "tok" / "tokenizer.model")
    assert proto.normalizer_spec.name == "nmt_nfkc" and not proto.trainer_spec.byte_fallback
    assert (
        proto.trainer_spec.split_digits and proto.trainer_spec.model_type == proto.trainer_spec.BPE
    )
    assert proto.trainer_spec.num_threads == 1
    assert tok.special_ids() == {"unk": 0, "bos": 1, "eos": 2, "pad": 3}
    args = json.loads((tmp_path / "tok" / "synthlm_tokenizer.json").read_text())["options"][
        "sentencepiece_args"
    ]
    recipe = llama_recipe()
    changed = {"normalization_rule_name": "nmt_nfkc", "byte_fallback": False, "num_threads": 1}
    assert {k: args[k] for k in recipe} == {**recipe, **changed}


def test_the_default_recipe_is_unchanged(tmp_path, train_txt):
    train_tokenizer([train_txt], "sentencepiece", VOCAB, tmp_path / "tok", quiet=True)
    proto = model_proto(tmp_path / "tok" / "tokenizer.model")
    spec = proto.trainer_spec
    assert (spec.byte_fallback, spec.split_digits, spec.hard_vocab_limit) == (True, True, False)
    assert proto.normalizer_spec.name == "identity" and spec.model_type == spec.BPE
    meta = json.loads((tmp_path / "tok" / "synthlm_tokenizer.json").read_text())["options"]
    assert (meta["sp_defaults"], meta["sp_options"]) == ("synthlm", {})


def cli_error(tmp_path: Path, *args: str) -> str:
    """The one stderr line of a refused run; the missing --input proves nothing was read."""
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(tmp_path / "not-read.txt"),
        "--kind",
        "sentencepiece",
        "--vocab-size",
        str(VOCAB),
        "--out",
        str(tmp_path / "tok"),
        *args,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and not (tmp_path / "tok").exists()
    return line


def test_cli_unknown_key_names_it_and_the_nearest_keys(tmp_path):
    line = cli_error(tmp_path, "--sp-option", "bytefallback=false")
    assert "--sp-option bytefallback=false: sentencepiece has no trainer option" in line
    assert "did you mean byte_fallback?" in line


def test_cli_unknown_key_names_each_nearest_key_once(tmp_path):
    """pad_id is both a library field and a key synthlm owns: suggested once, not twice."""
    line = cli_error(tmp_path, "--sp-option", "pad_idd=3")
    assert "did you mean pad_id or pad_piece?" in line


def test_cli_bad_value_names_the_type(tmp_path):
    line = cli_error(tmp_path, "--sp-option", "byte_fallback=maybe")
    assert line == "error: --sp-option byte_fallback=maybe: byte_fallback takes true or false"


def test_cli_refused_key_says_why(tmp_path):
    line = cli_error(tmp_path, "--sp-option", "pad_id=0")
    assert "--sp-option pad_id=0: synthlm's id convention is <unk> <s> </s> <pad> = 0 1 2 3" in line
    assert "only pad_id=3 is accepted" in line


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["input_sentence_size=lots"], "input_sentence_size takes an integer >= 0"),
        (["character_coverage=most"], "character_coverage takes a number"),
        (["model_type=word"], "model_type=word: choose unigram or bpe"),
        (["model_type=piece"], "model_type takes one of unigram, bpe, word, char"),
        (["normalization_rule_name=nfc"], "no rule 'nfc'; choose one of nmt_nfkc, nfkc"),
        (["byte_fallback"], "write KEY=VALUE"),
        (["split_digits=true", "split_digits=false"], "split_digits is given twice"),
        (["model_prefix=m"], "synthlm writes the model into --out; leave model_prefix out"),
        (["input=corpus.txt"], "synthlm feeds sentencepiece the text of --input itself"),
        (["vocab_size=500"], "set it with --vocab-size"),
        (["eos_piece=<eos>"], "set it with --eos-token, so only eos_piece=</s> is accepted"),
        (["minloglevel=0"], "use --verbose"),
        (["treat_whitespace_as_suffix=true"], "cannot express it"),
        (["escape_whitespaces=false"], "only escape_whitespaces=true is accepted"),
    ],
)
def test_bad_options_are_refused_before_reading_the_input(tmp_path, options, message):
    with pytest.raises(UserError, match="^--sp-option") as caught:
        train_tokenizer(
            [tmp_path / "not-read.txt"], "sentencepiece", VOCAB, tmp_path / "t", sp_options=options
        )
    assert message in str(caught.value)


def test_owned_keys_at_synthlms_own_value_are_accepted(tmp_path, train_txt):
    """Rocket writes --pad_id=3: the same value synthlm passes, so it may stay in the command."""
    same = ["pad_id=3", "unk_id=0", f"vocab_size={VOCAB}", "pad_piece=<pad>"]
    tok = train_tokenizer(
        [train_txt], "sentencepiece", VOCAB, tmp_path / "t", sp_options=same, quiet=True
    )
    assert tok.special_ids()["pad"] == 3


def test_sp_flags_need_kind_sentencepiece_and_agree(tmp_path, train_txt):
    with pytest.raises(UserError, match="apply to --kind sentencepiece, not bpe"):
        train_tokenizer([train_txt], "bpe", VOCAB, tmp_path / "a", sp_options=["split_digits=1"])
    with pytest.raises(UserError, match="--sp-defaults 'llama': choose synthlm or library"):
        train_tokenizer([train_txt], "sentencepiece", VOCAB, tmp_path / "b", sp_defaults="llama")
    with pytest.raises(UserError, match="--sp-model-type bpe and --sp-option model_type=unigram"):
        train_tokenizer(
            [train_txt],
            "sentencepiece",
            VOCAB,
            tmp_path / "c",
            sp_model_type="bpe",
            sp_options=["model_type=unigram"],
        )


def test_the_library_hard_limit_failure_names_the_way_out(tmp_path, train_txt):
    with pytest.raises(UserError, match="hard_vocab_limit=false") as caught:
        train_tokenizer([train_txt], "sentencepiece", 32_000, tmp_path / "t", sp_defaults="library")
    assert "could not train a 32000-piece model" in str(caught.value)


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_user_defined_symbols_encode_alike_in_autotokenizer(
    tmp_path, train_txt, shakespeare, model_type
):
    """A model with user-defined pieces: the saved tokenizer.json (what AutoTokenizer, the
    lm-eval bridge and chat tokenization read) gives sentencepiece's own ids. As raw-text added
    tokens they gave "foo bar" as foo, ▁, ▁b, ar where sentencepiece writes ▁, foo, ▁b, ar; and
    sentencepiece's unigram does not even force them (its lattice scores them n x max - 0.1)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    out = tmp_path / "tok"
    done = run_cli(
        "tokenizer", "train", "--input", str(train_txt), "--kind", "sentencepiece",
        "--sp-model-type", model_type, "--vocab-size", str(VOCAB),
        "--sp-option", "user_defined_symbols=<sep>,foo,the", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reference = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    auto = AutoTokenizer.from_pretrained(out)
    held_out = shakespeare.read_text(encoding="utf-8").splitlines()[-800:]
    probes = ["foo bar", "a <sep> b", "football", "  the  foo<sep>the", "<sep><sep>foofoo"]
    for text in [*probes, *TEXTS, *(line for line in held_out if line.strip())]:
        ids = auto(text, add_special_tokens=False)["input_ids"]
        assert ids == reference.encode(text), (text, auto.tokenize(text))
