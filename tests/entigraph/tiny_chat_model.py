"""A tiny LlamaForCausalLM + chat tokenizer built in a temp dir: no downloads.

The weights are set by hand so that greedy decoding is a fixed bigram chain: after the
``<assistant>`` token the model always writes ``REPLY`` (valid entity-step JSON) and then
``</s>``. Attention and MLP outputs are zeroed, so the last hidden state is the current
token's embedding (one-hot, after RMSNorm) and ``lm_head`` maps it to the next token of the
chain. The text is nonsense for pair/triple prompts; the plumbing is what the tests check.
"""

from __future__ import annotations

import itertools
from pathlib import Path

REPLY = '{"summary": "A tale.", "entities": ["Alpha", "Beta", "Gamma"]}'
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<assistant>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def build_tiny_chat_model(directory: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = REPLY.split(" ")
    vocab = {token: index for index, token in enumerate([*SPECIALS, "system", "user", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins word tokens with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<assistant>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    hidden = 32
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    model = LlamaForCausalLM(config)
    chain = [vocab["<assistant>"], *(vocab[w] for w in words), vocab["</s>"]]
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(len(vocab), hidden))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        for current, following in itertools.pairwise(chain):
            model.lm_head.weight[following, current] = 10.0
        for token in range(len(vocab)):  # off the chain: end the reply
            if token not in chain[:-1]:
                model.lm_head.weight[vocab["</s>"], token] = 10.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
