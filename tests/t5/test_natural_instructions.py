"""Super-NaturalInstructions pairs as Tk-Instruct and nanoT5 build them. The prompt rule is
restated from ``DataCollatorForNI`` (nanoT5/utils/copied_utils.py, Tk-Instruct's
src/ni_collator.py) and the instance selection from ``ni_dataset.py``, independently of
synthlm's implementation; ROUGE-L is recomputed from NLTK's Porter stemmer and an LCS."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import string

import numpy as np
import pytest
from t5_run_helpers import TINY_T5, read_records, synthlm, write_config

from synthlm.errors import ConfigError, UserError
from synthlm.finetune.config import DepthInputsConfig, FinetuneConfig, NaturalInstructionsConfig
from synthlm.finetune.data import PairDataset, load_pairs
from synthlm.finetune.metrics import compute_metrics, rouge_l_stemmed
from synthlm.finetune.natural_instructions import Instance, build_prompts, read_instances
from synthlm.finetune.pair_plan import pair_layout
from synthlm.finetune.predict import prediction_records, score
from synthlm.objectives.text_to_text import TextToText
from synthlm.tokenizers import load_tokenizer

WORDS = ["alpha", "beta", "gamma", "delta", "running", "jumped", "cats", "a", "the", "?", "!"]


def tk_instruct_source(
    instance: dict, cfg: dict, length, max_source_length: int, copy: str = "tk_instruct"
) -> str:
    """DataCollatorForNI.__call__ for one instance (tk_instruct False), as written there.

    ``copy``: ``tk_instruct`` (Tk-Instruct's and nanoT5's: ``len(tokenizer(text)) <= max``),
    ``depth_t5`` (the DEPTH code's, data_collator_utils.py, over a T5 tokenizer:
    ``len(tokenizer(text, max_length=max)["input_ids"]) < max``, the call cutting at max) or
    ``depth_depth`` (the same over its DepthTokenizer, whose ``__call__`` wraps one text in a
    batch, so ``["input_ids"]`` is a list of one row)."""

    def fits(text: str) -> bool:
        if copy == "tk_instruct":
            return length(text) <= max_source_length
        ids = list(range(length(text)))[:max_source_length]  # max_length cuts the count
        input_ids = [ids] if copy == "depth_depth" else ids
        return len(input_ids) < max_source_length

    task_input = ""
    task_input += "Now complete the following example -\n"
    task_input += f"Input: {instance['Instance']['input'].strip()}"
    if task_input[-1] not in string.punctuation:
        task_input += "."
    task_input += "\n"
    task_input += "Output: "
    task_name = ""
    if cfg["add_task_name"]:
        task_name += instance["Task"] + ". "
    definition = ""
    if cfg["add_task_definition"]:
        if isinstance(instance["Definition"], list):
            definition = "Definition: " + instance["Definition"][0].strip()
        else:
            definition = "Definition: " + instance["Definition"].strip()
        if definition[-1] not in string.punctuation:
            definition += "."
        definition += "\n\n"
    pos_examples = []
    for idx, pos_example in enumerate(instance["Positive Examples"][: cfg["num_pos_examples"]]):
        pos_example_str = f" Positive Example {idx + 1} -\n"
        pos_example_str += f"Input: {pos_example['input'].strip()}"
        if pos_example_str[-1] not in string.punctuation:
            pos_example_str += "."
        pos_example_str += "\n"
        pos_example_str += f" Output: {pos_example['output'].strip()}"
        if pos_example_str[-1] not in string.punctuation:
            pos_example_str += "."
        pos_example_str += "\n"
        if cfg["add_explanation"] and "explanation" in pos_example:
            pos_example_str += f" Explanation: {pos_example['explanation'].strip()}"
            if pos_example_str[-1] not in string.punctuation:
                pos_example_str += "."
            pos_example_str += "\n"
        pos_example_str += "\n"
        if fits(definition + " ".join(pos_examples) + pos_example_str + task_input):
            pos_examples.append(pos_example_str)
        else:
            break
    neg_examples = []
    for idx, neg_example in enumerate(instance["Negative Examples"][: cfg["num_neg_examples"]]):
        neg_example_str = f" Negative Example {idx + 1} -\n"
        neg_example_str += f"Input: {neg_example['input'].strip()}"
        if neg_example_str[-1] not in string.punctuation:
            neg_example_str += "."
        neg_example_str += "\n"
        neg_example_str += f" Output: {neg_example['output'].strip()}"
        if neg_example_str[-1] not in string.punctuation:
            neg_example_str += "."
        neg_example_str += "\n"
        if cfg["add_explanation"] and "explanation" in neg_example:
            neg_example_str += f" Explanation: {neg_example['explanation'].strip()}"
            if neg_example_str[-1] not in string.punctuation:
                neg_example_str += "."
            neg_example_str += "\n"
        neg_example_str += "\n"
        if fits(
            definition
            + " ".join(pos_examples)
            + " ".join(neg_examples)
            + neg_example_str
            + task_input
        ):
            neg_examples.append(neg_example_str)
        else:
            break
    return task_name + definition + "".join(pos_examples) + "".join(neg_examples) + task_input


def phrase(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def example(rng: random.Random) -> dict:
    out = {"input": phrase(rng, rng.randint(1, 6)), "output": phrase(rng, rng.randint(1, 3))}
    if rng.random() < 0.5:
        out["explanation"] = phrase(rng, 4)
    return out


def task_json(rng: random.Random, instances: int) -> dict:
    definition = phrase(rng, rng.randint(3, 12))
    return {
        "Definition": [definition] if rng.random() < 0.5 else definition,
        "Positive Examples": [example(rng) for _ in range(rng.randint(0, 3))],
        "Negative Examples": [example(rng) for _ in range(rng.randint(0, 3))],
        "Instances": [
            {
                "id": f"i{k}",
                "input": phrase(rng, rng.randint(1, 8)),
                "output": [phrase(rng, rng.randint(1, 3)) for _ in range(rng.randint(1, 3))],
            }
            for k in range(instances)
        ],
    }


def word_count(text: str) -> int:
    return len(text.split()) + 1  # "+ </s>", as a tokenizer call counts it


FIT_RULES = {"within": "tk_instruct", "below": "depth_t5", "always": "depth_depth"}


@pytest.mark.parametrize("fit", sorted(FIT_RULES))
@pytest.mark.parametrize("seed", range(4))
def test_prompts_are_data_collator_for_nis(seed, fit) -> None:
    rng = random.Random(seed)
    flags = {
        "add_task_name": rng.random() < 0.5,
        "add_task_definition": rng.random() < 0.7,
        "num_pos_examples": rng.randint(0, 3),
        "num_neg_examples": rng.randint(0, 2),
        "add_explanation": rng.random() < 0.5,
    }
    cfg = NaturalInstructionsConfig(**flags, example_fit=fit)
    limit = rng.choice([12, 20, 40, 200])  # tight limits drop examples
    rows, instances = [], []
    for t in range(6):
        task = task_json(rng, 3)
        for row in task["Instances"]:
            rows.append({**task, "Task": f"task{t}", "Instance": row})
            definition = task["Definition"]
            instances.append(
                Instance(
                    f"task{t}",
                    definition[0] if isinstance(definition, list) else definition,
                    tuple(task["Positive Examples"]),
                    tuple(task["Negative Examples"]),
                    row["input"],
                    tuple(row["output"]),
                )
            )
    ours = build_prompts(instances, cfg, lambda texts: [word_count(t) for t in texts], limit)
    assert ours == [tk_instruct_source(r, flags, word_count, limit, FIT_RULES[fit]) for r in rows]


def test_the_fit_rules_differ_where_a_prompt_exactly_fills_the_input() -> None:
    """One example that brings the count to exactly the limit: Tk-Instruct keeps it, the DEPTH
    code's copy over a T5 tokenizer does not, over its DEPTH tokenizer it keeps every example."""
    task = {"Definition": "d", "Positive Examples": [{"input": "x", "output": "y"}] * 2}
    row = {**task, "Task": "t", "Negative Examples": [], "Instance": {"input": "i"}}
    instance = Instance("t", "d", tuple(task["Positive Examples"]), (), "i", ("o",))
    base = NaturalInstructionsConfig()
    flags = base.model_dump()
    one = word_count(tk_instruct_source(row, flags | {"num_pos_examples": 1}, word_count, 10**6))
    got = {}
    for fit, copy in FIT_RULES.items():
        cfg = base.model_copy(update={"example_fit": fit})
        prompt = build_prompts([instance], cfg, lambda ts: [word_count(t) for t in ts], one)[0]
        assert prompt == tk_instruct_source(row, flags, word_count, one, copy)
        got[fit] = prompt.count("Positive Example")
    assert got == {"within": 1, "below": 0, "always": 2}


