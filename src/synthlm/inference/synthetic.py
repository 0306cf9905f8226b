"""``synthlm generate --synthetic``: prompt a model with synthetic ids and read its answer back.

A synthetic dataset's ids live in their own space (``0..V_syn-1``; see a dataset's
``manifest.json`` layout, or ``synthlm eval --predictions``); the model sees them shifted into
its meta-language range. Prompts are written as space-separated synthetic ids, shifted in;
completions are cut at EOS and shifted back, so what is printed reads like the dataset. Natural
ids (except EOS) and padding rows are suppressed: a synthetic prompt gets a synthetic answer.
"""

from __future__ import annotations

from typing import Any

from synthlm.errors import UserError


def parse_ids(prompt: str, meta_size: int) -> list[int]:
    """``"33 5 7 32"`` -> ``[33, 5, 7, 32]``, each inside the model's meta range."""
    try:
        ids = [int(token) for token in prompt.split()]
    except ValueError:
        raise UserError(f"--synthetic prompt {prompt!r}: expected space-separated synthetic ids such as '33 5 7 32'") from None
    bad = [i for i in ids if not 0 <= i < meta_size]
    if not ids or bad:
        raise UserError(f"--synthetic prompt {prompt!r}: ids must be 0..{meta_size - 1} (the model's meta range), got {bad or 'none'}")
    return ids


def generate_synthetic(ckpt: Any, prompts: list[str], sampling: Any) -> list[dict[str, Any]]:
    """One record per sample: the prompt and completion as synthetic ids, and whether EOS ended it."""
    import torch

    from synthlm.inference.sampling import generation_kwargs, left_pad, special_ids

    layout = ckpt.layout
    eos, pad = special_ids(ckpt.tokenizer)
    rows = [[i + layout.meta_offset for i in parse_ids(p, layout.meta_size)] for p in prompts]
    blocked = [i for i in range(layout.natural_size) if i != eos]
    blocked += list(range(layout.meta_offset + layout.meta_size, layout.model_vocab_size))
    ids, mask = left_pad(rows, pad)
    device = next(ckpt.model.parameters()).device
    torch.manual_seed(sampling.seed)
    with torch.no_grad():
        out = ckpt.model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), **generation_kwargs(ckpt.tokenizer, sampling, blocked)
        )
    records = []
    for j, row in enumerate(out[:, ids.shape[1] :].tolist()):
        finished = eos in row
        body = row[: row.index(eos)] if finished else row
        completion = [t - layout.meta_offset for t in body if t != pad or pad == eos]
        records.append({"prompt": prompts[j // sampling.num_samples], "completion": " ".join(map(str, completion)), "finished": finished})
    return records
