"""DEPTH fine-tuning as the DEPTH code runs it (github.com/zbambergerNLP/depth): its GLUE and
DiscoEval prompts, its sentence-marked inputs with token-type attention, and its teacher-forced
scoring. Each rule is restated here from that code, independently of synthlm's implementation:

* prompts: ``fine_tune_constants/glue_constants.py`` and ``disco_eval_constants.py`` through
  ``encoder_decoder_utils/data_utils.py`` (``preprocess_function_one_input``,
  ``_two_inputs``, ``_n_inputs``);
* inputs: ``tokenizer_utils.py`` (``add_sentence_tokens_to_text(randomize=False)``,
  ``prepare_for_model``'s token types) and ``corruption.py``'s
  ``create_depth_encoder_self_attention_mask`` with ``get_sentence_token_and_eosen_ids()``, as
  ``DEPTHDataCollatorFineTuning`` calls it;
* scoring: ``metric_utils.py`` (``preprocess_logits_for_metrics``, ``compute_fine_tune_metrics``).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from t5_run_helpers import TINY_T5, read_records, synthlm, write_config

from synthlm.errors import ConfigError, UserError
from synthlm.evaluate.loss import BatchMeanLoss, LossTotal
from synthlm.finetune.config import DepthInputsConfig, FinetuneConfig
from synthlm.finetune.data import Pair, PairDataset, PairSet, load_pairs, tokenize_pairs
from synthlm.finetune.depth_inputs import depth_marks, encoder_mask
from synthlm.finetune.pair_plan import pair_layout
from synthlm.finetune.predict import depth_encoder_states, score, teacher_forced
from synthlm.finetune.tasks import get_task
from synthlm.objectives.text_to_text import TextToText
from synthlm.text.sentences import split_sentences
from synthlm.text.special_tokens import TextCodec, with_t5_tokens
from synthlm.tokenizers import load_tokenizer
from synthlm.train import load_run_config

# glue_constants.py: (PREFIX_1, PREFIX_2, TEXT_COLUMN_NAME_1, TEXT_COLUMN_NAME_2, LABELS);
# one-input tasks have no second prefix
DEPTH_GLUE = {
    "sst2": ("sst2: sentence: ", None, "sentence", None, {0: "negative", 1: "positive"}),
    "cola": ("cola: sentence: ", None, "sentence", None, {0: "unacceptable", 1: "acceptable"}),
    "rte": (
        "rte: sentence1: ",
        "sentence2",
        "sentence1",
        "sentence2",
        {0: "negative", 1: "positive"},
    ),
    "mnli": (
        "mnli hypothesis: ",
        "premise: ",
        "premise",
        "hypothesis",
        {2: "contradiction", 0: "entailment", 1: "neutral"},
    ),
    "qnli": (
        "qnli question: ",
        "sentence: ",
        "question",
        "sentence",
        {1: "not_entailment", 0: "entailment"},
    ),
    "mrpc": (
        "mrpc sentence1: ",
        "sentence2: ",
        "sentence1",
        "sentence2",
        {0: "not_equivalent", 1: "equivalent"},
    ),
    "qqp": (
        "qqp question1: ",
        "question2: ",
        "question1",
        "question2",
        {0: "not_duplicate", 1: "duplicate"},
    ),
    "stsb": ("stsb sentence1: ", "sentence2: ", "sentence1", "sentence2", None),
}
# disco_eval_constants.py: task -> (TEXT_COLUMN_AMOUNT, LABELS)
SP = {"0": "First sentence", "1": "Second sentence", "2": "Third sentence"}
SP |= {"3": "Fourth sentence", "4": "Fifth sentence"}
BSO = {"0": "Incorrect order", "1": "Correct order"}
DC = {"0": "Incoherent", "1": "Coherent"}
SSP = {"0": "Does not belong to abstract", "1": "Belongs to abstract"}
DISCO = {"SParxiv": (5, SP), "SProcstory": (5, SP), "SPwiki": (5, SP)}
DISCO |= {"BSOarxiv": (2, BSO), "BSOrocstory": (2, BSO), "BSOwiki": (2, BSO)}
DISCO |= {"DCchat": (6, DC), "DCwiki": (6, DC), "SSPabs": (1, SSP)}
# PDTB_E_LABELS, PDTB_I_LABELS and RST_LABELS are lists there, made {"0": ..., "1": ...} by
# DiscoEvalConstants.__post_init__
PDTB_E = [
    "Comparison.Concession", "Comparison.Contrast", "Contingency.Cause", "Contingency.Condition",
    "Contingency.Pragmatic condition", "Expansion.Alternative", "Expansion.Conjunction",
    "Expansion.Instantiation", "Expansion.List", "Expansion.Restatement",
    "Temporal.Asynchronous", "Temporal.Synchrony",
]  # fmt: skip
PDTB_I = [
    "Comparison.Concession", "Comparison.Contrast", "Contingency.Cause",
    "Contingency.Pragmatic cause", "Expansion.Alternative", "Expansion.Conjunction",
    "Expansion.Instantiation", "Expansion.List", "Expansion.Restatement",
    "Temporal.Asynchronous", "Temporal.Synchrony",
]  # fmt: skip
RST = [
    "NS-Explanation", "NS-Evaluation", "NN-Condition", "NS-Summary", "SN-Cause",
    "SN-Background", "NS-Background", "SN-Summary", "NS-Topic-Change", "NN-Explanation",
    "SN-Topic-Comment", "NS-Elaboration", "SN-Attribution", "SN-Manner-Means", "NN-Evaluation",
    "NS-Comparison", "NS-Contrast", "SN-Condition", "NS-Temporal", "NS-Enablement",
    "SN-Evaluation", "NN-Topic-Comment", "NN-Temporal", "NN-Textual-organization",
    "NN-Same-unit", "NN-Comparison", "NN-Topic-Change", "SN-Temporal", "NN-Joint",
    "SN-Enablement", "SN-Explanation", "NN-Contrast", "NN-Cause", "SN-Contrast",
    "NS-Attribution", "NS-Topic-Comment", "SN-Elaboration", "SN-Comparison", "NS-Cause",
    "NS-Condition", "NS-Manner-Means",
]  # fmt: skip
DISCO |= {
    name: (2, {str(i): label for i, label in enumerate(labels)})
    for name, labels in (("PDTB_E", PDTB_E), ("PDTB_I", PDTB_I), ("RST", RST))
}
ORDINAL = ["first", "second", "third", "fourth", "fifth", "sixth"]


def depth_code_glue(task: str, row: dict) -> tuple[str, str]:
    """preprocess_function_one_input / _two_inputs: the input string and the target string."""
    prefix_1, prefix_2, column_1, column_2, labels = DEPTH_GLUE[task]
    if prefix_2 is None:
        text = f"{prefix_1}{row[column_1]}"
    else:
        text = f"{prefix_1}{row[column_1]} {prefix_2}{row[column_2]}"
    if labels is None:  # is_regression: str(round(example / 0.2) * 0.2)
        return text, str(round(row["label"] / 0.2) * 0.2)
    return text, labels[row["label"]]


def depth_code_disco(task: str, sentences: list[str], label: int) -> tuple[str, str]:
    """preprocess_function_n_inputs: "<column>: <sentence>" joined by tabs after "<task>: "."""
    _, labels = DISCO[task]
    parts = [f"{ORDINAL[i]}_sentence: {s}" for i, s in enumerate(sentences)]
    return f"{task}: " + "\t".join(parts), labels[str(label)]


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(["the cat", "sat", "on", "a mat.", "Why?", "yes"]) for _ in range(n))


@pytest.mark.parametrize("task", sorted(DEPTH_GLUE))
def test_glue_prompts_and_label_words_are_the_depth_codes(task) -> None:
    rng = random.Random(task)
    spec = get_task(task, "depth")
    _, _, column_1, column_2, labels = DEPTH_GLUE[task]
    for _ in range(20):
        row = {column_1: words(rng, 4), "idx": 3}
        if column_2 is not None:
            row[column_2] = words(rng, 3)
        row["label"] = (
            rng.choice([0.0, 1.0, 2.4, 2.6, 3.8, 4.6, 5.0])
            if labels is None
            else rng.choice(sorted(labels))
        )
        assert (spec.input_text(row, "f"), spec.target_text(row, "f")) == depth_code_glue(task, row)


def test_original_glue_tsv_labels_map_to_the_depth_codes_words() -> None:
    """GLUE's RTE class 0 is "entailment", which the DEPTH code writes "negative"."""
    rte = get_task("rte", "depth")
    assert rte.target_text({"label": "entailment"}, "f") == "negative"
    assert rte.target_text({"label": "not_entailment"}, "f") == "positive"
    assert get_task("mnli", "depth").target_text({"gold_label": "neutral"}, "f") == "neutral"