# as the benchmark's task files write them (a list, the first one grouping the task)
CATEGORIES = (["Textual Entailment"], ["Question  Rewriting", "Misc."], ["Title Generation"])


def checkout(root, seed: int = 0, train_tasks: int = 3, test_tasks: int = 2, size: int = 120):
    """A natural-instructions checkout: tasks/*.json and splits/default/*_tasks.txt."""
    rng = random.Random(seed)
    (root / "tasks").mkdir(parents=True)
    (root / "splits" / "default").mkdir(parents=True)
    names = {"train": [], "test": []}
    for kind, count in (("train", train_tasks), ("test", test_tasks)):
        for _ in range(count):
            number = len(names["train"]) + len(names["test"])
            name = f"task{number:03d}_{kind}"
            task = task_json(rng, size) | {"Categories": CATEGORIES[number % len(CATEGORIES)]}
            (root / "tasks" / f"{name}.json").write_text(json.dumps(task), encoding="utf-8")
            names[kind].append(name)
    for kind, listed in names.items():
        path = root / "splits" / "default" / f"{kind}_tasks.txt"
        path.write_text("\n".join(listed) + "\n", encoding="utf-8")
    return root


def test_instances_are_drawn_as_ni_dataset_draws_them(tmp_path) -> None:
    """Training tasks: all instances, shuffled, the first N; test tasks: their first 100
    (the label-balanced evaluation set), shuffled, the first N; tasks in the split's order."""
    root = checkout(tmp_path / "ni", size=130)
    tasks = {p.stem: json.loads(p.read_text()) for p in (root / "tasks").glob("*.json")}
    cfg = NaturalInstructionsConfig(
        max_num_instances_per_task=50, max_num_instances_per_eval_task=30
    )
    train = read_instances(root, "train", cfg, seed=5)
    test = read_instances(root, "valid", cfg, seed=5)
    assert [x.task for x in train] == [
        n for n in sorted(tasks) if n.endswith("train") for _ in range(50)
    ]
    assert [x.task for x in test] == [
        n for n in sorted(tasks) if n.endswith("test") for _ in range(30)
    ]
    for instances, pool in ((train, slice(None)), (test, slice(0, 100))):
        for name in {x.task for x in instances}:
            allowed = {r["input"] for r in tasks[name]["Instances"][pool]}
            drawn = [x.input for x in instances if x.task == name]
            assert set(drawn) <= allowed and len(set(drawn)) > 1
    assert read_instances(root, "train", cfg, seed=5) == train  # seeded: the same draw
    assert read_instances(root, "train", cfg, seed=6) != train
    whole = read_instances(
        root, "valid", NaturalInstructionsConfig(max_num_instances_per_eval_task=None), 0
    )
    assert len(whole) == 2 * 100


