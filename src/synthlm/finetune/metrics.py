"""Text-to-text metrics on predicted vs reference strings, registered by name.

Every metric is a function ``(predictions, references, label_words) -> float`` over strings, in
[0, 1] (correlations in [-1, 1]), so the task table and ``finetune.metrics`` pick them by name:

* ``accuracy``: the prediction equals the reference (after stripping whitespace);
* ``exact_match``: equal after SQuAD normalisation (case, punctuation, articles, spaces);
* ``f1``: binary F1 of the positive class (label word 1) for two-class tasks (MRPC, QQP),
  else SQuAD token F1 (the standard for extractive answers);
* ``rouge_l``: ROUGE-L F-measure (LCS of tokens), as ``rouge_score`` computes it without
  stemming: lower-cased, non-alphanumerics as spaces. Written here (a dozen lines) so training
  needs no extra package; the tests check it against ``rouge_score`` when that is installed;
* ``rouge_l_stemmed``: the same with Porter stemming, by ``rouge_score`` itself (``pip install
  'synthlm[rouge]'``), as nanoT5 and Tk-Instruct score Super-NaturalInstructions
  (``evaluate.load("rouge")`` with ``use_stemmer=True``);
* ``matthews_corr`` (CoLA), ``pearson`` and ``spearman`` (STS-B, predictions parsed as floats;
  an unparseable prediction counts as -1, as in T5's evaluation);
* ``rouge_l_stemmed_max`` and ``exact_match_max``: Super-NaturalInstructions' official score
  (``eval/automatic/evaluation.py`` of allenai/natural-instructions) and Tk-Instruct's
  (``src/compute_metrics.py``): each prediction against *every* reference of its instance, the
  best one counting (``metric_max_over_ground_truths``); Tk-Instruct's exact match lower-cases,
  drops punctuation and collapses spaces, but keeps articles. These two receive each pair's
  list of references (:data:`MULTI_REFERENCE`); a pair with one reference scores as usual.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from synthlm.errors import ConfigError
from synthlm.registry import Registry

# (predictions, references, label words) -> score; a MULTI_REFERENCE metric's references are
# one list of strings per prediction
MetricFn = Callable[[Sequence[str], Sequence, Sequence[str] | None], float]
METRICS: Registry[MetricFn] = Registry("metric")
register_metric = METRICS.register
MULTI_REFERENCE = frozenset({"rouge_l_stemmed_max", "exact_match_max"})


def check_metrics(names: Sequence[str]) -> None:
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"finetune.metrics: {METRICS.unknown(name)}")
        if name.startswith("rouge_l_stemmed"):
            stemmed_scorer()  # a missing rouge-score stops the run here, before any work


def stemmed_scorer() -> object:
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ConfigError(
            "finetune.metrics: rouge_l_stemmed needs the rouge-score package (the scorer "
            "nanoT5 and Tk-Instruct use): pip install 'synthlm[rouge]'"
        ) from None
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def compute_metrics(
    names: Sequence[str],
    predictions: Sequence[str],
    references: Sequence[str],
    label_words: Sequence[str] | None = None,
    reference_sets: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """``reference_sets``: every reference of each pair, for :data:`MULTI_REFERENCE` metrics
    (default: each pair's one reference)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        return {}
    sets = reference_sets if reference_sets is not None else [[r] for r in references]
    return {
        name: float(
            METRICS[name](predictions, sets if name in MULTI_REFERENCE else references, label_words)
        )
        for name in names
    }


# ---------------------------------------------------------------------------------------------
# Normalisation


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def rouge_tokens(text: str) -> list[str]:
    return _NON_ALNUM.sub(" ", text.lower()).split()


# ---------------------------------------------------------------------------------------------
# Metrics


@register_metric("accuracy")
def accuracy(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    return float(np.mean([p.strip() == r.strip() for p, r in zip(predictions, references)]))


@register_metric("exact_match")
def exact_match(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    return float(
        np.mean(
            [normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references)]
        )
    )


@register_metric("f1")
def f1(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    if label_words is not None and len(label_words) == 2:
        return binary_f1(
            [p.strip() == label_words[1] for p in predictions],
            [r.strip() == label_words[1] for r in references],
        )
    return float(np.mean([token_f1(p, r) for p, r in zip(predictions, references)]))


def binary_f1(predicted: Sequence[bool], actual: Sequence[bool]) -> float:
    pred, true = np.asarray(predicted, dtype=bool), np.asarray(actual, dtype=bool)
    tp = int((pred & true).sum())
    denominator = int(pred.sum()) + int(true.sum())
    return 2 * tp / denominator if denominator else 0.0


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref:
        return float(pred == ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@register_metric("rouge_l")
def rouge_l(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    return float(np.mean([rouge_l_f(p, r) for p, r in zip(predictions, references)]))


def rouge_l_f(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one pair (``rouge_score``'s rougeL ``fmeasure``)."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    if not pred or not ref:
        return 0.0
    lcs = lcs_length(ref, pred)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


@register_metric("rouge_l_stemmed")
def rouge_l_stemmed(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    scorer = stemmed_scorer()
    return float(
        np.mean([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)])
    )


@register_metric("rouge_l_stemmed_max")
def rouge_l_stemmed_max(
    predictions: Sequence[str],
    reference_sets: Sequence[Sequence[str]],
    label_words: Sequence[str] | None = None,
) -> float:
    scorer = stemmed_scorer()
    return best_over_references(
        lambda p, r: scorer.score(r, p)["rougeL"].fmeasure, predictions, reference_sets
    )


def best_over_references(
    score: Callable[[str, str], float],
    predictions: Sequence[str],
    reference_sets: Sequence[Sequence[str]],
) -> float:
    """Mean over predictions of the best ``score`` against any reference of the pair
    (``metric_max_over_ground_truths``)."""
    return float(
        np.mean([max(score(p, r) for r in refs) for p, refs in zip(predictions, reference_sets)])
    )


def tk_instruct_normalize(text: str) -> str:
    """Tk-Instruct's ``normalize_answer``: SQuAD's without the article removal."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


@register_metric("exact_match_max")
def exact_match_max(
    predictions: Sequence[str],
    reference_sets: Sequence[Sequence[str]],
    label_words: Sequence[str] | None = None,
) -> float:
    return best_over_references(
        lambda p, r: float(tk_instruct_normalize(p) == tk_instruct_normalize(r)),
        predictions,
        reference_sets,
    )


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence length, one DP row at a time."""
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


@register_metric("matthews_corr")
def matthews_corr(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    positive = label_words[1] if label_words else "1"
    pred = np.asarray([p.strip() == positive for p in predictions])
    true = np.asarray([r.strip() == positive for r in references])
    tp, tn = float((pred & true).sum()), float((~pred & ~true).sum())
    fp, fn = float((pred & ~true).sum()), float((~pred & true).sum())
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        return -1.0


@register_metric("pearson")
def pearson(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    return _correlation([parse_float(p) for p in predictions], [parse_float(r) for r in references])


@register_metric("spearman")
def spearman(
    predictions: Sequence[str], references: Sequence[str], label_words: Sequence[str] | None = None
) -> float:
    return _correlation(
        _ranks([parse_float(p) for p in predictions]), _ranks([parse_float(r) for r in references])
    )


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks with ties averaged (what Spearman's rho needs)."""
    array = np.asarray(values, dtype=np.float64)
    order = np.argsort(array, kind="stable")
    ranks = np.empty(len(array))
    ranks[order] = np.arange(len(array), dtype=np.float64)
    for value in np.unique(array):
        tied = array == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _correlation(x: Sequence[float], y: Sequence[float]) -> float:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
