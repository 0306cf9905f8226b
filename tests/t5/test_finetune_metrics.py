"""Text-to-text metrics agree with the reference implementations (scikit-learn, SciPy,
rouge_score) where those are installed, and with hand-checked values everywhere."""

from __future__ import annotations

import pytest

from synthlm.errors import ConfigError
from synthlm.finetune.metrics import check_metrics, compute_metrics, normalize_answer, rouge_l_f

WORDS = ("not_equivalent", "equivalent")
PRED = ["equivalent", "equivalent", "not_equivalent", "equivalent", "not_equivalent", "banana"]
GOLD = [
    "equivalent",
    "not_equivalent",
    "not_equivalent",
    "equivalent",
    "equivalent",
    "not_equivalent",
]


def test_classification_metrics_by_hand():
    m = compute_metrics(["accuracy", "f1", "matthews_corr"], PRED, GOLD, WORDS)
    # tp=2 (0,3), fp=1 (1), fn=1 (4), tn=2 (2,5: 'banana' is not the positive word)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["matthews_corr"] == pytest.approx((2 * 2 - 1 * 1) / ((3 * 3 * 3 * 3) ** 0.5))


def test_classification_metrics_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    truth, guess = [g == "equivalent" for g in GOLD], [p == "equivalent" for p in PRED]
    m = compute_metrics(["f1", "matthews_corr"], PRED, GOLD, WORDS)
    assert m["f1"] == pytest.approx(metrics.f1_score(truth, guess))
    assert m["matthews_corr"] == pytest.approx(metrics.matthews_corrcoef(truth, guess))


def test_correlations_match_scipy_and_unparseable_predictions_count_as_minus_one():
    stats = pytest.importorskip("scipy.stats")
    pred, gold = (
        ["3.8", "1.0", "2.2", "oops", "4.0", "2.2"],
        ["4.0", "0.6", "2.0", "3.0", "5.0", "1.8"],
    )
    m = compute_metrics(["pearson", "spearman"], pred, gold)
    as_float = [3.8, 1.0, 2.2, -1.0, 4.0, 2.2]
    gold_float = [float(g) for g in gold]
    assert m["pearson"] == pytest.approx(stats.pearsonr(as_float, gold_float)[0])
    assert m["spearman"] == pytest.approx(stats.spearmanr(as_float, gold_float)[0])  # ties averaged


def test_rouge_l_matches_rouge_score():
    scorer = pytest.importorskip("rouge_score.rouge_scorer").RougeScorer(
        ["rougeL"], use_stemmer=False
    )
    cases = [
        ("the cat sat on the mat", "the cat is on the mat"),
        ("A quick, brown fox!", "the quick brown fox jumps"),
        ("", "nothing here"),
        ("completely different", "words entirely"),
        ("Öl und Wasser 42", "oel und wasser 42"),
    ]
    for prediction, reference in cases:
        assert rouge_l_f(prediction, reference) == pytest.approx(
            scorer.score(reference, prediction)["rougeL"].fmeasure
        )


def test_exact_match_normalises_and_token_f1_for_free_text():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    m = compute_metrics(
        ["exact_match", "f1", "rouge_l"], ["The cat.", "a dog ran"], ["cat", "dog walked"]
    )
    assert m["exact_match"] == 0.5
    assert m["f1"] == pytest.approx((1.0 + 0.5) / 2)  # "dog ran" vs "dog walked": P = R = 1/2
    # ROUGE-L keeps articles: "the cat" vs "cat" (P 1/2, R 1), "a dog ran" vs "dog walked" (P 1/3, R 1/2)
    assert m["rouge_l"] == pytest.approx((2 / 3 + 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2)) / 2)


def test_unknown_metric_names_fail_with_the_allowed_ones():
    with pytest.raises(
        ConfigError, match=r"unknown metric 'rougeL' \(did you mean 'rouge_l'\?\); known: accuracy"
    ):
        check_metrics(["rougeL"])
