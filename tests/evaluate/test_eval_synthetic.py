"""Synthetic eval sets: masked loss on valid documents and exact-match accuracy from generation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_lm import (
    EOS,
    MODEL_VOCAB,
    NATURAL,
    bigram_checkpoint,
    bigram_model,
    byte_tokenizer,
    tiny_config,
)
from transformers import LlamaForCausalLM

from cli_runner import run_cli
from synthlm.data.mixture import EvalSetConfig, ModelVocab
from synthlm.errors import UserError
from synthlm.evaluate import evaluate_model
from synthlm.evaluate.synthetic import to_synthetic
from synthlm.synth import build_dataset, load_spec, load_synthetic

LAYOUT = ModelVocab(
    natural_size=NATURAL,
    meta_offset=NATURAL,
    meta_size=MODEL_VOCAB - NATURAL,
    model_vocab_size=MODEL_VOCAB,
)
ANSWER = 4  # the content id the rigged model always answers
DOMAIN = {"vocab": {"num_vocab": 8}, "length": {"min": 2, "max": 4}, "loss_mask": "output"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    spec = load_spec(
        {
            "num_tokens": 1600,
            "seed": 0,
            "splits": {"train": 0.5, "valid": 0.5, "test": 0.0},
            "domains": [{"type": "first_token", **DOMAIN}, {"type": "last_token", **DOMAIN}],
        }
    )
    path = tmp_path_factory.mktemp("synth") / "tasks"
    build_dataset(spec, path, quiet=True)
    return path


def marker(path) -> int:
    return load_synthetic(path).layout.markers["answer"]


def answers_four(path, with_eos: bool = True) -> dict[int, int]:
    """Bigram chain in model ids: <ans> -> 4 -> EOS (or 4 -> 4 forever without EOS)."""
    off = LAYOUT.meta_offset
    return {marker(path) + off: ANSWER + off, ANSWER + off: EOS if with_eos else ANSWER + off}


def expected_accuracy(path, limit: int) -> dict[str, float]:
    hits: dict[str, list[bool]] = {}
    for example in load_synthetic(path).examples("valid", limit):
        hits.setdefault(example.domain, []).append(example.answer.tolist() == [ANSWER])
    every = [h for values in hits.values() for h in values]
    return {
        "acc": float(np.mean(every)),
        **{f"acc/{d}": float(np.mean(v)) for d, v in hits.items()},
    }


def run(model, eval_set, **kwargs):
    options = dict(
        layout=LAYOUT,
        tokenizer=byte_tokenizer(),
        seq_len=32,
        batch_size=8,
        device=torch.device("cpu"),
    )
    options.update(kwargs)
    return evaluate_model(model, [eval_set], **options)


def test_exact_match_scores_generated_answers_per_domain(dataset):
    expected = expected_accuracy(dataset, 40)
    assert 0 < expected["acc"] < 1, "the data must hold both right and wrong answers for this model"
    results = run(
        bigram_model(answers_four(dataset)),
        EvalSetConfig(name="tasks", path=dataset, kind="synthetic", max_examples=40),
    )
    got = {k.removeprefix("eval/tasks/"): v for k, v in results.items() if "/acc" in k}
    assert got == pytest.approx(expected)
    assert set(got) == {"acc", "acc/first_token", "acc/last_token"}


def test_an_answer_without_eos_is_not_an_exact_match(dataset):
    rambling = bigram_model(answers_four(dataset, with_eos=False))
    results = run(
        rambling, EvalSetConfig(name="tasks", path=dataset, kind="synthetic", max_examples=40)
    )
    assert results["eval/tasks/acc"] == 0.0


def hand_loss(model, path, seq_len: int, max_tokens: int) -> tuple[float, float]:
    """(masked, unmasked) mean NLL over valid documents shifted into the meta range, EOS appended,
    documents taken one per domain in turn until ``max_tokens`` tokens have been read."""
    store = load_synthetic(path).split("valid")
    owners = np.load(path / "valid.domains.npy")
    queues = [list(np.flatnonzero(owners == d)) for d in range(owners.max() + 1)]
    turns = [q[k] for k in range(max(map(len, queues))) for q in queues if k < len(q)]
    sums, counts, read = np.zeros(2), np.zeros(2), 0
    for i in turns:
        if read >= max_tokens:
            break
        read += min(len(store.document(i)) + 1, seq_len)
        tokens = torch.as_tensor(
            np.append(store.document(i).astype(np.int64) + LAYOUT.meta_offset, EOS)
        )[None, :seq_len]
        mask = np.append(store.mask(i), 1).astype(bool)[1:seq_len]
        with torch.no_grad():
            nll = (
                -torch.log_softmax(model(tokens).logits[0, :-1].double(), -1)
                .gather(1, tokens[0, 1:, None])[:, 0]
                .numpy()
            )
        sums += [nll[mask].sum(), nll.sum()]
        counts += [mask.sum(), len(nll)]
    return tuple(sums / counts)


def test_loss_is_masked_shifted_and_matches_hand_computation(dataset):
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config()).eval()
    masked, unmasked = hand_loss(model, dataset, 32, max_tokens=300)
    results = run(
        model,
        EvalSetConfig(name="tasks", path=dataset, kind="synthetic", max_examples=0, max_tokens=300),
    )
    assert results["eval/tasks/loss"] == pytest.approx(masked, rel=1e-5)
    assert abs(masked - unmasked) > 1e-3, "the loss mask must change the number"
    assert "eval/tasks/acc" not in results  # max_examples=0 skips generation


def test_meta_range_too_small_fails_before_work(dataset):
    small = ModelVocab(NATURAL, NATURAL, 5, MODEL_VOCAB)
    with pytest.raises(UserError, match=r"needs 11 meta-language ids but the model reserves 5"):
        run(
            bigram_model({}),
            EvalSetConfig(name="tasks", path=dataset, kind="synthetic"),
            layout=small,
        )


def test_generated_ids_are_cut_at_eos_and_shifted_back():
    off = LAYOUT.meta_offset
    assert to_synthetic(
        [off + 3, off + 1, EOS, off + 2], layout=LAYOUT, eos_id=EOS, keep=4
    ).tolist() == [3, 1]
    assert to_synthetic(
        [off + 3, 65, off + 70, off + 2], layout=LAYOUT, eos_id=EOS, keep=3
    ).tolist() == [3, -1, -1]


@pytest.mark.slow
def test_cli_eval_on_a_synthetic_dir(dataset, tmp_path):
    ckpt = bigram_checkpoint(tmp_path / "final", answers_four(dataset))
    out = tmp_path / "results.json"
    result = run_cli(
        "eval",
        str(ckpt),
        "--data",
        str(dataset),
        "--max-examples",
        "40",
        "--seq-len",
        "32",
        "-o",
        str(out),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text(encoding="utf-8"))["metrics"]
    expected = expected_accuracy(dataset, 40)
    assert metrics["eval/tasks/acc"] == pytest.approx(expected["acc"])
    assert metrics["eval/tasks/acc/last_token"] == pytest.approx(expected["acc/last_token"])
    assert np.isfinite(metrics["eval/tasks/loss"])
