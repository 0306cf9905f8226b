"""Looking inside synthetic evals: per-domain loss/accuracy, accuracy by answer length, decoded
predictions (``synthlm eval``), symbol prompts (``synthlm generate --synthetic``), the report.

Expected numbers are computed here from the token store itself (answers = the tokens the
``output`` loss mask marks; domains from ``valid.domains.npy``), not through synthlm's example
splitter or scorer. The model is the rigged bigram checkpoint of ``tiny_lm``: it answers every
``<ans>`` with content id 4 and then EOS, so a prediction is right exactly when the reference
answer is ``[4]``.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from tiny_lm import EOS, MODEL_VOCAB, NATURAL, bigram_checkpoint, bigram_model

from cli_runner import run_cli
from synthlm.inference.synthetic_ids import SymbolTable
from synthlm.synth import build_dataset, load_spec, load_synthetic

OFFSET = NATURAL  # meta_offset of a checkpoint without a recorded layout: the tokenizer's size
ANSWER = 4
VOCAB = {"vocab": {"num_vocab": 8}, "loss_mask": "output"}
SPEC = {
    "num_tokens": 2400,
    "seed": 1,
    "splits": {"train": 0.4, "valid": 0.6, "test": 0.0},
    "domains": [
        {"type": "first_token", **VOCAB, "length": {"min": 2, "max": 4}},
        {"type": "copy", **VOCAB, "length": {"min": 1, "max": 6}},
        {"type": "random_tokens", "vocab": {"num_vocab": 8}, "length": {"min": 4, "max": 8}},
    ],
}
EXAMPLES = 45


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "tasks"
    build_dataset(load_spec(SPEC), path, quiet=True)
    return path


def transitions(path) -> dict[int, int]:
    ans = load_synthetic(path).layout.markers["answer"] + OFFSET
    return {ans: ANSWER + OFFSET, ANSWER + OFFSET: EOS}


@pytest.fixture(scope="module")
def evaluated(dataset, tmp_path_factory):
    """One real ``synthlm eval`` run on RUN/final; returns (run dir, results, predictions)."""
    run = tmp_path_factory.mktemp("run")
    (run / "metrics.jsonl").write_text("", encoding="utf-8")  # makes RUN a run dir for reports
    ckpt = bigram_checkpoint(run / "final", transitions(dataset))
    result = run_cli(
        "eval",
        str(ckpt),
        "--data",
        str(dataset),
        "--max-examples",
        str(EXAMPLES),
        "--seq-len",
        "32",
        "--max-tokens",
        "600",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    out = run / "eval" / "final.json"
    assert f"wrote {out.with_suffix('.predictions.jsonl')}" in result.stdout
    dump = out.with_suffix(".predictions.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in dump.splitlines()]
    return run, json.loads(out.read_text(encoding="utf-8")), records


# -- the independent computation ------------------------------------------------------------


def store_answer(path, index: int) -> list[int]:
    """The reference answer of valid document ``index``: its tokens under the output mask."""
    store = load_synthetic(path).split("valid")
    return np.asarray(store.document(index))[np.asarray(store.mask(index), bool)].tolist()


def domain_names(path) -> list[str]:
    return [d["name"] for d in json.loads((path / "manifest.json").read_text())["domains"]]


def bucket(length: int) -> str:
    """Power-of-two buckets written out by hand for the lengths this data has."""
    return {1: "1", 2: "2", 3: "3-4", 4: "3-4", 5: "5-8", 6: "5-8"}[length]


def in_turns(owners: np.ndarray) -> list[int]:
    """Document indices, one of each domain in turn: d0's first, d1's first, ..., d0's second."""
    queues = [list(np.flatnonzero(owners == d)) for d in range(owners.max() + 1)]
    return [q[k] for k in range(max(map(len, queues))) for q in queues if k < len(q)]


def hand_domain_losses(path, seq_len: int, max_tokens: int) -> dict[str, float]:
    """Masked mean NLL per domain: valid documents taken one per domain in turn until
    ``max_tokens`` are read, shifted, EOS appended, one per row."""
    model = bigram_model(transitions(path))
    store = load_synthetic(path).split("valid")
    owners = np.load(path / "valid.domains.npy")
    names = domain_names(path)
    sums, counts, read = defaultdict(float), defaultdict(int), 0
    for i in in_turns(owners):
        if read >= max_tokens:
            break
        doc = np.append(np.asarray(store.document(i), np.int64) + OFFSET, EOS)[:seq_len]
        read += len(doc)
        mask = np.append(store.mask(i), 1).astype(bool)[1:seq_len]
        tokens = torch.as_tensor(doc)[None]
        with torch.no_grad():
            logp = torch.log_softmax(model(tokens).logits[0, :-1].double(), -1)
        nll = -logp.gather(1, tokens[0, 1:, None])[:, 0].numpy()
        sums[names[owners[i]]] += nll[mask].sum()
        counts[names[owners[i]]] += int(mask.sum())
    return {name: sums[name] / counts[name] for name in sums}


