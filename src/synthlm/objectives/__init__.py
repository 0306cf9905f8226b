"""Training objectives: how a batch of packed samples becomes model inputs, labels and a loss.

Each objective is one module that registers itself (and its typed ``Options``) with
:func:`register_objective`; the loop only calls ``collate``, ``num_targets`` and ``forward``
(see :class:`~synthlm.objectives.base.LossOutput`). Importing this package names every built-in
objective; each module is imported when its objective is first looked up (its options checked,
or the objective built), so a ``clm`` run never imports DEPTH's sentence splitter or T5 noise.
"""

from synthlm.objectives.base import (
    IGNORE_INDEX,
    OBJECTIVES,
    LossOutput,
    Objective,
    get_objective,
    register_objective,
)

BUILTIN = ("clm", "depth", "sft", "span_corruption", "text_to_text")  # module name = objective
for _name in BUILTIN:
    OBJECTIVES.lazy(_name, f"{__name__}.{_name}")

__all__ = [
    "IGNORE_INDEX",
    "OBJECTIVES",
    "LossOutput",
    "Objective",
    "get_objective",
    "register_objective",
]