def test_missing_files_are_named(tmp_path) -> None:
    root = checkout(tmp_path / "ni")
    with pytest.raises(UserError, match="splits/other/train_tasks.txt not found"):
        read_instances(root, "train", NaturalInstructionsConfig(split="other"), 0)
    first = (root / "splits" / "default" / "train_tasks.txt").read_text().split()[0]
    (root / "tasks" / f"{first}.json").unlink()
    with pytest.raises(UserError, match=f"task file .*{first}.json not found"):
        read_instances(root, "train", NaturalInstructionsConfig(), 0)


def test_training_draws_one_output_anew_each_epoch(t5_data, tmp_path) -> None:
    """The collator's random.choice over an instance's outputs, seeded by epoch and instance."""
    root = checkout(tmp_path / "ni", size=20)
    objective, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    del objective
    cfg = FinetuneConfig(train=root, max_input_length=256, max_target_length=64)
    layout = pair_layout(tokenizer.vocab_size, 0)
    pairs = load_pairs("train", root, cfg, tokenizer, layout, seed=3)
    assert pairs.metrics == ("rouge_l_stemmed",) and pairs.kind == "text"
    stream = PairDataset(pairs, seed=3)
    n = len(stream.pairs)
    several = [p.index for p in stream.pairs if p.alternatives]
    assert several
    seen: dict[int, set] = {i: set() for i in several}
    for epoch in range(8):
        for slot in range(n):
            pair = stream.sample(epoch * n + slot)
            if pair.index in seen:
                seen[pair.index].add(tuple(pair.target_ids.tolist()))
                assert any(np.array_equal(pair.target_ids, a) for a in pair.alternatives)
    assert any(len(v) > 1 for v in seen.values())
    again = PairDataset(pairs, seed=3)
    assert all(
        np.array_equal(again.sample(i).target_ids, stream.sample(i).target_ids)
        for i in range(3 * n)
    )


