"""``synthlm generate CKPT --synthetic DIR``: continue prompts written in a dataset's symbols.

The prompt's symbols (or local ids) become model ids through the checkpoint's meta offset,
exactly as training fed the dataset; the continuation is cut at the first EOS and decoded back
with the same layout. Nothing is suppressed: an id the model writes outside the dataset's range
shows up as ``<tok:N>`` rather than being hidden.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from synthlm.inference.sampling import (
    SamplingConfig,
    check_lengths,
    generation_kwargs,
    left_pad,
    seeded_rows,
    special_ids,
    timed_generate,
)
from synthlm.inference.synthetic_ids import SymbolTable


@dataclass
class SyntheticCompletion:
    """One sample: the record ``-o out.jsonl`` holds (symbols, local ids and model ids)."""

    prompt: str  # the prompt in canonical symbols
    text: str  # the continuation in symbols, up to (not including) EOS
    prompt_ids: list[int]  # local ids
    ids: list[int]  # continuation as local ids (-1: outside the dataset's range)
    model_ids: list[int]  # continuation as the model wrote it
    prompt_tokens: int
    completion_tokens: int
    finished: bool  # hit EOS
    seconds: float
    sample: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_synthetic(
    model,
    tokenizer,
    table: SymbolTable,
    prompts: Sequence[str],
    sampling: SamplingConfig,
    *,
    batch_size: int = 8,
) -> Iterator[SyntheticCompletion]:
    """Completions of symbol prompts in order, ``num_samples`` each, batch by batch."""
    import torch

    rows = [table.encode(p, what=f"prompt {i + 1}") for i, p in enumerate(prompts)]
    check_lengths(model, [table.to_model(r) for r in rows], sampling)
    per_batch = max(1, batch_size // sampling.num_samples)
    torch.manual_seed(sampling.seed)
    for start in range(0, len(rows), per_batch):
        yield from _batch(
            model, tokenizer, table, rows[start : start + per_batch], sampling, first_index=start
        )


def _batch(
    model, tokenizer, table: SymbolTable, rows, sampling, first_index: int
) -> list[SyntheticCompletion]:
    eos, pad = special_ids(tokenizer)
    model_rows, seeds = seeded_rows([table.to_model(r) for r in rows], sampling, first_index)
    ids, mask = left_pad(model_rows, pad)
    out, seconds = timed_generate(
        model, ids, mask, generation_kwargs(tokenizer, sampling, (), seeds)
    )
    done = []
    for j, row in enumerate(out[:, ids.shape[1] :].tolist()):
        index, sample = divmod(j, sampling.num_samples)
        body = row[: row.index(eos)] if eos in row else row
        done.append(
            SyntheticCompletion(
                prompt=table.decode(rows[index]),
                text=table.decode_model(body),
                prompt_ids=list(rows[index]),
                ids=table.to_local(body),
                model_ids=body,
                prompt_tokens=len(rows[index]),
                completion_tokens=len(body) + (eos in row),
                finished=eos in row,
                seconds=seconds,
                sample=sample,
            )
        )
    return done
