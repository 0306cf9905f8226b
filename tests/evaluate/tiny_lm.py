"""Tiny HF checkpoints for evaluation and generation tests (CPU, well under a second each).

Besides a random 2-layer Llama, :func:`bigram_checkpoint` builds a *rigged* model whose next
token depends only on the current one: attention and MLP outputs are zeroed, so the residual
stream is the token embedding, and the LM head maps chosen embeddings to chosen next tokens.
That gives tests exact, hand-checkable behaviour (greedy chains, loss ~0 on a known stream).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

EOS, PAD = 256, 257
NATURAL = 258  # 256 bytes + <eos> + <pad>
MODEL_VOCAB = 320  # natural + 62 meta ids (rounded up to 64, as synthlm lays it out)
HIDDEN = 32


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer: 256 byte tokens, then <eos>=256 and <pad>=257, no merges."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({"<eos>": EOS, "<pad>": PAD})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def tiny_config(**overrides) -> LlamaConfig:
    values = dict(
        vocab_size=MODEL_VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        eos_token_id=EOS,
        pad_token_id=PAD,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def save(model: LlamaForCausalLM, path: Path) -> Path:
    """Saved the way synthlm's training saves: ``generation_config.json`` suppresses the meta
    ids, so every generation path is tested against what a real checkpoint carries."""
    from synthlm.train.checkpoint import reserved_ids_suppressed

    path.mkdir(parents=True, exist_ok=True)
    with reserved_ids_suppressed(model, NATURAL):
        model.save_pretrained(path)
    byte_tokenizer().save_pretrained(path)
    return path


def random_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save(LlamaForCausalLM(tiny_config()).eval(), path)


def bigram_model(transitions: dict[int, int], scale: float = 6.0) -> LlamaForCausalLM:
    """Greedy next token of ``t`` is ``transitions[t]`` (with probability ~1)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config()).eval()
    involved = sorted(set(transitions) | set(transitions.values()))
    assert len(involved) <= HIDDEN, "orthogonal embeddings need at most HIDDEN tokens"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        basis = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN))[0]
        emb = model.get_input_embeddings().weight
        for i, token in enumerate(involved):
            emb[token] = basis[:, i]
        head = model.lm_head.weight
        head.zero_()
        for current, nxt in transitions.items():
            head[nxt] += scale * emb[current] / emb[current].norm()
    return model


def bigram_checkpoint(path: Path, transitions: dict[int, int]) -> Path:
    return save(bigram_model(transitions), path)


def byte_id(char: str) -> int:
    """The token id of one ASCII character under :func:`byte_tokenizer`."""
    (token,) = byte_tokenizer()(char, add_special_tokens=False)["input_ids"]
    return token
