"""Which ids pair generation may produce: text pairs only the tokenizer's (the model's meta and
padding rows are suppressed), synthetic pairs also the meta range their answers live in."""

from __future__ import annotations

from types import SimpleNamespace

from synthlm.finetune.pair_plan import pair_layout
from synthlm.finetune.predict import suppressed_ids, vocab_end


def model_with_rows(rows: int) -> SimpleNamespace:
    config = SimpleNamespace(vocab_size=rows, get_text_config=lambda: config)
    return SimpleNamespace(config=config)


def test_text_pairs_suppress_meta_and_padding_rows():
    layout = pair_layout(700, 32)  # 700 natural + 32 meta ids, rounded up to 768 rows
    model = model_with_rows(layout.model_vocab_size)
    assert suppressed_ids(model, vocab_end("text", layout)) == list(range(700, 768))


def test_synthetic_pairs_keep_the_meta_range():
    layout = pair_layout(700, 32)
    model = model_with_rows(layout.model_vocab_size)
    assert suppressed_ids(model, vocab_end("synthetic", layout)) == list(range(732, 768))


def test_nothing_to_suppress_gives_none():
    """Passed to generate as ``suppress_tokens=None``: suppress nothing, rather than fall back
    to a checkpoint's generation_config (which suppresses the meta ids synthetic answers need)."""
    layout = pair_layout(704, 0)
    assert suppressed_ids(model_with_rows(704), vocab_end("text", layout)) is None