@pytest.mark.parametrize("task", sorted(DISCO))
def test_disco_eval_prompts_are_the_depth_codes(task) -> None:
    rng = random.Random(task)
    count, labels = DISCO[task]
    spec = get_task(task, "depth")
    for _ in range(10):
        sentences = [words(rng, 3) for _ in range(count)]
        if task == "RST":  # the export's RST columns hold each span's discourse units as a list
            sentences = [[words(rng, 2) for _ in range(rng.randint(1, 3))] for _ in sentences]
        label = rng.randrange(len(labels))
        export = {f"{ORDINAL[i]}_sentence": s for i, s in enumerate(sentences)} | {"label": label}
        hf_script = {f"sentence_{i + 1}": s for i, s in enumerate(sentences)} | {"label": label}
        expected = depth_code_disco(task, sentences, label)
        assert (spec.input_text(export, "f"), spec.target_text(export, "f")) == expected
        assert spec.input_text(hf_script, "f") == expected[0]
    if task == "RST":  # DiscoEval ships RST only as pickles: no text layout to read
        assert spec.headerless == ()
    else:
        assert spec.headerless == ("label", *(f"{ORDINAL[i]}_sentence" for i in range(count)))


def test_an_rst_span_is_written_as_the_python_list_the_depth_code_formats() -> None:
    """The export's RST columns are lists of discourse units; the code's f-string writes their
    Python repr, quotes chosen per unit."""
    spec = get_task("RST", "depth")
    row = {"first_sentence": ["It's late,", 'he said "go"'], "second_sentence": ["so we left."]}
    text = spec.input_text(row | {"label": 28}, "f")
    assert text == (
        "RST: first_sentence: [\"It's late,\", 'he said \"go\"']\tsecond_sentence: ['so we left.']"
    )
    assert spec.target_text({"label": 28}, "f") == "NN-Joint"


