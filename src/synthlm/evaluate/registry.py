"""The evaluator registry: one class per kind of eval set (natural, synthetic, later qa, lm-eval).

Adding an evaluation is one module with one decorated class; :func:`evaluate_model` and
``synthlm eval`` find it by the eval set's ``kind``. Each evaluator has two steps so that every
eval set's input is checked before any of them spends time on the model (bad input fails fast).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synthlm.data.mixture import EvalSetConfig, ModelVocab
from synthlm.registry import Registry


@dataclass(frozen=True)
class EvalContext:
    """What every evaluator needs besides its eval set."""

    model: Any  # the causal LM as the caller holds it (maybe DDP/FSDP-wrapped): forward passes
    generator: Any  # the bare HF model under any wrapper: ``.generate``
    layout: ModelVocab
    eos_id: int
    pad_id: int
    seq_len: int
    batch_size: int
    device: Any  # torch.device
    seed: int
    progress: bool = False  # show progress bars (synthlm eval); the training loop keeps quiet
    details: Any = None  # a sink for tables beyond the metrics (synthlm eval); None: metrics only
    # natural sets are scored as the model trained: by its objective (targets, loss masks,
    # document masking; None: plain causal LM) on windows packed as training packed them
    objective: Any = None
    packing: bool = True
    natural_masked: bool = False  # natural documents were masked from each other in training
    loss_average: str = "tokens"  # natural sets' loss: per token, or per batch ("micro_batch")
    shared_boundary: bool = False  # natural windows as data.shared_boundary cut them

    @property
    def scoring_objective(self) -> Any:
        """The training objective, or plain next-token prediction for a model trained elsewhere."""
        if self.objective is not None:
            return self.objective
        from synthlm.objectives.clm import CausalLM

        return CausalLM()

    def bar(self, iterable, desc: str):
        """``iterable`` wrapped in a progress bar when asked for one."""
        import sys

        from tqdm.auto import tqdm

        shown = (
            self.progress and sys.stderr.isatty()
        )  # redirected to a log, a bar is a flood of lines
        return tqdm(iterable, desc=desc, unit="batch", disable=not shown, leave=False)


class Evaluator:
    """Base class: ``check`` validates inputs cheaply, ``run`` returns metrics named without the
    ``eval/<name>/`` prefix (e.g. ``{"loss": 2.1, "ppl": 8.2}``)."""

    kind: str = ""

    def check(self, eval_set: EvalSetConfig, ctx: EvalContext) -> None:
        """Raise UserError on inputs this evaluator cannot use (default: accept)."""

    def run(self, eval_set: EvalSetConfig, ctx: EvalContext) -> dict[str, float]:
        raise NotImplementedError


EVALUATORS: Registry[type[Evaluator]] = Registry("eval set kind")


def register_evaluator(kind: str) -> Callable[[type[Evaluator]], type[Evaluator]]:
    def decorate(cls: type[Evaluator]) -> type[Evaluator]:
        cls.kind = kind
        return EVALUATORS.register(kind)(cls)

    return decorate


def get_evaluator(kind: str) -> Evaluator:
    return EVALUATORS.get(kind)()
