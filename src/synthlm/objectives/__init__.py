"""Training objectives: how a batch of packed samples becomes model inputs, labels and a loss.

Each objective is one module that registers itself (and its typed ``Options``) with
:func:`register_objective`; the loop only calls ``collate``, ``num_targets`` and ``forward``
(see :class:`~synthlm.objectives.base.LossOutput`). Importing this package imports every
built-in objective.
"""

from synthlm.objectives import clm as _clm  # noqa: F401  (registers "clm")
from synthlm.objectives import depth as _depth  # noqa: F401  (registers "depth")
from synthlm.objectives import sft as _sft  # noqa: F401  (registers "sft")
from synthlm.objectives import span_corruption as _span_corruption  # noqa: F401  (registers "span_corruption")
from synthlm.objectives import text_to_text as _text_to_text  # noqa: F401  (registers "text_to_text")
from synthlm.objectives.base import (
    IGNORE_INDEX,
    OBJECTIVES,
    LossOutput,
    Objective,
    get_objective,
    register_objective,
)

__all__ = [
    "IGNORE_INDEX",
    "OBJECTIVES",
    "LossOutput",
    "Objective",
    "get_objective",
    "register_objective",
]