def porter_rouge_l(prediction: str, reference: str) -> float:
    """rouge_score's rougeL F-measure with use_stemmer=True, restated: lower case, runs of
    [a-z0-9] as tokens, words longer than 3 letters Porter-stemmed (NLTK), LCS F1."""
    import re

    from nltk.stem import porter

    stemmer = porter.PorterStemmer()

    def tokens(text: str) -> list[str]:
        words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
        return [stemmer.stem(w) if len(w) > 3 else w for w in words]

    p, r = tokens(prediction), tokens(reference)
    table = [[0] * (len(p) + 1) for _ in range(len(r) + 1)]
    for i, a in enumerate(r):
        for j, b in enumerate(p):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
            )
    lcs = table[-1][-1]
    if not p or not r or not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def test_rouge_l_stemmed_is_rouge_scores_with_the_porter_stemmer() -> None:
    rng = random.Random(0)
    predictions = [phrase(rng, rng.randint(0, 6)) for _ in range(50)] + ["The cats RUNNING!"]
    references = [phrase(rng, rng.randint(1, 6)) for _ in range(50)] + ["cat runs"]
    expected = np.mean([porter_rouge_l(p, r) for p, r in zip(predictions, references)])
    assert rouge_l_stemmed(predictions, references) == pytest.approx(expected)
    assert porter_rouge_l("The cats RUNNING!", "cat running") == pytest.approx(0.8)


def tk_instruct_scores(predictions: list[str], references: list[list[str]]) -> dict:
    """compute_metrics of Tk-Instruct (src/compute_metrics.py) and the benchmark's evaluation.py:
    ``metric_max_over_ground_truths`` of ROUGE-L (stemmed) and of exact match after
    normalize_answer (lower case, no punctuation, single spaces; the article removal is
    commented out there), averaged over predictions (x100 there, fractions here)."""

    def normalize(s: str) -> str:
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(s.split())

    rouge = np.mean(
        [max(porter_rouge_l(p, g) for g in gold) for p, gold in zip(predictions, references)]
    )
    em = np.mean(
        [
            max(normalize(p) == normalize(g) for g in gold)
            for p, gold in zip(predictions, references)
        ]
    )
    return {"rouge_l_stemmed_max": rouge, "exact_match_max": em}


def test_the_benchmarks_own_scores_take_the_best_reference() -> None:
    rng = random.Random(1)
    references = [
        [phrase(rng, rng.randint(1, 5)) for _ in range(rng.randint(1, 4))] for _ in range(60)
    ]
    predictions = [rng.choice([*refs, phrase(rng, 3)]) for refs in references]
    predictions += ["The Answer, a cat.", "an answer"]
    references += [["the answer a cat", "no"], ["answer"]]  # articles count in Tk's exact match
    expected = tk_instruct_scores(predictions, references)
    got = compute_metrics(list(expected), predictions, [r[0] for r in references], None, references)
    assert got == pytest.approx(expected)
    # "an answer" vs "answer": SQuAD's exact_match drops the article, Tk-Instruct's keeps it
    assert compute_metrics(["exact_match"], ["an answer"], ["answer"])["exact_match"] == 1.0
    assert compute_metrics(["exact_match_max"], ["an answer"], ["answer"])["exact_match_max"] == 0
    single = compute_metrics(["rouge_l_stemmed"], predictions, [r[-1] for r in references])
    assert got["rouge_l_stemmed_max"] > single["rouge_l_stemmed"]


