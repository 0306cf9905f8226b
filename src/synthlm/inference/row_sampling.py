"""Sampling in which every completion depends on its own seed only, not on its batch.

``transformers``' sampling draws the next tokens of a whole batch from one random stream
(``torch.multinomial`` over the batch), so a prompt's completion changes with ``--batch-size``,
with the prompts beside it and with its place in the file. Here each row (prompt number, sample
number) gets its own generator, seeded from the run's seed, and picks its token by the
Gumbel-max rule: ``argmax(log p + g)`` with ``g`` standard Gumbel noise is an exact draw from
``p``. So the distribution is transformers' own (the same processors, then temperature, top-k
and top-p, in transformers' order), while the draws of one row never see another row. What can
still move a completion between batch sizes is floating point: a prompt padded to a longer
batch gets logits that may differ in the last bits.

transformers' ``generate`` is then run greedy (``do_sample=False``), which takes the argmax of
the processed scores; the noise is added by the last logits processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def row_seeds(seed: int, prompt_indices: Sequence[int], num_samples: int) -> list[int]:
    """One seed per generated row, rows ordered prompt by prompt and sample by sample (as
    ``num_return_sequences`` orders them): a function of (seed, prompt number, sample number)
    alone. SeedSequence mixes the three so nearby seeds give unrelated streams."""
    seeds = []
    for index in prompt_indices:
        for sample in range(num_samples):
            entropy = [seed % 2**64, index, sample]
            seeds.append(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1))
    return seeds


def row_sampler(seeds: Sequence[int], temperature: float, top_k: int, top_p: float) -> Any:
    """The logits processor that samples each row from its own generator (see the module)."""
    import torch
    from transformers import (
        LogitsProcessor,
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_k > 0:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))

    class RowSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.generators: list[torch.Generator] | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
            if len(seeds) != scores.shape[0]:
                raise RuntimeError(f"{len(seeds)} row seeds for a batch of {scores.shape[0]}")
            if self.generators is None:  # on the device the scores are on
                self.generators = [
                    torch.Generator(device=scores.device).manual_seed(s) for s in seeds
                ]
            scores = warpers(input_ids, scores.float())
            exponential = torch.stack(
                [
                    torch.empty(scores.shape[1], device=scores.device).exponential_(generator=g)
                    for g in self.generators
                ]
            )
            # -log(E) with E ~ Exp(1) is Gumbel noise; a masked (-inf) token stays -inf, and the
            # floor keeps an E of exactly 0 from turning -inf into NaN
            tiny = torch.finfo(exponential.dtype).tiny
            return scores - exponential.clamp_min(tiny).log()

    return RowSampler()
