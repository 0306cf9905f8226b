"""The seams between packages, as structural types: what one side may rely on from the other.

A training run joins four independently written parts: a train stream (``data.mixture.Mixture``
in mode ``pt``, ``finetune.data.PairDataset`` in mode ``ft``), an objective
(``synthlm.objectives``), a tokenizer, and the loop. Each protocol below lists exactly what the
consumer calls, so a new stream, objective or tokenizer kind type-checks against it without
inheriting from anything, and a reader sees the contract in one place.

Two tokenizer kinds meet in synthlm and are not interchangeable:

- :class:`Tokenizer` (``synthlm.tokenizers``): ours, with ``bos_id`` / ``eos_id`` / ``pad_id``
  attributes; what training, stores and the objectives use.
- :class:`HFTokenizer`: a ``transformers`` tokenizer (``*_token_id`` attributes, chat
  templates); what loading a saved model for evaluation, chat or lm-eval gives.

:data:`AnyTokenizer` is for the few helpers written for both (``synthlm.text.special_tokens``).
Nothing here is imported at run time by the hot paths; the module only declares types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from synthlm.tokenizers.base import Tokenizer

if TYPE_CHECKING:
    import torch

    from synthlm.objectives.base import LossOutput

__all__ = ["AnyTokenizer", "HFTokenizer", "Tokenizer", "TrainObjective", "TrainStream"]


@runtime_checkable
class HFTokenizer(Protocol):
    """What synthlm calls on a ``transformers`` tokenizer (``PreTrainedTokenizerBase``)."""

    eos_token_id: int | None
    pad_token_id: int | None

    def __call__(self, text: Any, **kwargs: Any) -> Any: ...
    def encode(self, text: str, **kwargs: Any) -> list[int]: ...
    def decode(self, ids: Sequence[int], **kwargs: Any) -> str: ...
    def convert_tokens_to_ids(self, tokens: Any) -> Any: ...


AnyTokenizer = Union[Tokenizer, HFTokenizer]  # noqa: UP007 (a runtime alias)


@runtime_checkable
class TrainStream(Protocol):
    """The training data as the loop sees it: an endless, index-addressed stream of samples.

    ``sample(i)`` must be a pure function of ``i`` (exact resume and worker-count independence
    rest on it); ``source_names`` label the per-source losses; ``check_budget`` returns the
    epochs each source will see in ``num_samples`` samples, raising a ``UserError`` when one is
    over its limit.
    """

    source_names: list[str]

    def sample(self, index: int) -> Any: ...
    def check_budget(self, num_samples: int) -> dict[str, float]: ...


@runtime_checkable
class TrainObjective(Protocol):
    """What the planner, the loop and the evaluators call on an objective (see
    :class:`synthlm.objectives.base.Objective`, the base class that implements the defaults)."""

    name: str
    seq2seq: bool

    def window_length(self, seq_len: int) -> int: ...
    def model_config_overrides(self) -> dict[str, int]: ...
    def collate(self, samples: list[Any]) -> dict[str, torch.Tensor]: ...
    def num_targets(self, batch: dict[str, torch.Tensor]) -> int: ...
    def forward(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput: ...