# -- synthlm eval ---------------------------------------------------------------------------


def test_predictions_are_the_first_examples_of_each_task_domain(dataset, evaluated):
    _, _, records = evaluated
    assert len(records) == EXAMPLES
    owners = np.load(dataset / "valid.domains.npy")
    names = domain_names(dataset)
    for domain in ("first_token", "copy"):
        indices = [r["index"] for r in records if r["domain"] == domain]
        first = np.flatnonzero(owners == names.index(domain))[: len(indices)].tolist()
        assert indices == first
    assert {r["domain"] for r in records} == {"first_token", "copy"}  # no language domain


def test_per_domain_accuracy_equals_exact_matches_against_the_store(dataset, evaluated):
    _, results, records = evaluated
    hits: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        answer = store_answer(dataset, r["index"])
        assert r["answer_ids"] == answer
        assert r["predicted_ids"] == [ANSWER]  # the rigged model's only answer
        hits[r["domain"]].append(answer == [ANSWER])
        assert r["correct"] is (answer == [ANSWER])
    metrics = results["metrics"]
    for domain, values in hits.items():
        assert metrics[f"eval/tasks/acc/{domain}"] == pytest.approx(np.mean(values))
    assert 0 < metrics["eval/tasks/acc"] < 1
    rows = {r["domain"]: r for r in results["synthetic"]["tasks"]["domains"]}
    assert rows["copy"]["correct"] == sum(hits["copy"])
    assert rows["all"]["examples"] == EXAMPLES
    assert rows["random_tokens"]["examples"] == 0 and rows["random_tokens"]["acc"] is None


def test_accuracy_by_answer_length_equals_store_counts(dataset, evaluated):
    _, results, records = evaluated
    expected: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in records:
        answer = store_answer(dataset, r["index"])
        for domain in (r["domain"], "all"):
            expected[(domain, bucket(len(answer)))].append(answer == [ANSWER])
    got = {(r["domain"], r["length"]): r for r in results["synthetic"]["tasks"]["by_length"]}
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert (got[key]["examples"], got[key]["correct"]) == (len(values), sum(values))
    assert {length for _, length in got} >= {"1", "2", "3-4", "5-8"}


def test_per_domain_loss_equals_hand_computation(dataset, evaluated):
    _, results, _ = evaluated
    expected = hand_domain_losses(dataset, seq_len=32, max_tokens=600)
    metrics = results["metrics"]
    assert set(expected) == {"first_token", "copy", "random_tokens"}  # 600 tokens reach all
    rows = results["synthetic"]["tasks"]["domains"][:-1]  # the last row is "all"
    loss_sum = sum(r["loss"] * r["loss_tokens"] for r in rows)
    tokens = sum(r["loss_tokens"] for r in rows)
    assert metrics["eval/tasks/loss"] == pytest.approx(loss_sum / tokens)
    for domain, value in expected.items():
        assert metrics[f"eval/tasks/loss/{domain}"] == pytest.approx(value, rel=1e-5)


def test_dumped_symbols_decode_back_to_the_ids(dataset, evaluated):
    _, _, records = evaluated
    table = SymbolTable.from_dataset(dataset, meta_offset=OFFSET, eos_id=EOS)
    layout = load_synthetic(dataset).layout
    for r in records:
        assert table.encode(r["prompt"]) == r["prompt_ids"]
        assert table.encode(r["answer"]) == r["answer_ids"]
        assert r["prompt"].split()[-1] == "<ans>"
        assert r["prompt"].split()[0] == f"P.{r['domain']}0"
        assert r["predicted"] == "4 <eos>" and r["predicted_model_ids"] == [ANSWER + OFFSET, EOS]
    every = list(range(layout.vocab_size))
    assert table.encode(table.decode(every)) == every


def test_max_predictions_bounds_the_dump(dataset, evaluated, tmp_path):
    from synthlm.evaluate.offline import evaluate_checkpoint

    run, _, _ = evaluated
    dump = tmp_path / "few.jsonl"
    report, _ = evaluate_checkpoint(
        run / "final",
        [dataset],
        out=tmp_path / "r.json",
        seq_len=32,
        max_tokens=64,
        max_examples=6,
        device="cpu",
        quiet=True,
        predictions=dump,
        max_predictions=4,
    )
    assert len(dump.read_text().splitlines()) == 4
    assert report["synthetic"]["tasks"]["predictions"] == str(dump)
    assert sum(r["examples"] for r in report["synthetic"]["tasks"]["domains"][:-1]) == 6


