"""Tiny tokenizers, windows and T5 models for the encoder-decoder objective tests (no download)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from synthlm.data.mixture import Sample

SHAKESPEARE = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare.txt"


def corpus_text(chars: int = 60_000) -> str:
    """The real tinyshakespeare text, or the copy shipped in the package."""
    path = SHAKESPEARE
    if not path.is_file():
        from synthlm.data.corpus import shipped_corpus

        path = shipped_corpus()
    return path.read_text(encoding="utf-8")[:chars]


@lru_cache(maxsize=1)
def _bpe_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([corpus_text()], trainer)
    return tok.to_str()


def bpe_tokenizer():
    """A fresh byte-level BPE ``PreTrainedTokenizerFast`` (lossless decode) without T5 tokens."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_bpe_json()), clean_up_tokenization_spaces=False
    )


def windows(
    tokenizer, raw: int, count: int, *, start: int = 0, docs_per_window: int = 1
) -> list[Sample]:
    """``count`` consecutive raw windows of the corpus, as the mixture hands them over."""
    from synthlm.text.special_tokens import TextCodec

    ids = np.asarray(TextCodec(tokenizer).encode(corpus_text()), dtype=np.int64)[start:]
    out = []
    for i in range(count):
        tokens = ids[i * raw : (i + 1) * raw].copy()
        segments = (np.arange(raw) * docs_per_window // raw).astype(np.int32)
        out.append(Sample(tokens, np.ones(raw, dtype=np.uint8), segments, 0))
    return out


def tiny_t5(
    vocab_size: int,
    pad_id: int,
    eos_id: int,
    *,
    layers: int = 2,
    attn: str = "sdpa",
    dropout: float = 0.0,
):
    """T5 with d_model 32, random init."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_heads=2,
        num_layers=layers,
        num_decoder_layers=layers,
        dropout_rate=dropout,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        decoder_start_token_id=pad_id,
        attn_implementation=attn,
    )
    torch.manual_seed(0)
    return T5ForConditionalGeneration(config)


def train_steps(objective, model, batch, steps: int, lr: float = 3e-3) -> list[float]:
    """Token-mean losses over ``steps`` AdamW steps on one batch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        total, count = objective.loss_sum(model, batch)
        loss = total / count
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history
