"""nanoT5's Super-NaturalInstructions evaluation makes text back from ids twice; synthlm's
``finetune.scored_text: cleaned_up`` and ``natural_instructions.long_prompt_cut:
retokenized_text`` must give exactly its texts and ids.

nanoT5's rules are restated here with transformers' own tokenizer API over a T5-style
SentencePiece model trained locally (pad 0, ``</s>`` 1, ``<unk>`` 2, 100 sentinels), never
through synthlm's code:

* ``train_utils.predict``: predictions and references (the label ids) are
  ``batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)``, stripped,
  then ROUGE-L with the Porter stemmer (``evaluate``'s ``rouge`` = ``rouge_score``'s scorer);
* ``copied_utils.DataCollatorForNI``: a prompt whose ids (``</s>`` counted) exceed
  ``max_source_length`` becomes ``decode(ids[:max_source_length], skip_special_tokens=True)``
  (transformers 4.30 cleans up by default: ``clean_up_tokenization_spaces=True``), and the
  batch is ``tokenizer(sources, max_length=max_source_length, truncation=True)``.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from cli_runner import run_cli
from synthlm.finetune.config import FinetuneConfig, NaturalInstructionsConfig
from synthlm.finetune.data import load_pairs
from synthlm.finetune.pair_plan import pair_layout
from synthlm.finetune.predict import prediction_records, score
from synthlm.tokenizers import load_tokenizer

SNOWMAN = "\u2603"  # not in the Shakespeare alphabet: SentencePiece writes <unk>

# (prediction, reference): contractions and spaces before punctuation, where the clean-up moves
# words; a character the vocabulary lacks, which decoding the reference's ids drops
TEXT_PAIRS = [
    ("They do n't care .", "They do not care ."),
    ("it 's fine , is n't it ?", "It's fine, isn't it?"),
    ("we 're here !", "we are here"),
    (f"a na{SNOWMAN}ve snowman", f"the na{SNOWMAN}ve snowman ."),
    ("I 've seen ' em", "I have seen them"),
]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory, shakespeare: Path) -> Path:
    """A T5-style tokenizer dir (spiece.model + tokenizer_config.json), as google/t5-v1_1-base
    ships it, trained on Shakespeare: 600 pieces + 100 sentinels."""
    import sentencepiece as spm

    out = tmp_path_factory.mktemp("t5-tokenizer")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(shakespeare.read_text(encoding="utf-8")[:60_000].splitlines()),
        model_writer=model,
        vocab_size=600,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        minloglevel=2,
    )
    (out / "spiece.model").write_bytes(model.getvalue())
    config = {"tokenizer_class": "T5Tokenizer", "extra_ids": 100}
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def hf(t5_dir: Path):
    """nanoT5's tokenizer: ``AutoTokenizer.from_pretrained(name, use_fast=True)``, no length
    limit (``model_utils.get_tokenizer``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(t5_dir), use_fast=True)
    tokenizer.model_max_length = int(1e9)
    return tokenizer


@pytest.fixture(scope="module", params=["t5_dir", "synthlm_saved"])
def ours(request, t5_dir: Path, tmp_path_factory):
    """synthlm's tokenizer over the same model: read from the T5 dir, or as a run saves it
    (``nanot5_sni.yaml`` reads the pretraining run's final/)."""
    tokenizer = load_tokenizer(t5_dir)
    if request.param == "synthlm_saved":
        tokenizer = load_tokenizer(tokenizer.save(tmp_path_factory.mktemp("saved") / "tok"))
    return tokenizer


def nanot5_decode(hf, rows: list[list[int]]) -> list[str]:
    """``train_utils.predict``'s ``decode``: -100 as pad, no special tokens, cleaned, stripped."""
    rows = [[hf.pad_token_id if i == -100 else i for i in row] for row in rows]
    texts = hf.batch_decode(rows, skip_special_tokens=True, clean_up_tokenization_spaces=True)
    return [t.strip() for t in texts]