def test_predictions_beside_results_are_always_that_results(dataset, evaluated, tmp_path):
    """A rerun to the same results path that writes no predictions there (none asked for, or
    written elsewhere) removes the earlier run's default predictions file with them."""
    from synthlm.evaluate.offline import evaluate_checkpoint

    run, _, _ = evaluated
    results = tmp_path / "r.json"
    default = tmp_path / "r.predictions.jsonl"
    common = dict(out=results, seq_len=32, max_tokens=64, max_examples=4, device="cpu", quiet=True)
    evaluate_checkpoint(run / "final", [dataset], **common)
    assert len(default.read_text().splitlines()) == 4
    evaluate_checkpoint(run / "final", [dataset], **common, max_predictions=0)
    assert results.exists() and not default.exists()
    evaluate_checkpoint(run / "final", [dataset], **common)
    elsewhere = tmp_path / "elsewhere.jsonl"
    report, _ = evaluate_checkpoint(run / "final", [dataset], **common, predictions=elsewhere)
    assert not default.exists() and report["synthetic"]["tasks"]["predictions"] == str(elsewhere)
    report, _ = evaluate_checkpoint(  # the default path named another way is still this run's
        run / "final", [dataset], **common, predictions=tmp_path / "." / default.name
    )
    assert len(default.read_text().splitlines()) == 4


# -- synthlm generate --synthetic -----------------------------------------------------------


@pytest.mark.slow
def test_generate_continues_symbol_prompts_and_prints_them_decoded(dataset, evaluated):
    run, _, records = evaluated
    prompt = records[0]["prompt"]
    as_ids = " ".join(str(i) for i in records[0]["prompt_ids"])  # the same prompt as local ids
    result = run_cli(
        "generate",
        str(run / "final"),
        "--synthetic",
        str(dataset),
        "-p",
        prompt,
        "-p",
        as_ids,
        "--temperature",
        "0",
        "-n",
        "3",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{prompt} | 4", f"{prompt} | 4"]


def test_generate_records_carry_symbols_and_ids(dataset, evaluated):
    from synthlm.evaluate.checkpoint import load_checkpoint
    from synthlm.inference.sampling import SamplingConfig
    from synthlm.inference.synthetic_generate import generate_synthetic

    run, _, records = evaluated
    ckpt = load_checkpoint(run / "final", device="cpu", quiet=True)
    table = SymbolTable.from_dataset(dataset, meta_offset=ckpt.layout.meta_offset, eos_id=EOS)
    greedy = SamplingConfig(temperature=0, max_new_tokens=3)
    (row,) = generate_synthetic(ckpt.model, ckpt.tokenizer, table, [records[1]["prompt"]], greedy)
    assert (row.prompt_ids, row.text, row.ids) == (records[1]["prompt_ids"], "4", [ANSWER])
    assert (row.model_ids, row.finished, row.completion_tokens) == ([ANSWER + OFFSET], True, 2)


def test_unknown_symbols_are_refused_before_the_model_loads(dataset, evaluated):
    from synthlm.commands.generate import check_synthetic_options
    from synthlm.errors import UserError

    run, _, _ = evaluated
    with pytest.raises(UserError, match=r"prompt 2: '<nope>' is not a symbol of .*<ans>"):
        check_synthetic_options(
            run / "final", dataset, interactive=False, stop=None, prompts=["<ans>", "3 <nope>"]
        )
    with pytest.raises(UserError, match="needs --prompt or --input"):
        check_synthetic_options(run / "final", dataset, interactive=True, stop=None, prompts=None)


def test_checkpoint_without_room_for_the_dataset_is_refused(dataset, tmp_path):
    from synthlm.data.mixture import ModelVocab
    from synthlm.errors import UserError
    from synthlm.inference.synthetic_ids import check_fits

    needed = load_synthetic(dataset).vocab_size
    check_fits(dataset, ModelVocab(NATURAL, NATURAL, needed, MODEL_VOCAB))
    with pytest.raises(UserError, match=f"needs {needed} meta-language ids but the checkpoint"):
        check_fits(dataset, ModelVocab(NATURAL, NATURAL, needed - 1, MODEL_VOCAB))


# -- synthlm report -------------------------------------------------------------------------


def test_report_shows_the_synthetic_tables(evaluated, tmp_path):
    from synthlm.report import build_report

    run, results, _ = evaluated
    page = build_report([run], tmp_path / "rep").page.read_text(encoding="utf-8")
    assert '<section id="synthetic-tasks">' in page
    copy = next(r for r in results["synthetic"]["tasks"]["domains"] if r["domain"] == "copy")
    assert f"({copy['correct']}/{copy['examples']})" in page
    assert "<th>answer length</th>" in page and "<td>5-8</td>" in page


def test_a_symbol_two_ids_share_must_be_written_as_a_local_id():
    from synthlm.errors import UserError

    # RoleIds.symbol names promoter k of domain "a" P.a<k>: "a" #10 and "a1" #0 are both P.a10
    table = SymbolTable(
        ("0", "P.a10", "P.a10"), {"0": 0, "P.a10": 1}, 100, 7, "ds", ambiguous=frozenset({"P.a10"})
    )
    assert table.encode("0 2") == [0, 2] and table.to_model([0, 2]) == [100, 102]
    assert table.decode_model([102, 7, 5]) == "P.a10 <eos> <tok:5>"
    with pytest.raises(UserError, match="'P.a10' names several ids of ds; write the local id"):
        table.encode("0 P.a10")