def test_evaluation_pairs_keep_every_output_and_score_against_the_best(t5_data, tmp_path) -> None:
    root = checkout(tmp_path / "ni", size=20)
    objective, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    cfg = FinetuneConfig(
        valid=root,
        max_input_length=256,
        max_target_length=64,
        metrics=["rouge_l_stemmed", "rouge_l_stemmed_max", "exact_match_max"],
    )
    layout = pair_layout(tokenizer.vocab_size, 0)
    valid = load_pairs("valid", root, cfg, tokenizer, layout, seed=3)
    tasks = {p.stem: json.loads(p.read_text()) for p in (root / "tasks").glob("*.json")}
    outputs = {
        (name, tuple(i["output"])) for name, task in tasks.items() for i in task["Instances"]
    }
    assert all(any(p.references == o for _, o in outputs) for p in valid.pairs)
    assert all(p.target_text in p.references for p in valid.pairs)
    assert any(len(set(p.references)) > 1 for p in valid.pairs)
    # predict each instance's *other* output: the drawn reference misses, the best one hits
    texts = [
        next((r for r in p.references if r != p.target_text), p.target_text) for p in valid.pairs
    ]
    ids = [tokenizer.encode_batch([t])[0] for t in texts]
    scored = score(valid, ids, tokenizer, layout)
    decoded = [tokenizer.decode(i, skip_special=True).strip() for i in ids]
    assert decoded == texts  # the byte-level test tokenizer round-trips these phrases
    expected = tk_instruct_scores(decoded, [list(p.references) for p in valid.pairs])
    assert {k: scored[k] for k in expected} == pytest.approx(expected)
    assert scored["exact_match_max"] == 1.0
    assert scored["rouge_l_stemmed"] < scored["rouge_l_stemmed_max"]
    records = prediction_records(valid, ids, tokenizer, layout)
    assert [r["references"] for r in records] == [list(p.references) for p in valid.pairs]
    del objective


def tk_instruct_grouped_scores(
    predictions: list[str], references: list[list[str]], groups: list[str]
) -> dict:
    """compute_grouped_metrics (Tk-Instruct's src/compute_metrics.py, the benchmark's
    eval/automatic/evaluation.py): the examples of each group scored on their own by
    compute_metrics, keyed "<metric>_for_<group>"."""
    results = {}
    for group in set(groups):
        rows = [i for i, g in enumerate(groups) if g == group]
        scores = tk_instruct_scores([predictions[i] for i in rows], [references[i] for i in rows])
        results.update({f"{metric}_for_{group}": value for metric, value in scores.items()})
    return results


def test_scores_per_category_and_task_are_tk_instructs_grouped_metrics(t5_data, tmp_path):
    """run_s2s.py's compute_ni_metrics: overall, per task (the instance's "Task") and per
    category ("_".join(Categories[0].lower().split())), each by compute_grouped_metrics."""
    root = checkout(tmp_path / "ni", test_tasks=5, size=20)
    objective, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    del objective
    ni = NaturalInstructionsConfig(breakdown=["category", "task"])
    cfg = FinetuneConfig(
        valid=root,
        max_input_length=256,
        max_target_length=64,
        metrics=["rouge_l_stemmed_max", "exact_match_max"],
        natural_instructions=ni,
    )
    layout = pair_layout(tokenizer.vocab_size, 0)
    valid = load_pairs("valid", root, cfg, tokenizer, layout, seed=3)
    rng = random.Random(7)
    texts = [rng.choice([*p.references, phrase(rng, 2)]) for p in valid.pairs]
    ids = [tokenizer.encode_batch([t])[0] for t in texts]
    scored = score(valid, ids, tokenizer, layout)
    # the groups as the original reads them: the task of each prediction record, its task file
    records = prediction_records(valid, ids, tokenizer, layout)
    tasks = [r["task"] for r in records]
    files = {t: json.loads((root / "tasks" / f"{t}.json").read_text()) for t in set(tasks)}
    categories = ["_".join(files[t]["Categories"][0].lower().split()) for t in tasks]
    assert [r["category"] for r in records] == categories
    assert set(categories) == {"textual_entailment", "question_rewriting", "title_generation"}
    predictions = [r["prediction"] for r in records]
    references = [r["references"] for r in records]
    expected = dict(tk_instruct_scores(predictions, references))
    for kind, groups in (("category", categories), ("task", tasks)):
        grouped = tk_instruct_grouped_scores(predictions, references, groups)
        for key, value in grouped.items():
            metric, group = key.split("_for_")
            expected[f"{metric}/{kind}/{group}"] = value
    assert scored == pytest.approx(expected)
    assert len({v for k, v in scored.items() if "/task/" in k}) > 2  # the groups differ
    # without a breakdown: the overall scores alone, unchanged
    plain = dataclasses.replace(valid, breakdown=())
    assert score(plain, ids, tokenizer, layout) == pytest.approx(
        {k: v for k, v in expected.items() if "/" not in k}
    )