def nanot5_rouge_l(predictions: list[str], references: list[str]) -> float:
    """``evaluate.load('rouge').compute(use_stemmer=True, use_aggregator=False)``'s ``rougeL``
    averaged over the instances (a fraction; nanoT5 prints it x100)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)]
    return sum(scores) / len(scores)


def scored_pairs(tmp_path: Path, tokenizer, scored_text: str):
    rows = [{"input": f"question {i}", "target": ref} for i, (_, ref) in enumerate(TEXT_PAIRS)]
    path = tmp_path / "valid.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = FinetuneConfig(valid=path, metrics=["rouge_l_stemmed"], scored_text=scored_text)
    layout = pair_layout(tokenizer.vocab_size, 0)
    return load_pairs("valid", path, cfg, tokenizer, layout), layout


def test_scores_read_the_texts_nanot5s_predict_decodes(tmp_path, hf, ours) -> None:
    # what model.generate returns there: the decoder start (pad), the text, </s>, padding
    generated = [[hf.pad_token_id, *hf(p)["input_ids"], hf.pad_token_id] for p, _ in TEXT_PAIRS]
    labels = hf([r for _, r in TEXT_PAIRS], max_length=128, truncation=True)["input_ids"]
    predictions, references = nanot5_decode(hf, generated), nanot5_decode(hf, labels)
    assert predictions[0] == "They don't care." and f"na{SNOWMAN}ve" not in references[3]
    expected = nanot5_rouge_l(predictions, references)

    outputs = [row[1:-2] for row in generated]  # synthlm's: no decoder start, cut before </s>
    pairs, layout = scored_pairs(tmp_path, ours, "cleaned_up")
    assert score(pairs, outputs, ours, layout)["rouge_l_stemmed"] == pytest.approx(expected)
    records = prediction_records(pairs, outputs, ours, layout)
    assert [(r["prediction"], r["target"]) for r in records] == list(zip(predictions, references))

    # the default scores other texts, and another number: on the first pair "do n't" leaves
    # 3 words in common with "They do not care" (F 2/3), nanoT5's "don't" 2 (F 1/2)
    plain, _ = scored_pairs(tmp_path, ours, "decoded")
    assert score(plain, outputs, ours, layout)["rouge_l_stemmed"] != pytest.approx(expected)
    first = {
        rule: score(dataclasses.replace(p, pairs=p.pairs[:1]), outputs[:1], ours, layout)
        for rule, p in (("decoded", plain), ("cleaned_up", pairs))
    }
    assert first["decoded"]["rouge_l_stemmed"] == pytest.approx(2 / 3)
    assert first["cleaned_up"]["rouge_l_stemmed"] == pytest.approx(0.5)
    assert nanot5_rouge_l(predictions[:1], references[:1]) == pytest.approx(0.5)


def nanot5_input_ids(hf, source: str, limit: int) -> list[int]:
    """``DataCollatorForNI``: an over-long prompt as the text of its first ``limit`` ids, then
    the batch tokenized with truncation at ``limit``."""
    ids = hf(source)["input_ids"]
    if len(ids) > limit:
        source = hf.decode(ids[:limit], skip_special_tokens=True, clean_up_tokenization_spaces=True)
    return hf(source, max_length=limit, truncation=True)["input_ids"]


LIMIT = 40


def long_prompt_checkout(root: Path) -> Path:
    """Two test tasks whose definitions fill more than ``LIMIT`` tokens: ``task001_marks`` with
    contractions and the snowman inside its first ``LIMIT``, ``task002_plain`` with words
    only (its text tokenizes again to more than the limit: the second cut runs)."""
    marked = f"Say what they do n't want . A {SNOWMAN} snowman , it 's cold , is n't it ? "
    plain = "Say what the king and the queen would have told the good men of the town "
    (root / "tasks").mkdir(parents=True)
    (root / "splits" / "default").mkdir(parents=True)
    for name, definition in (("task001_marks", marked), ("task002_plain", plain)):
        task = {
            "Definition": [definition * 4],
            "Positive Examples": [],
            "Negative Examples": [],
            "Instances": [
                {"id": f"i{k}", "input": f"case {k}", "output": [f"answer {k}"]} for k in range(3)
            ],
        }
        (root / "tasks" / f"{name}.json").write_text(json.dumps(task), encoding="utf-8")
    splits = root / "splits" / "default"
    (splits / "train_tasks.txt").write_text("", encoding="utf-8")
    (splits / "test_tasks.txt").write_text("task001_marks\ntask002_plain\n", encoding="utf-8")
    return root


def prompt_pairs(root: Path, tokenizer, cut: str):
    settings = NaturalInstructionsConfig(long_prompt_cut=cut)
    cfg = FinetuneConfig(valid=root, natural_instructions=settings, max_input_length=LIMIT)
    return load_pairs("valid", root, cfg, tokenizer, pair_layout(tokenizer.vocab_size, 0)).pairs


def test_long_prompts_are_cut_as_nanot5s_collator_cuts_them(tmp_path, hf, ours) -> None:
    root = long_prompt_checkout(tmp_path / "ni")
    pairs = prompt_pairs(root, ours, "retokenized_text")
    first = prompt_pairs(root, ours, "first_ids")
    assert len(pairs) == 6
    for pair, kept in zip(pairs, first):
        source = hf(pair.input_text)["input_ids"]
        assert len(source) > LIMIT  # every prompt is over the limit
        assert pair.input_ids.tolist() == nanot5_input_ids(hf, pair.input_text, LIMIT)
        # the default keeps the first LIMIT - 1 ids, <unk> and all
        assert kept.input_ids.tolist() == [*source[: LIMIT - 1], hf.eos_token_id]
        if hf.unk_token_id in source[:LIMIT]:  # task001: <unk> dropped, "do n't" -> "don't"
            assert pair.input_ids.tolist() != kept.input_ids.tolist()
            assert len(pair.input_ids) < LIMIT
        else:  # task002: the text tokenizes to the same ids again, and is cut again
            assert pair.input_ids.tolist() == kept.input_ids.tolist()
    assert sum(hf.unk_token_id in hf(p.input_text)["input_ids"][:LIMIT] for p in pairs) == 3


SNI_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "configs" / "nanot5_sni.yaml"
BAD = [
    ("scored_text: cleaned_up", "finetune.scored_text", "'decoded', 'cleaned_up'"),
    (
        "long_prompt_cut: retokenized_text",
        "finetune.natural_instructions.long_prompt_cut",
        "'first_ids', 'retokenized_text'",
    ),
]


def bad_config(tmp_path: Path, line: str) -> Path:
    """nanot5_sni.yaml with the value of ``line``'s key replaced by one no rule has."""
    text = SNI_CONFIG.read_text(encoding="utf-8")
    assert text.count(line) == 1
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(line, line.split(":")[0] + ": tidy"), encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "key", "allowed"), BAD)
def test_a_bad_value_is_refused_with_the_file_key_and_choices(tmp_path, line, key, allowed):
    from synthlm.errors import ConfigError
    from synthlm.train import load_run_config

    path = bad_config(tmp_path, line)
    with pytest.raises(ConfigError) as refused:
        load_run_config([path])
    assert all(part in str(refused.value) for part in (str(path), key, allowed, "tidy"))


def test_the_command_exits_2_on_a_bad_value(tmp_path) -> None:
    result = run_cli("train", str(bad_config(tmp_path, BAD[0][0])), "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "finetune.scored_text: expected one of 'decoded', 'cleaned_up'" in result.stderr


def test_depth_inputs_refuse_the_retokenized_cut() -> None:
    from pydantic import ValidationError

    from synthlm.finetune.config import DepthInputsConfig

    with pytest.raises(ValidationError, match="long_prompt_cut: retokenized_text"):
        FinetuneConfig(
            natural_instructions=NaturalInstructionsConfig(long_prompt_cut="retokenized_text"),
            depth_inputs=DepthInputsConfig(),
        )
