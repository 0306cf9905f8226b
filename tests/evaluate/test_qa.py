"""Closed-book QuALITY evaluation: the log-likelihood scorer and the chain-of-thought parser."""

from __future__ import annotations

import json
import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from synthlm.evaluate.qa import cot_metrics, evaluate_qa, loglik_metrics, parse_choice, read_qa


def byte_tokenizer() -> PreTrainedTokenizerFast:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"</s>": 0, "<pad>": 1, **{c: i + 2 for i, c in enumerate(alphabet)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>")


def rigged_model(tokenizer, favourite: str) -> LlamaForCausalLM:
    """A tiny Llama that always predicts ``favourite``: constant hidden state, one hot lm_head row."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:] = torch.ones(16)
        model.lm_head.weight.zero_()
        model.lm_head.weight[tokenizer.convert_tokens_to_ids(favourite)] = 5.0
    return model


@pytest.fixture
def qa_file(tmp_path):
    articles = [
        {
            "article_id": "1",
            "title": "Story one",
            "author": "A",
            "article": "text one",
            "questions": [
                {
                    "question": "What is it?",
                    "options": ["abcd", "xxxx", "efgh", "ijkl"],
                    "gold_label": 2,
                    "difficult": 0,
                },
                {
                    "question": "Who?",
                    "options": ["xxxx", "mnop", "qrst", "uvwy"],
                    "gold_label": 1,
                    "difficult": 1,
                },
            ],
        },
        {
            "article_id": "2",
            "title": "Story two",
            "author": "B",
            "article": "text two",
            "questions": [
                {
                    "question": "Where?",
                    "options": ["abab", "cdcd", "efef", "xxxx"],
                    "gold_label": 1,
                    "difficult": 0,
                },
                {
                    "question": "When?",
                    "options": ["ghgh", "ijij", "xxxx", "klkl"],
                    "gold_label": 3,
                    "difficult": 1,
                },
            ],
        },
    ]
    path = tmp_path / "quality.json"
    path.write_text(json.dumps(articles))
    return path


def test_loglik_scorer_picks_the_option_the_model_prefers(tmp_path, qa_file):
    tokenizer = byte_tokenizer()
    rigged_model(tokenizer, "x").save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    report, path = evaluate_qa(
        tmp_path / "ckpt", qa_file, scorer="loglik", out=tmp_path / "qa.json", device="cpu"
    )
    metrics = report["qa"]["loglik"]
    # the model always picks "xxxx": right on questions 1, 2 and 4, wrong on 3
    assert metrics["acc"] == pytest.approx(0.75)
    assert metrics["acc/difficult"] == pytest.approx(1.0) and metrics["acc/easy"] == pytest.approx(
        0.5
    )
    assert json.loads(path.read_text())["qa"]["loglik"]["n"] == 4
    predictions = json.loads((tmp_path / "qa.predictions.json").read_text())
    assert [p["loglik"]["pred"] for p in predictions] == [1, 0, 3, 2]


def test_read_qa_uses_zero_based_gold_answers(qa_file):
    items = read_qa(qa_file)
    assert [i.answer for i in items] == [1, 0, 0, 2]
    assert [i.difficult for i in items] == [False, True, False, True]


def test_a_file_without_the_difficult_flag_reports_no_hard_or_easy_subsets(tmp_path, qa_file):
    """No flag is not "every question easy": such a file gets overall figures only."""
    articles = json.loads(qa_file.read_text())
    for article in articles:
        for question in article["questions"]:
            del question["difficult"]
    (tmp_path / "flagless.json").write_text(json.dumps(articles))
    items = read_qa(tmp_path / "flagless.json")
    assert [i.difficult for i in items] == [None] * 4
    metrics = loglik_metrics(items, [{"pred": 1, "pred_norm": 1}] * 4)
    assert set(metrics) == {"acc", "acc_norm", "n"}
    assert set(cot_metrics(items, [{"pred": 1}] * 4)) == {
        "accuracy_attempted", "attempt_rate", "accuracy_all", "n",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The keeper stays. Answer: C", 2),
        ("so the answer is (B).", 1),
        ("Answer: a", None),  # lowercase is not a choice letter
        ("I think it is B.", None),  # no final answer given
        ("Answer: B or C", None),  # two letters: ambiguous
        ("Answer: A, D", None),
        ("first Answer: A\nthen on reflection Answer: D", 3),  # the last answer counts
        ("Answer: E", None),  # not one of four options
    ],
)
def test_cot_parser(text, expected):
    assert parse_choice(text, 4) == expected


def test_cot_metrics_separate_attempted_from_all(qa_file):
    items = read_qa(qa_file)
    predictions = [{"pred": 1}, {"pred": None}, {"pred": 2}, {"pred": None}]
    metrics = cot_metrics(items, predictions)
    assert metrics["attempt_rate"] == 0.5
    assert metrics["accuracy_attempted"] == 0.5
    assert metrics["accuracy_all"] == 0.25


def test_both_scorers_report_an_empty_subset_as_none(qa_file):
    """With no hard question in the file, acc/difficult is None (undefined), not missing:
    loglik and cot results then have the same keys, and a table over runs has no holes."""
    easy = [item for item in read_qa(qa_file) if not item.difficult]
    loglik = loglik_metrics(easy, [{"pred": 2, "pred_norm": 1}, {"pred": 0, "pred_norm": 1}])
    assert loglik == {
        "acc": 0.5, "acc_norm": 0.5, "acc/difficult": None, "acc_norm/difficult": None,
        "acc/easy": 0.5, "acc_norm/easy": 0.5, "n": 2,
    }  # fmt: skip
    cot = cot_metrics(easy, [{"pred": 1}, {"pred": None}])
    assert cot["accuracy_all/difficult"] is None and cot["accuracy_all/easy"] == 0.5


def test_eval_cli_runs_qa_with_both_scorers(tmp_path, qa_file):
    from cli_runner import run_cli

    tokenizer = byte_tokenizer()
    rigged_model(tokenizer, "x").save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    result = run_cli(
        "eval",
        str(tmp_path / "ckpt"),
        "--qa",
        str(qa_file),
        "--qa-scorer",
        "both",
        "--qa-max-new-tokens",
        "8",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "out.json"),
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "out.json").read_text())["qa"]
    assert saved["loglik"]["acc"] == pytest.approx(0.75)
    # the rigged model only ever writes "xxxx...": it never gives a parseable answer
    assert saved["cot"]["attempt_rate"] == 0.0 and saved["cot"]["accuracy_all"] == 0.0
    bad = run_cli(
        "eval",
        str(tmp_path / "ckpt"),
        "--qa",
        str(qa_file),
        "--qa-scorer",
        "vote",
        "--device",
        "cpu",
    )
    assert bad.returncode == 2 and "--qa-scorer 'vote'" in bad.stderr


# -- the paper's protocol (Yang et al. 2024), against tests/entigraph_paper.py --------------------


def test_entigraph_protocol_prompt_is_the_papers():
    import entigraph_paper as paper
    from synthlm.evaluate.qa import QAItem
    from synthlm.evaluate.qa_protocols import entigraph_protocol

    item = QAItem(
        "Les Mis",
        "What is the setting?",
        ("London", "Madrid", "Paris", "Rome"),
        2,
        False,
        "Hugo, Victor",
        "1862",
    )
    assert entigraph_protocol().prompt(item) == paper.qa_prompt(
        "Les Mis", "Hugo, Victor", "1862", item.question, list(item.options)
    )


def test_entigraph_protocol_sampling_stops_and_parser_are_the_papers():
    import entigraph_paper as paper
    from synthlm.evaluate.qa_protocols import cut_at_stop, entigraph_protocol

    protocol = entigraph_protocol()
    assert (protocol.temperature, protocol.max_new_tokens, protocol.samples) == (0.1, 300, 8)
    assert sorted(protocol.stop) == sorted(paper.answer_strings())
    for raw in (
        "It is Paris. Answer: C.\nmore",
        "Answer: AB.\n",
        "Answer: D.\n\n## Example 7",
        "no answer",
    ):
        text, stopped = cut_at_stop(raw, protocol.stop)
        expected = paper.parse_answer(text) if stopped else None
        assert (protocol.parse(text, 4) if stopped else None) == expected


def test_nothing_attempted_is_undefined_not_zero(qa_file):
    metrics = cot_metrics(read_qa(qa_file), [{"pred": None}] * 4)
    assert metrics["accuracy_attempted"] is None and metrics["attempt_rate"] == 0.0


def test_title_split_is_first_fifth_val_rest_test():
    from synthlm.evaluate.qa import QAItem
    from synthlm.evaluate.qa_protocols import title_split

    items = [QAItem(t, "q?", ("a", "b", "c", "d"), 0, False, "A", "1") for t in "JIHGFEDCBAJ"]
    split = title_split(items)
    assert sorted(items[i].title for i in split["val"]) == ["A", "B"]
    assert len(split["test"]) == 9


def test_entigraph_protocol_runs_end_to_end_with_bos(tmp_path, qa_file):
    """The rigged model ends every draw at once (EOS): 8 draws, nothing attempted, accuracy null."""
    from tokenizers import processors

    import entigraph_paper as paper

    articles = json.loads(qa_file.read_text())
    for article in articles:
        article["year"] = 1950
    qa_file.write_text(json.dumps(articles))
    backend = byte_tokenizer().backend_tokenizer
    backend.add_special_tokens(["<s>"])
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", bos_token="<s>"
    )
    rigged = rigged_model(tokenizer, "</s>")
    rigged.config.max_position_embeddings = 4096  # the paper's prompt is ~2.9K byte tokens
    model = LlamaForCausalLM(rigged.config)
    model.load_state_dict(rigged.state_dict())
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    _, path = evaluate_qa(
        tmp_path / "ckpt",
        qa_file,
        scorer="cot",
        protocol="entigraph",
        limit=1,
        out=tmp_path / "out.json",
        device="cpu",
    )
    saved = json.loads(path.read_text())["qa"]["cot"]
    assert (
        saved["protocol"] == "entigraph"
        and saved["accuracy_attempted"] is None
        and saved["attempt_rate"] == 0.0
    )
    prediction = json.loads((tmp_path / "out.predictions.json").read_text())[0]["cot"]
    assert prediction["draws"] == 8 and prediction["pred"] is None
    article, question = articles[0], articles[0]["questions"][0]
    prompt = paper.qa_prompt(
        article["title"], article["author"], "1950", question["question"], question["options"]
    )
    assert prediction["prompt_tokens"] == len(prompt.encode()) + 1  # byte tokens + BOS


def test_entigraph_protocol_refuses_questions_without_year(tmp_path, qa_file):
    from synthlm.errors import UserError

    with pytest.raises(UserError, match="prints each article's year"):
        evaluate_qa(tmp_path / "no-ckpt", qa_file, scorer="cot", protocol="entigraph")


def test_several_qa_files_are_one_set(tmp_path, qa_file):
    """QuALITY comes as train + dev; the paper scores (and splits) both together."""
    articles = json.loads(qa_file.read_text())
    (tmp_path / "train.json").write_text(json.dumps(articles[:1]))
    (tmp_path / "dev.json").write_text(json.dumps(articles[1:]))
    items = read_qa([tmp_path / "train.json", tmp_path / "dev.json"])
    assert [i.question for i in items] == [i.question for i in read_qa(qa_file)]


def test_user_prompt_template_renders_each_question(tmp_path):
    from synthlm.errors import UserError
    from synthlm.evaluate.qa import QAItem
    from synthlm.evaluate.qa_protocols import build_protocol

    template = tmp_path / "prompt.txt"
    template.write_text("$title ($author, $year) costs $$5\nQ: $question\n${choices}A:")
    protocol = build_protocol("synthlm", prompt_file=template, temperature=0.3, stop=["\n\n"])
    item = QAItem(
        "Moby", "Who?", ("Ahab", "Nemo", "Hook", "Flint"), 0, None, "Melville, Herman", "1851"
    )
    assert (
        protocol.prompt(item)
        == "Moby (Herman Melville, 1851) costs $5\nQ: Who?\nA. Ahab\nB. Nemo\nC. Hook\nD. Flint\nA:"
    )
    assert (protocol.temperature, protocol.stop) == (0.3, ("\n\n",))
    template.write_text("$story")
    with pytest.raises(UserError, match=r"unknown placeholder\(s\) \$story"):
        build_protocol("synthlm", prompt_file=template)
    with pytest.raises(UserError, match="fixes its own shots and sampling"):
        build_protocol("entigraph", temperature=0.5)
    with pytest.raises(UserError, match="--qa-shots: the entigraph protocol"):
        build_protocol("entigraph", shots=3)
    template.write_text("$question")
    with pytest.raises(UserError, match="--qa-shots: --qa-prompt is the whole prompt"):
        build_protocol("synthlm", prompt_file=template, shots=1)


def test_eval_cli_names_qa_and_the_path_of_a_missing_file(tmp_path, qa_file):
    """The QA file is read by the documents reader of entigraph: its error must not say --docs."""
    from cli_runner import run_cli

    tokenizer = byte_tokenizer()
    rigged_model(tokenizer, "x").save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    missing = tmp_path / "missing.json"
    result = run_cli("eval", str(tmp_path / "ckpt"), "--qa", str(qa_file), "--qa", str(missing))
    assert result.returncode == 2
    assert f"error: --qa {missing}: QA file not found" in result.stderr
    assert "documents" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "eval").exists()


def test_qa_without_questions_names_every_file(tmp_path, qa_file):
    from synthlm.errors import UserError

    articles = json.loads(qa_file.read_text())
    for article in articles:
        article["questions"] = []
    (tmp_path / "a.json").write_text(json.dumps(articles))
    files = [tmp_path / "a.json", tmp_path / "a.json"]
    with pytest.raises(UserError, match="^" + re.escape(f"--qa {files[0]}, {files[1]}: no ques")):
        read_qa(files)


class ScriptedSampler:
    """Stands in for ``model.generate``: returns fixed replies, one per sample, with processed
    scores that give each token of row ``r`` the logit ``logits[r]`` (its padding
    ``pad_logits[r]``) against 0 for every other id."""

    def __init__(self, tokenizer, replies, logits, pad_logits):
        self.tokenizer, self.replies = tokenizer, replies
        self.logits, self.pad_logits = logits, pad_logits
        self.configs = []

    def generate(self, input_ids, attention_mask, generation_config, tokenizer):
        from types import SimpleNamespace

        self.configs.append(generation_config)
        rows = [self.tokenizer(r, add_special_tokens=False)["input_ids"] for r in self.replies]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        generated = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        scores = []
        for t in range(width):
            step = torch.zeros(len(rows), len(self.tokenizer))
            for i, row in enumerate(rows):
                step[i, generated[i, t]] = self.logits[i] if t < len(row) else self.pad_logits[i]
            scores.append(step)
        prompt = input_ids.repeat(len(rows), 1)
        return SimpleNamespace(sequences=torch.cat([prompt, generated], 1), scores=tuple(scores))


def test_entigraph_protocol_keeps_the_attempt_of_highest_cumulative_logprob():
    """Not the first sample that ends on an answer: the paper's vLLM ranks the 8 samples by
    cumulative log-probability before inference/llama.py keeps the first answer string."""
    import math

    import entigraph_paper as paper
    from synthlm.evaluate.qa import QAItem
    from synthlm.evaluate.qa_protocols import entigraph_protocol, score_generate

    tokenizer = byte_tokenizer()
    replies = [
        "Guess. Answer: A.\n",  # first drawn, attempted, least likely
        "I do not know the answer to this one</s>",  # most likely, but no answer string
        "It is C. Answer: C.\n",  # attempted and most likely among the attempts: the pick
        "Answer: B.\n",  # attempted; first if padding were counted
        *["Hmm</s>"] * 4,
    ]
    logits = [0.0, 10.0, 5.0, 1.0, 10.0, 10.0, 10.0, 10.0]
    pad_logits = [50.0, 0.0, -50.0, 50.0, 0.0, 0.0, 0.0, 0.0]
    sampler = ScriptedSampler(tokenizer, replies, logits, pad_logits)
    item = QAItem("T", "Which?", ("a", "b", "c", "d"), 2, False, "A", "1")
    [prediction] = score_generate(sampler, tokenizer, [item], "cpu", entigraph_protocol())
    assert sampler.configs[0].num_return_sequences == 8

    vocab = len(tokenizer)

    def vllm_output(reply: str, logit: float) -> tuple[str, str | None, float]:
        """(text, stop_reason, cumulative_logprob) as vLLM reports it: every generated token
        (byte tokens here) through the end of the stop string, none of the padding."""
        stops = [s for s in paper.answer_strings() if s in reply]
        kept = reply.split("</s>")[0]
        if stops:
            kept = reply[: reply.index(stops[0]) + len(stops[0])]
        per_token = logit - math.log(math.exp(logit) + vocab - 1)
        text = kept[: -len(stops[0])] if stops else kept
        return text, stops[0] if stops else None, per_token * len(kept.encode())

    outputs = [vllm_output(r, c) for r, c in zip(replies, logits)]
    assert paper.pick_prediction(outputs) == 2  # C
    assert prediction["pred"] == paper.pick_prediction(outputs)
    assert prediction["generation"] == "It is C. Answer: C.\n"
    assert prediction["logprob"] == pytest.approx(outputs[2][2], rel=1e-5)
    assert (prediction["draws"], prediction["attempts"]) == (8, 3)


def test_sample_logprob_is_under_the_temperature_scaled_distribution(tmp_path):
    """A real model: the ranking score is sum log softmax(logits / T)[token] over the generated
    tokens (vLLM's cumulative_logprob), recomputed here with one forward pass."""
    from synthlm.evaluate.qa import QAItem
    from synthlm.evaluate.qa_protocols import (
        Protocol,
        draw_samples,
        generation_config,
    )

    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    model = rigged_model(tokenizer, "x")
    letters = tokenizer.convert_tokens_to_ids(list("abcdefghijklmnopqrstuvwxyz"))
    with torch.no_grad():  # constant hidden state: logits are row sums; only letters are likely
        model.lm_head.weight.fill_(-10.0)
        model.lm_head.weight[letters] = torch.randn(len(letters), 16) * 0.3
    model.eval()
    protocol = Protocol(
        "t",
        prompt=lambda item: item.question,
        parse=parse_choice,
        temperature=0.7,
        max_new_tokens=12,
        stop=(),
    )
    item = QAItem("T", "Which one?", ("a", "b", "c", "d"), 0, None)
    encoded = tokenizer(protocol.prompt(item), return_tensors="pt")
    torch.manual_seed(1)
    [sample] = draw_samples(
        model, tokenizer, encoded, generation_config(protocol, tokenizer), protocol
    )
    generated = tokenizer(sample.text, add_special_tokens=False)["input_ids"]
    assert len(generated) == 12 and sample.text.isalpha()
    full = torch.tensor([encoded["input_ids"][0].tolist() + generated])
    with torch.no_grad():
        logits = model(full).logits[0].float()
    start = encoded["input_ids"].shape[1]
    expected = sum(
        float((logits[start + i - 1] / 0.7).log_softmax(-1)[token])
        for i, token in enumerate(generated)
    )
    assert sample.logprob == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_the_paper_hard_and_non_hard_test_accuracies_are_reported(qa_file):
    """performance_stats() in tasks/quality.py reports hard / non-hard accuracy per val / test."""
    items = read_qa(qa_file)
    predictions = [{"pred": 1}, {"pred": 0}, {"pred": 3}, {"pred": None}]
    metrics = cot_metrics(items, predictions, {"val": [0, 1], "test": [2, 3]})
    assert metrics["accuracy_attempted/val/difficult"] == 1.0  # question 2 (difficult), right
    assert metrics["accuracy_attempted/val/easy"] == 1.0
    assert metrics["accuracy_attempted/test/easy"] == 0.0  # question 3: pred D, gold A
    assert metrics["attempt_rate/test/difficult"] == 0.0
    assert metrics["accuracy_attempted/test/difficult"] is None


def test_an_empty_subset_is_reported_as_null_as_the_original_reports_nan(qa_file):
    """performance_stats() always reports val and test with their hard / non-hard parts (NaN
    when empty): so does synthlm (null), e.g. a walkthrough file too small for a val split."""
    items = read_qa(qa_file)
    predictions = [{"pred": 1}, {"pred": 0}, {"pred": 3}, {"pred": None}]
    metrics = cot_metrics(items, predictions, {"val": [], "test": [0, 1, 2, 3]})
    for key in ("accuracy_attempted", "attempt_rate", "accuracy_all"):
        for part in ("val", "val/difficult", "val/easy"):
            assert metrics[f"{key}/{part}"] is None, (key, part)
    assert metrics["attempt_rate/test"] == 0.75 and metrics["accuracy_all"] is not None


def test_acc_norm_divides_by_the_options_characters_as_lm_eval_does(monkeypatch):
    """lm-evaluation-harness's acc_norm divides each choice's log-likelihood by ``len(choice)``,
    the choice without the space that joins it to the prompt (though the space is scored).
    Fixed scores show the difference: per character of "a" and "bcd" option 1 wins (-1 < -0.73);
    counting the space, option 0 would (-0.5 > -0.55). The model is stubbed: only the
    normalisation is under test."""
    from synthlm.evaluate import qa

    monkeypatch.setattr(qa, "option_logliks", lambda *args: [-1.0, -2.2])
    item = qa.QAItem("t", "q?", ("a", "bcd"), 1, None)
    [prediction] = qa.score_loglik(None, None, [item], "cpu")
    assert prediction["pred"] == 0
    assert prediction["pred_norm"] == 1


def test_option_logliks_equal_lm_evals_with_a_sentencepiece_tokenizer():
    """The real harness (HFLM.loglikelihood) on the same model, prompts and options. With a
    SentencePiece tokenizer as Llama 2's tokenizer.json has it (a "▁" prepended, spaces as
    "▁"), " Paris" encoded alone starts with an extra "▁" piece that it does not have after
    "Answer:"; the harness scores the tokens of the joined text past the prompt's, and so must
    we (we scored the extra piece: up to 7 nats apart)."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from tokenizers import normalizers, trainers

    from synthlm.evaluate.qa import option_logliks

    lines = ["Question: what is the capital of France?\nAnswer: Paris", "Answer: London or Rome"]
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    backend.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    backend.train_from_iterator(
        lines * 20, trainers.BpeTrainer(vocab_size=60, special_tokens=["<pad>", "</s>"])
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", pad_token="<pad>"
    )
    prompt, options = "Question: what is the capital of France?\nAnswer:", ["Paris", "Rome"]
    assert (
        tokenizer(" Paris")["input_ids"]
        != tokenizer(prompt + " Paris")["input_ids"][len(tokenizer(prompt)["input_ids"]) :]
    ), "the case under test: the option alone tokenizes differently"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    ours = option_logliks(model, tokenizer, prompt, options, "cpu")
    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1, max_length=128)
    requests = [
        Instance("loglikelihood", {}, (prompt, " " + option), i) for i, option in enumerate(options)
    ]
    theirs = [ll for ll, _ in harness.loglikelihood(requests, disable_tqdm=True)]
    assert ours == pytest.approx(theirs, abs=1e-4)