def test_a_category_breakdown_needs_the_tasks_categories(tmp_path) -> None:
    root = checkout(tmp_path / "ni")
    name = (root / "splits" / "default" / "test_tasks.txt").read_text().split()[0]
    path = root / "tasks" / f"{name}.json"
    task = json.loads(path.read_text())
    del task["Categories"]
    path.write_text(json.dumps(task))
    ni = NaturalInstructionsConfig(breakdown=["category"])
    with pytest.raises(UserError, match=f"{name}.json has no 'Categories'"):
        read_instances(root, "valid", ni, 0)
    assert read_instances(root, "valid", NaturalInstructionsConfig(breakdown=["task"]), 0)
    assert read_instances(root, "train", ni, 0)  # training tasks are not scored


@pytest.mark.slow
def test_super_natural_instructions_fine_tuning_runs_through_the_command(tmp_path, t5_data) -> None:
    root = checkout(tmp_path / "ni", size=60)
    config = {
        "run_dir": str(tmp_path / "run"),
        "seed": 0,
        "mode": "ft",
        "model": TINY_T5,
        "finetune": {
            "train": str(root),
            "valid": str(root),
            "natural_instructions": {
                "max_num_instances_per_eval_task": 10,
                "breakdown": ["category"],
            },
            "max_input_length": 256,
            "max_target_length": 32,
            "tokenizer": str(t5_data["tok"]),
        },
        "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "train": {"max_steps": 20, "batch_size": 8, "log_every": 10},
        "logging": {"tensorboard": False, "progress": False},
    }
    path = write_config(tmp_path / "sni.yaml", config)
    done = synthlm("train", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    rows = read_records(tmp_path / "run")
    (final,) = [r for r in rows if "eval/valid/rouge_l_stemmed" in r]
    assert final["step"] == 20 and 0.0 <= final["eval/valid/rouge_l_stemmed"] <= 1.0
    by_category = {k for k in final if k.startswith("eval/valid/rouge_l_stemmed/")}
    assert by_category == {  # the checkout's two test tasks, task003 and task004
        "eval/valid/rouge_l_stemmed/category/textual_entailment",
        "eval/valid/rouge_l_stemmed/category/question_rewriting",
    }
    glue = tmp_path / "glue.jsonl"
    glue.write_text(json.dumps({"input": "x", "target": "y"}) + "\n", encoding="utf-8")
    wrong = synthlm(
        "train", str(path), f"finetune.train={glue}", "finetune.valid=null", "--dry-run"
    )
    assert wrong.returncode == 2
    assert (
        "finetune.natural_instructions applies to a natural-instructions checkout" in wrong.stderr
    )


@pytest.mark.slow
def test_the_depth_codes_natural_instructions_run_goes_through_the_command(
    tmp_path, t5_data
) -> None:
    """depth_ni.yaml's settings on a DEPTH tokenizer: every example joins, sentence ids
    shuffled, label padding trained; teacher-forced ROUGE-L at each evaluation."""
    from synthlm.text.special_tokens import with_t5_tokens

    root = checkout(tmp_path / "ni", size=30)
    base = load_tokenizer(t5_data["tok"])
    with_t5_tokens(base, num_sentinels=100, num_sentence_tokens=20).save(tmp_path / "tok")
    config = {
        "run_dir": str(tmp_path / "run"),
        "seed": 0,
        "mode": "ft",
        "model": TINY_T5,
        "finetune": {
            "train": str(root),
            "valid": str(root),
            "natural_instructions": {"max_num_instances_per_eval_task": 8, "example_fit": "always"},
            "depth_inputs": {"splitter": "rules", "sentence_ids": "shuffled"},
            "target_padding": "trained",
            "eval_protocol": "teacher_forced",
            "max_input_length": 96,
            "max_target_length": 16,
            "tokenizer": str(tmp_path / "tok"),
        },
        "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "train": {"max_steps": 12, "batch_size": 8, "log_every": 6, "eval_every": 6},
        "logging": {"tensorboard": False, "progress": False},
    }
    path = write_config(tmp_path / "depth_ni.yaml", config)
    done = synthlm("train", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    evals = [r for r in read_records(tmp_path / "run") if "eval/valid/rouge_l_stemmed" in r]
    assert [r["step"] for r in evals] == [6, 12]
    assert all(0.0 <= r["eval/valid/rouge_l_stemmed"] <= 1.0 for r in evals)
    assert evals[-1]["eval/valid/loss"] < evals[0]["eval/valid/loss"]  # the pads are learnt


# DataCollatorForNI's all_valid_encodings (tk_instruct=True), as listed there
TK_ENCODINGS = [
    {"add_task_name": False, "add_task_definition": True, "num_pos_examples": 0,
     "num_neg_examples": 0, "add_explanation": False},  # instruction only
    {"add_task_name": False, "add_task_definition": False, "num_pos_examples": 2,
     "num_neg_examples": 0, "add_explanation": False},  # example only
    {"add_task_name": False, "add_task_definition": True, "num_pos_examples": 2,
     "num_neg_examples": 0, "add_explanation": False},  # instruction + pos examples
    {"add_task_name": False, "add_task_definition": True, "num_pos_examples": 2,
     "num_neg_examples": 2, "add_explanation": False},  # instruction + pos + neg examples
    {"add_task_name": False, "add_task_definition": True, "num_pos_examples": 2,
     "num_neg_examples": 0, "add_explanation": True},  # instruction + pos (w. explanation)
]  # fmt: skip


def test_tk_instruct_encodings_are_drawn_per_use_from_the_collators_five(t5_data, tmp_path):
    """tk_instruct=True: each time the collator sees an instance it writes it with one of five
    encodings (random.choice). Every training sample is one of them, restated from the collator,
    and over the epochs each is used; an evaluation instance keeps one."""
    root = checkout(tmp_path / "ni", size=8)
    _, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    limit = 512
    ni = NaturalInstructionsConfig(max_num_instances_per_eval_task=8, tk_instruct=True)
    cfg = FinetuneConfig(
        train=root, max_input_length=limit, max_target_length=64, natural_instructions=ni
    )
    layout = pair_layout(tokenizer.vocab_size, 0)

    def restated(instance: Instance) -> list[list[int]]:
        """The collator's five sources for the instance, tokenized with </s> last."""
        row = {
            "Task": instance.task,
            "Definition": [instance.definition],
            "Positive Examples": list(instance.positives),
            "Negative Examples": list(instance.negatives),
            "Instance": {"input": instance.input},
        }
        texts = [tk_instruct_source(row, flags, token_count, limit) for flags in TK_ENCODINGS]
        return [[*ids, tokenizer.eos_id] for ids in tokenizer.encode_batch(texts)]

    def token_count(text: str) -> int:
        return len(tokenizer.encode_batch([text])[0]) + 1

    train = load_pairs("train", root, cfg, tokenizer, layout, seed=2)
    stream = PairDataset(train, seed=2)
    n = len(stream.pairs)
    first = stream.pairs[0]
    options = restated(read_instances(root, "train", ni, seed=2)[first.index])
    used = set()
    for epoch in range(25):
        for slot in range(n):
            sample = stream.sample(epoch * n + slot)
            if sample.index == first.index:
                ids = sample.input_ids.tolist()
                assert ids in options
                used.add(options.index(ids))
    distinct = {tuple(o) for o in options}
    assert len(distinct) >= 3  # the instance has examples: the encodings differ
    assert {tuple(options[k]) for k in used} == distinct  # every encoding comes up
    # the cut-pairs warning counts a pair when any of its encodings was cut, not just the first
    tight = cfg.model_copy(
        update={
            "max_input_length": 120,
            "natural_instructions": ni.model_copy(update={"example_fit": "always"}),
        }
    )
    cut = load_pairs("train", root, tight, tokenizer, layout, seed=2)
    every = read_instances(root, "train", ni, seed=2)
    sources = [
        [
            tk_instruct_source(
                {
                    "Task": x.task,
                    "Definition": [x.definition],
                    "Positive Examples": list(x.positives),
                    "Negative Examples": list(x.negatives),
                    "Instance": {"input": x.input},
                },
                flags,
                lambda text: 0,  # the DEPTH tokenizer's check: every example joins
                120,
            )
            for flags in TK_ENCODINGS
        ]
        for x in every
    ]
    over = [any(token_count(t) > 120 for t in texts) for texts in sources]
    targets_cut = [len(p.target_ids) == 64 for p in cut.pairs]
    assert cut.truncated == sum(o or t for o, t in zip(over, targets_cut))
    assert cut.truncated > sum(len(p.input_ids) == 120 for p in cut.pairs)  # first ones alone
    with pytest.raises(ConfigError, match="tk_instruct: true with finetune.depth_inputs"):
        both = cfg.model_copy(update={"depth_inputs": DepthInputsConfig()})
        load_pairs("train", root, both, tokenizer, layout, seed=2)

    evaluation = cfg.model_copy(update={"train": None, "valid": root})
    valid, again = (
        load_pairs("valid", root, evaluation, tokenizer, layout, seed=2) for _ in range(2)
    )
    assert [p.input_ids.tolist() for p in valid.pairs] == [
        p.input_ids.tolist() for p in again.pairs
    ]
    instances = read_instances(root, "valid", ni, seed=2)
    assert all(p.input_ids.tolist() in restated(instances[p.index]) for p in valid.pairs)
    assert all(p.input_alternatives is None for p in valid.pairs)


def test_task_tables_do_not_apply_to_natural_instructions(tmp_path, t5_data) -> None:
    root = checkout(tmp_path / "ni", size=5)
    _, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    cfg = FinetuneConfig(train=root, task="sst2")
    with pytest.raises(ConfigError, match="remove finetune.task"):
        load_pairs("train", root, cfg, tokenizer, pair_layout(tokenizer.vocab_size, 0))


def test_per_epoch_batches_end_each_pass_with_its_own_short_step(t5_data, tmp_path) -> None:
    """finetune.epoch_batches: per_epoch, nanoT5's DataLoader(drop_last=False): N pairs in
    micro-batches of B on S slots take ceil(ceil(N / S) / B) steps a pass; every pair is read
    once a pass (the sampler's padding aside) and the short step's other rows are fillers
    that no loss counts."""
    root = checkout(tmp_path / "ni", size=11)
    objective, tokenizer = TextToText.create(load_tokenizer(t5_data["tok"]))
    cfg = FinetuneConfig(train=root, max_input_length=256, max_target_length=64)
    pairs = load_pairs("train", root, cfg, tokenizer, pair_layout(tokenizer.vocab_size, 0))
    n = len(pairs.labelled)
    for slots, micro in ((1, 8), (3, 4)):
        stream = PairDataset(pairs, seed=0)
        stream.deal_epochs(global_batch=slots * micro, micro=micro)
        steps = math.ceil(math.ceil(n / slots) / micro)
        assert stream.epoch_samples == steps * slots * micro
        for epoch in range(2):
            rows = [
                stream.sample(epoch * stream.epoch_samples + i) for i in range(stream.epoch_samples)
            ]
            real = [r.index for r in rows if r.index >= 0]
            assert sorted(set(real)) == sorted(p.index for p in pairs.labelled)
            assert len(real) == math.ceil(n / slots) * slots  # the sampler pads with first rows
            batch = objective.collate(rows[-micro:])  # the last micro-batch holds fillers
            fillers = [r.index < 0 for r in rows[-micro:]]
            assert any(fillers) and not all(fillers)
            counts = (batch["labels"] != -100).sum(1).tolist()
            assert [c == 0 for c in counts] == fillers


def test_the_dry_run_plan_counts_the_pairs_drawn(t5_data, tmp_path) -> None:
    """--dry-run's plan says how many pairs each role drew (the config shows only limits)."""
    from synthlm.finetune.pair_plan import plan_finetune
    from synthlm.train import load_run_config

    root = checkout(tmp_path / "ni", size=30)
    config = {
        "run_dir": str(tmp_path / "run"),
        "mode": "ft",
        "model": TINY_T5,
        "finetune": {
            "train": str(root),
            "valid": str(root),
            "natural_instructions": {"max_num_instances_per_task": 7},
            "tokenizer": str(t5_data["tok"]),
        },
        "train": {"max_steps": 2, "batch_size": 4},
    }
    plan = plan_finetune(load_run_config([config]), processes=1)
    assert plan.summary()["pairs"] == {"train": 3 * 7, "valid": 2 * 30}