def test_pdtb_files_name_their_senses_which_map_to_the_same_words(tmp_path) -> None:
    """DiscoEval's PDTB files (data/PDTB/{Explicit,Implicit}/*.txt) give the sense itself
    (``Temporal.Synchrony<TAB>arg1<TAB>arg2``); the export gives its class index."""
    from synthlm.finetune.files import read_rows

    path = tmp_path / "test.txt"
    path.write_text("Temporal.Synchrony\tA b.\tC d.\nContingency.Cause\tE.\tF.\n", "utf-8")
    for task, labels in (("PDTB_E", PDTB_E), ("PDTB_I", PDTB_I)):
        spec = get_task(task, "depth")
        rows = read_rows(path, "tsv", spec.headerless)
        got = [(spec.input_text(r, "f"), spec.target_text(r, "f")) for r in rows]
        assert got == [
            depth_code_disco(task, ["A b.", "C d."], labels.index("Temporal.Synchrony")),
            depth_code_disco(task, ["E.", "F."], labels.index("Contingency.Cause")),
        ]
    with pytest.raises(UserError, match="not a PDTB_I label.*Contingency.Pragmatic cause"):
        get_task("PDTB_I", "depth").target_text({"label": "Contingency.Condition"}, "f")


def test_original_disco_eval_files_read_as_headerless_tsv(tmp_path) -> None:
    """DiscoEval's own data files (github.com/ZeweiChu/DiscoEval, data/SP/wiki/valid.txt):
    ``label<TAB>sentence<TAB>...`` lines, no header; finetune.format: tsv reads them."""
    from synthlm.finetune.files import read_rows

    path = tmp_path / "valid.txt"
    lines = ["3\tA b.\tC d.\tE f.\tG h.\tI j.", "0\tK.\tL.\tM.\tN.\tO."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = get_task("SPwiki", "depth")
    rows = read_rows(path, "tsv", spec.headerless)
    got = [(spec.input_text(r, "f"), spec.target_text(r, "f")) for r in rows]
    assert got == [
        depth_code_disco("SPwiki", ["A b.", "C d.", "E f.", "G h.", "I j."], 3),
        depth_code_disco("SPwiki", ["K.", "L.", "M.", "N.", "O."], 0),
    ]


# ---------------------------------------------------------------------------------------------
# DEPTH-marked inputs


@pytest.fixture(scope="module")
def depth_tokenizer(t5_data, tmp_path_factory):
    """A DEPTH pretraining run's tokenizer: pad, 100 sentinels, then <eosen> and 20 <sent_i>."""
    base = load_tokenizer(t5_data["tok"])
    path = tmp_path_factory.mktemp("depth-tok") / "tok"
    with_t5_tokens(base, num_sentinels=100, num_sentence_tokens=20).save(path)
    return TextToText.create(load_tokenizer(path))


def depth_code_layout(
    pieces: list[list[int]], eosen: int, sentence_ids: list[int], length: int
) -> tuple[list[int], list[int]]:
    """add_sentence_tokens_to_text(randomize=False) then prepare_for_model: "<eosen><sent_i>S"
    for the first 20 sentences and a closing <eosen>, padded to ``length`` by ``tokenize``
    before </s> is appended, so the cut to ``length`` drops </s> (padding left out here: it
    is not attended in synthlm); token types start at 1 for the first token and count the
    sentence tokens of the rest."""
    ids: list[int] = []
    for i, piece in enumerate(pieces[:20]):
        ids += [eosen, sentence_ids[i], *piece]
    ids = [*ids, eosen][:length]
    types, index = [1], 0
    for token in ids[1:]:
        if token in sentence_ids:
            index += 1
        types.append(index)
    return ids, types


def depth_code_encoder_mask(ids: list[int], types: list[int], structural: set[int]) -> np.ndarray:
    """create_depth_encoder_self_attention_mask: a structural token attends to the tokens of its
    type, any other token to every position."""
    types_array = np.asarray(types)
    rows = [
        (types_array == types[q]).astype(int) if token in structural else np.ones(len(ids), int)
        for q, token in enumerate(ids)
    ]
    return np.stack(rows)


TEXTS = [
    "sst2: sentence: A quiet film. It works well! Does it end? Yes.",
    "rte: sentence1: The cat sat. sentence2The mat was red.",
    "one sentence without an end",
]


def test_depth_inputs_are_laid_out_and_typed_as_the_depth_code_does(depth_tokenizer) -> None:
    objective, tokenizer = depth_tokenizer
    cfg = FinetuneConfig(max_input_length=512, depth_inputs=DepthInputsConfig(splitter="pysbd"))
    marks = depth_marks(tokenizer, cfg.depth_inputs)
    codec = TextCodec(tokenizer)
    pairs, _ = tokenize_pairs([(t, "x") for t in TEXTS], tokenizer, cfg, progress=False, desc="")
    structural = {marks.eosen, *marks.sentences.tolist()}
    for text, pair in zip(TEXTS, pairs):
        # the sentences, as the same splitter cuts them, encoded one by one (by design)
        pieces = [codec.encode(s) for s in split_sentences(text, "pysbd")]
        ids, types = depth_code_layout(pieces, marks.eosen, marks.sentences.tolist(), 512)
        assert pair.input_ids.tolist() == ids
        assert np.abs(pair.input_types).tolist() == types
        assert len(pieces) > 1 or text == TEXTS[-1]

    batch = objective.collate(pairs)
    mask = encoder_mask(batch["encoder_types"], batch["attention_mask"])[:, 0]
    for row, pair in enumerate(pairs):
        n = len(pair.input_ids)
        expected = depth_code_encoder_mask(
            pair.input_ids.tolist(), np.abs(pair.input_types).tolist(), structural
        )
        assert mask[row, :n, :n].numpy().astype(int).tolist() == expected.tolist()
        assert not mask[row, :, n:].any()  # padding is never attended (a deliberate difference)


def test_long_inputs_are_cut_as_the_depth_tokenizer_cuts_them(depth_tokenizer) -> None:
    """20 sentences at most (max_num_sentences_in_text), then the cut to the input length; with
    eos: true (models pretrained on inputs ending in </s>), </s> stays last."""
    _, tokenizer = depth_tokenizer
    codec = TextCodec(tokenizer)
    many = " ".join(f"Line {i} here." for i in range(30))
    for eos in (False, True):
        inputs = DepthInputsConfig(splitter="pysbd", eos=eos)
        marks = depth_marks(tokenizer, inputs)
        pieces = [codec.encode(s) for s in split_sentences(many, "pysbd")]
        code, _ = depth_code_layout(pieces, marks.eosen, marks.sentences.tolist(), 4096)
        for limit in (40, 4096):
            cfg = FinetuneConfig(max_input_length=limit, depth_inputs=inputs)
            (pair,), cut = tokenize_pairs([(many, "x")], tokenizer, cfg, progress=False, desc="")
            expected = [*code[: limit - 1], tokenizer.eos_id] if eos else code[:limit]
            assert pair.input_ids.tolist() == expected
            assert cut == (len(code) + eos > limit)
        assert int(np.isin(code, marks.sentences).sum()) == 20


def tiny_model(tokenizer, layers: int = 2) -> torch.nn.Module:
    """A d_model-32 T5 with random weights and SDPA attention (the 4D masks' bool form)."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=layers,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_id,
        eos_token_id=tokenizer.eos_id,
        decoder_start_token_id=tokenizer.pad_id,
        attn_implementation="sdpa",
    )
    return T5ForConditionalGeneration(config).eval()


def test_sentence_marks_see_only_their_sentence_in_training_and_generation(depth_tokenizer):
    """With one encoder layer (one attention hop: deeper, ordinary tokens carry the second
    sentence to the first's marks), changing a word of the second sentence moves the states
    that may see it and leaves the first sentence's <eosen> and <sent_0> as they were; the
    training forward and generation read the same encoder states."""
    objective, tokenizer = depth_tokenizer
    cfg = FinetuneConfig(max_input_length=64, depth_inputs=DepthInputsConfig(splitter="pysbd"))
    texts = ["First one here. Second one there.", "First one here. Second one where."]
    pairs, _ = tokenize_pairs([(t, "yes") for t in texts], tokenizer, cfg, progress=False, desc="")
    batch = objective.collate(pairs)
    model = tiny_model(tokenizer, layers=1)
    with torch.no_grad():
        states = depth_encoder_states(
            model, batch["input_ids"], batch["encoder_types"], batch["attention_mask"]
        ).last_hidden_state
        logits = objective.logits(model, batch)
        direct = model(
            encoder_outputs=(states,),
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
        ).logits
    torch.testing.assert_close(logits, direct)  # training and generation see the same encoder
    first_marks = [0, 1]  # the leading <eosen> and <sent_0>, type 1
    assert torch.allclose(states[0, first_marks], states[1, first_marks], atol=1e-6)
    plain = 2  # the first word of sentence one attends to everything, the changed word too
    assert not torch.allclose(states[0, plain], states[1, plain], atol=1e-4)


def test_teacher_forced_outputs_are_the_argmax_at_every_target_position(depth_tokenizer):
    """preprocess_logits_for_metrics: argmax of the teacher-forced logits, read where the labels
    are not -100; HF shifts the labels itself here (decoder start = pad)."""
    objective, tokenizer = depth_tokenizer
    cfg = FinetuneConfig(max_input_length=64, max_target_length=8)
    texts = [("sst2: sentence: a.", "positive"), ("sst2: sentence: bb cc.", "negative")]
    pairs, _ = tokenize_pairs(texts, tokenizer, cfg, progress=False, desc="")
    model = tiny_model(tokenizer)
    end = tokenizer.vocab_size
    total, outputs = teacher_forced(
        objective, model, pairs, torch.device("cpu"), 2, end, LossTotal()
    )
    batch = objective.collate(pairs)
    with torch.no_grad():
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
        )
    argmax = out.logits[..., :end].argmax(-1)
    expected = [row[batch["labels"][i] != -100].tolist() for i, row in enumerate(argmax)]
    assert outputs == expected
    assert total.mean == pytest.approx(out.loss.item(), rel=1e-5)  # one batch: both averages
    (first, _), (second, _) = (
        teacher_forced(objective, model, pairs, torch.device("cpu"), 1, end, average())
        for average in (LossTotal, BatchMeanLoss)
    )
    per_pair = []
    with torch.no_grad():
        for i in range(2):
            one = {k: v[i : i + 1] for k, v in batch.items()}
            per_pair.append(
                model(
                    input_ids=one["input_ids"],
                    attention_mask=one["attention_mask"],
                    labels=one["labels"],
                ).loss.item()
            )
    assert second.mean == pytest.approx(np.mean(per_pair), rel=1e-5)  # the Trainer's eval_loss
    assert first.mean == pytest.approx(out.loss.item(), rel=1e-5)


def write_pairs(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_trained_target_padding_gives_the_depth_ni_collators_labels(depth_tokenizer, tmp_path):
    """DataCollatorForNI in the DEPTH code, over its DEPTH tokenizer: ``batch_encode_plus(
    outputs, padding="max_length", max_length=128, truncation=True)`` becomes the labels with no
    -100, so every pad after </s> is a target; HF T5 shifts them right itself and its loss is the
    mean over all B x 128 positions."""
    objective, tokenizer = depth_tokenizer
    rows = [{"input": "Say it. Now.", "target": "a b c"}, {"input": "x.", "target": "d"}]
    write_pairs(tmp_path / "pairs.jsonl", rows)
    width = 8
    cfg = FinetuneConfig(max_input_length=32, max_target_length=width, target_padding="trained")
    layout = pair_layout(tokenizer.vocab_size, 0)
    pairs = load_pairs("valid", tmp_path / "pairs.jsonl", cfg, tokenizer, layout).pairs
    pad, eos = tokenizer.pad_id, tokenizer.eos_id
    expected = []
    for row in rows:  # the tokens, </s>, then pads up to max_length: all of them labels
        body = tokenizer.encode_batch([row["target"]])[0]
        expected.append([*body, eos] + [pad] * (width - len(body) - 1))
    batch = objective.collate(pairs)
    assert batch["labels"].tolist() == expected
    model = tiny_model(tokenizer)
    with torch.no_grad():
        hf = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=torch.tensor(expected),
        ).loss
        sums, counts = objective.row_loss_sums(model, batch)
    assert counts.tolist() == [width, width]
    assert float(sums.sum() / counts.sum()) == pytest.approx(hf.item(), rel=1e-5)
    masked = load_pairs(
        "valid",
        tmp_path / "pairs.jsonl",
        cfg.model_copy(update={"target_padding": "masked"}),
        tokenizer,
        layout,
    ).pairs
    assert objective.collate(masked)["labels"].ne(-100).sum(1).tolist() == [
        len(e) - e.count(pad) for e in expected
    ]


def test_shuffled_sentence_ids_are_redrawn_as_the_depth_tokenizer_draws_them(
    depth_tokenizer, tmp_path
) -> None:
    """add_sentence_tokens_to_text(randomize=True): ``np.random.shuffle`` of all the sentence
    tokens, then the i-th marks sentence i. So a marked input is the ordered layout with its
    <sent_i> ids replaced by distinct sentence tokens, any of them at any place; training pairs
    draw anew each epoch (the collator marks every batch), evaluation pairs once here."""
    _, tokenizer = depth_tokenizer
    rows = [{"input": f"First {i}. Second one. Third here.", "target": "t"} for i in range(4)]
    write_pairs(tmp_path / "pairs.jsonl", rows)
    inputs = DepthInputsConfig(splitter="pysbd")
    ordered_cfg = FinetuneConfig(max_input_length=64, depth_inputs=inputs)
    shuffled_cfg = FinetuneConfig(
        max_input_length=64, depth_inputs=inputs.model_copy(update={"sentence_ids": "shuffled"})
    )
    layout = pair_layout(tokenizer.vocab_size, 0)
    path = tmp_path / "pairs.jsonl"
    ordered = load_pairs("train", path, ordered_cfg, tokenizer, layout).pairs
    tokens = depth_marks(tokenizer, inputs).sentences.tolist()

    def check(marked, plain) -> list[int]:
        ids = marked.input_ids.tolist()
        assert [t if t not in tokens else -1 for t in ids] == [
            t if t not in tokens else -1 for t in plain.input_ids.tolist()
        ]
        drawn = [t for t in ids if t in tokens]
        assert len(set(drawn)) == len(drawn) == 3
        assert marked.input_types.tolist() == plain.input_types.tolist()
        return drawn

    train = load_pairs("train", path, shuffled_cfg, tokenizer, layout, seed=3)
    stream, again = PairDataset(train, seed=3), PairDataset(train, seed=3)
    first_marks, draws = set(), []
    for index in range(40 * len(rows)):
        sample = stream.sample(index)
        assert sample.input_ids.tolist() == again.sample(index).input_ids.tolist()
        drawn = check(sample, ordered[sample.index])
        if sample.index == 0:
            first_marks.add(drawn[0])
            draws.append(drawn)
    assert len(first_marks) >= 15  # of 20, over 40 epochs: every token can mark sentence 1
    assert len({tuple(d) for d in draws}) >= 35  # drawn anew each epoch
    valid = load_pairs("valid", path, shuffled_cfg, tokenizer, layout, seed=3).pairs
    again_valid = load_pairs("valid", path, shuffled_cfg, tokenizer, layout, seed=3).pairs
    assert [p.input_ids.tolist() for p in valid] == [p.input_ids.tolist() for p in again_valid]
    assert len({tuple(check(p, o)) for p, o in zip(valid, ordered)}) > 1


def depth_code_metric(task_labels: dict, predictions: list[str], references: list[str], seed: int):
    """compute_fine_tune_metrics: a prediction outside the labels becomes a random other label;
    then GLUE's accuracy and F1 of class 1 over the label ids."""
    label_to_id = {word: index for index, word in task_labels.items()}
    rng = random.Random(seed)
    converted = []
    for p, r in zip(predictions, references):
        if p in label_to_id:
            converted.append(label_to_id[p])
        else:
            converted.append(label_to_id[rng.choice(sorted(set(label_to_id) - {r}))])
    truth = [label_to_id[r] for r in references]
    accuracy = float(np.mean([p == t for p, t in zip(converted, truth)]))
    tp = sum(p == t == 1 for p, t in zip(converted, truth))
    f1 = 2 * tp / (sum(p == 1 for p in converted) + sum(t == 1 for t in truth))
    return {"accuracy": accuracy, "f1": f1}


def test_teacher_forced_scoring_counts_a_non_label_as_a_wrong_label(
    depth_tokenizer, tmp_path
) -> None:
    _, tokenizer = depth_tokenizer
    mrpc = get_task("mrpc", "depth")
    rng = random.Random(0)
    references = [rng.choice(mrpc.label_words) for _ in range(60)]
    predictions = [rng.choice([*mrpc.label_words, "equiv", ""]) for _ in range(60)]
    rows = [Pair(np.ones(1), np.ones(1), i, target_text=r) for i, r in enumerate(references)]
    pairs = PairSet("valid", tmp_path, rows, "text", mrpc.metrics, mrpc.label_words)
    outputs = [tokenizer.encode(p) for p in predictions]
    ours = score(pairs, outputs, tokenizer, None, protocol="teacher_forced")
    for seed in range(3):  # which wrong label the code draws changes nothing (two classes)
        assert ours == pytest.approx(
            depth_code_metric(DEPTH_GLUE["mrpc"][4], predictions, references, seed)
        )
    generated = score(pairs, outputs, tokenizer, None, protocol="generate")
    assert generated["f1"] != ours["f1"]  # T5's rule: a non-label is the negative class


def test_teacher_forced_stsb_rounds_and_scores_a_non_number_as_the_farthest() -> None:
    """STS-B: round(float(x) / 0.2) * 0.2 for both; a non-number 5.0 below 2.5, else 0.0."""
    from synthlm.finetune.predict import depth_scoring

    assert depth_scoring(["free text"], ["a reference"], None) == ["free text"]  # NI: as decoded
    predictions = ["3.9", "x", "1.1", "?"]
    references = ["3.8000000000000003", "1.0", "1.2000000000000002", "4.0"]
    assert depth_scoring(predictions, references, None, regression=True) == [
        str(round(3.9 / 0.2) * 0.2),
        "5.0",
        str(round(1.1 / 0.2) * 0.2),
        "0.0",
    ]


# ---------------------------------------------------------------------------------------------
# The command


@pytest.mark.slow
def test_depth_finetuning_runs_through_the_command(
    tmp_path, glue, t5_data, depth_tokenizer
) -> None:
    _, tokenizer = depth_tokenizer
    tokenizer.save(tmp_path / "tok")
    config = {
        "run_dir": str(tmp_path / "run"),
        "seed": 0,
        "mode": "ft",
        "model": TINY_T5,
        "finetune": {
            "task": "sst2",
            "prompts": "depth",
            "depth_inputs": {"splitter": "pysbd"},
            "eval_protocol": "teacher_forced",
            "max_input_length": 48,
            "max_target_length": 16,
            "tokenizer": str(tmp_path / "tok"),
            **{k: str(v) for k, v in glue.items()},
        },
        "optim": {"name": "adamwscale", "lr": 2e-2, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "train": {"max_steps": 40, "batch_size": 16, "log_every": 10, "eval_every": 20},
        "logging": {"tensorboard": False, "progress": False},
    }
    path = write_config(tmp_path / "ft.yaml", config)
    done = synthlm("train", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    evals = [r for r in read_records(tmp_path / "run") if "eval/valid/accuracy" in r]
    assert [r["step"] for r in evals] == [20, 40]
    assert evals[-1]["eval/valid/accuracy"] >= 0.6
    assert evals[-1]["eval/valid/loss"] < evals[0]["eval/valid/loss"]

    predicted = synthlm("train", str(path), "predict_only=true", "--quiet")
    assert predicted.returncode == 0, predicted.stderr
    lines = (tmp_path / "run" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(r["input"].startswith("sst2: sentence: ") for r in records)
    assert all(r["prediction"] in ("negative", "positive") for r in records)

    with pytest.raises(ConfigError, match="prompts: depth picks the prompts of finetune.task"):
        load_run_config([path], ["finetune.task=null"])
    unmarked = synthlm("train", str(path), f"finetune.tokenizer={t5_data['tok']}", "--dry-run")
    assert unmarked.returncode == 2 and "the tokenizer has no <eosen>" in unmarked.stderr
