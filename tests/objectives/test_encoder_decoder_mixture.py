"""Both objectives fed by the real Mixture: packed windows of window_length(seq_len) tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from t5_helpers import bpe_tokenizer, corpus_text

from synthlm.data.mixture import DataConfig, Mixture, build_layout
from synthlm.data.store import write_store
from synthlm.objectives.depth import Depth
from synthlm.objectives.span_corruption import SpanCorruption
from synthlm.text.special_tokens import TextCodec, add_t5_special_tokens, vocab_size

SEQ_LEN = 64


@pytest.fixture(scope="module")
def tokenizer():
    tok = bpe_tokenizer()
    add_t5_special_tokens(tok, num_sentence_tokens=8)
    return tok


@pytest.fixture(scope="module")
def store(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One document per speech of tinyshakespeare (short documents: windows span several)."""
    codec = TextCodec(tokenizer)
    speeches = [s for s in corpus_text(20_000).split("\n\n") if s.strip()]
    prefix = tmp_path_factory.mktemp("store") / "speeches"
    write_store(prefix, [codec.encode(s) for s in speeches], vocab_size(tokenizer))
    return prefix


def mixture_for(objective, tokenizer, store: Path) -> Mixture:
    data = DataConfig(
        sources=[{"name": "text", "path": store}], seq_len=objective.window_length(SEQ_LEN)
    )
    layout = build_layout(data, vocab_size(tokenizer), 0)
    return Mixture(data, seed=0, layout=layout, eos_id=objective.eos_id)


@pytest.mark.parametrize("kind", ["span_corruption", "depth"])
def test_objective_batches_from_mixture_windows(kind: str, tokenizer, store: Path) -> None:
    objective = (
        SpanCorruption(tokenizer=tokenizer)
        if kind == "span_corruption"
        else Depth(tokenizer=tokenizer, max_sentences=8)
    )
    mixture = mixture_for(objective, tokenizer, store)
    samples = [mixture.sample(i) for i in range(6)]
    assert len(samples[0].input_ids) == objective.window_length(SEQ_LEN)
    assert any(len(set(s.segment_ids.tolist())) > 1 for s in samples), (
        "windows pack several documents"
    )
    batch = objective.collate(samples)
    assert batch["input_ids"].shape == (6, SEQ_LEN)
    assert batch["labels"].shape == (6, objective.target_length(SEQ_LEN))
    if kind == "span_corruption":
        assert bool(batch["attention_mask"].all())
    # the same samples give the same batch (masks are keyed by content, not by call order)
    again = objective.collate([mixture.sample(i) for i in range(6)])
    assert all(bool((batch[k] == again[k]).all()) for k in batch)
