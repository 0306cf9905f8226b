"""Evaluation: perplexity on natural stores, loss + exact-match accuracy on synthetic tasks.

:func:`evaluate_model` is what the training loop calls every ``eval_every`` steps and what
``synthlm eval`` calls on a saved checkpoint, so both report the same numbers. Each eval set
kind is an :class:`~synthlm.evaluate.registry.Evaluator` in the registry; importing this
package names the built-in ones, whose modules are imported when an eval set of that kind runs
(a training run without eval sets, or one importing ``train.lm_eval``'s config, skips them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from synthlm.errors import UserError
from synthlm.evaluate.registry import (
    EVALUATORS,
    EvalContext,
    Evaluator,
    get_evaluator,
    register_evaluator,
)

if TYPE_CHECKING:
    from synthlm.data.mixture import EvalSetConfig, ModelVocab
    from synthlm.protocols import AnyTokenizer

EVALUATORS.lazy("natural", f"{__name__}.perplexity")
EVALUATORS.lazy("synthetic", f"{__name__}.synthetic")

__all__ = [
    "EVALUATORS",
    "EvalContext",
    "Evaluator",
    "evaluate_model",
    "get_evaluator",
    "register_evaluator",
]


def unwrap(model: Any) -> Any:
    """The bare HF model under DDP / accelerate (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        inner = getattr(model, "module", None)
        if inner is None:
            inner = getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


@contextlib.contextmanager
def eval_mode(model: Any, device: Any, seed: int) -> Iterator[None]:
    """Eval mode, no grad, and a private RNG stream; the caller's mode and RNG state come back."""
    import torch

    was_training = model.training
    devices = [device] if device.type == "cuda" else []
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        model.train(was_training)


def check_names(eval_sets: Sequence[EvalSetConfig]) -> None:
    names = [s.name for s in eval_sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"eval set names must be unique; repeated: {', '.join(repeated)}")


def evaluate_model(
    model: Any,
    eval_sets: list[EvalSetConfig],
    *,
    layout: ModelVocab,
    tokenizer: AnyTokenizer,
    seq_len: int,
    batch_size: int,
    device: Any,
    seed: int = 0,
    progress: bool = False,
    details: Any = None,
    objective: Any = None,
    packing: bool = True,
    natural_masked: bool = False,
    loss_average: str = "tokens",
    shared_boundary: bool = False,
) -> dict[str, float]:
    """Metrics ``eval/<name>/<metric>`` for every eval set; deterministic for a given model.

    Losses run through ``model`` as given (so a DDP/FSDP wrapper does its own forward); greedy
    generation uses the bare HF model underneath. The model comes back in its original mode and
    the global RNG state is untouched.

    natural: ``loss``, ``ppl``, ``bpb`` (when the store knows its bytes): the loss of
    ``objective`` (the run's decoder objective; default plain causal LM) on held-out windows
    built as training builds them (``packing``; documents masked from each other when
    ``natural_masked`` and the objective masks; rows sharing their boundary token with
    ``shared_boundary``), see :mod:`synthlm.evaluate.perplexity`,
    averaged per token, or per batch for a run with ``train.loss_average: micro_batch``;
    synthetic: ``loss``, ``loss/<domain>``, ``acc``, ``acc/<domain>``.

    ``details`` (a :class:`synthlm.evaluate.synthetic_details.Details`) collects what does not fit
    a flat metric: per-domain and per-answer-length tables and the predictions themselves.
    """
    import torch

    from synthlm.inference.sampling import special_ids

    device = torch.device(device)
    if seq_len < 2 or batch_size < 1:
        raise UserError(
            f"evaluation needs seq_len >= 2 and batch_size >= 1 (got {seq_len}, {batch_size})"
        )
    check_names(eval_sets)
    eos_id, pad_id = special_ids(tokenizer)
    ctx = EvalContext(
        model,
        unwrap(model),
        layout,
        eos_id,
        pad_id,
        seq_len,
        batch_size,
        device,
        seed,
        progress,
        details,
        objective,
        packing,
        natural_masked,
        loss_average,
        shared_boundary,
    )
    plan = [(eval_set, get_evaluator(eval_set.kind)) for eval_set in eval_sets]
    for eval_set, evaluator in plan:
        evaluator.check(eval_set, ctx)
    results: dict[str, float] = {}
    with eval_mode(model, device, seed):
        for eval_set, evaluator in plan:
            for key, value in evaluator.run(eval_set, ctx).items():
                results[f"eval/{eval_set.name}/{key}"] = float(value)
    return results
