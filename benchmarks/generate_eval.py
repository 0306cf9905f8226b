"""Generation and evaluation speed: synthlm against the plain loops users write, in one process.

* generate: ``synthlm.inference.sampling.generate_texts`` (left-padded batches, KV cache) against the
  GPT-NeoX-style loop that calls ``model.generate`` once per prompt, and against the same loop
  without a KV cache. Greedy decoding, so all three must produce the same text (checked).
* eval: ``synthlm.evaluate.evaluate_model`` (batched windows) against the Hugging Face
  perplexity recipe, ``model(window, labels=window).loss`` one window at a time. Both see the
  same windows, so the losses must agree (checked).

Usage: python benchmarks/generate_eval.py [--repeats 5] [--prompts 16] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from synthlm.data.mixture import EvalSetConfig, ModelVocab
from synthlm.data.store import TokenStore, write_store
from synthlm.evaluate import evaluate_model
from synthlm.evaluate.perplexity import windows
from synthlm.inference.sampling import SamplingConfig, generate_texts

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def byte_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({"<eos>": 256, "<pad>": 257})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=320,
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        eos_token_id=256,
        pad_token_id=257,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_generate(lm, tok, text: str, args) -> None:
    lines = [line for line in text.splitlines() if len(line) > 20]
    prompts = [lines[i * 37 % len(lines)][:40] for i in range(args.prompts)]
    sampling = SamplingConfig(temperature=0, max_new_tokens=args.new_tokens)

    def ours():
        return [c.text for c in generate_texts(lm, tok, prompts, sampling, batch_size=args.prompts)]

    def loop(use_cache: bool):
        out = []
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt")
            with torch.no_grad():
                row = lm.generate(
                    **ids,
                    do_sample=False,
                    max_new_tokens=args.new_tokens,
                    pad_token_id=257,
                    eos_token_id=256,
                    use_cache=use_cache,
                )
            out.append(tok.decode(row[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
        return out

    t_ours, texts = median_time(ours, args.repeats)
    t_loop, loop_texts = median_time(lambda: loop(True), args.repeats)
    t_nocache, nocache_texts = median_time(lambda: loop(False), max(1, args.repeats // 2))
    same = texts == loop_texts == nocache_texts
    tokens = args.prompts * args.new_tokens
    print(
        f"generate: {args.prompts} prompts x {args.new_tokens} new tokens, greedy (same "
        f"text: {same})",
        flush=True,
    )
    print(f"  synthlm batched+KV   {t_ours:8.3f} s  {tokens / t_ours:8.0f} tok/s", flush=True)
    print(
        f"  per-prompt loop+KV   {t_loop:8.3f} s  {tokens / t_loop:8.0f} tok/s   ratio "
        f"{t_loop / t_ours:5.2f}x",
        flush=True,
    )
    print(
        f"  per-prompt no cache  {t_nocache:8.3f} s  {tokens / t_nocache:8.0f} tok/s   "
        f"ratio {t_nocache / t_ours:5.2f}x",
        flush=True,
    )


def bench_eval(lm, tok, text: str, args) -> None:
    ids = tok(text[: args.eval_chars], add_special_tokens=False)["input_ids"]
    docs = [ids[i : i + 1000] for i in range(0, len(ids), 1000)]
    layout = ModelVocab(258, 258, 62, 320)
    with tempfile.TemporaryDirectory() as tmp:
        store = write_store(Path(tmp) / "valid", docs, 258)
        eval_set = EvalSetConfig(name="valid", path=store.prefix, max_tokens=len(ids))

        def ours():
            return evaluate_model(
                lm,
                [eval_set],
                layout=layout,
                tokenizer=tok,
                seq_len=args.seq_len,
                batch_size=8,
                device=torch.device("cpu"),
            )["eval/valid/loss"]

        def hf_recipe():
            nll, count = 0.0, 0
            for window in windows(
                TokenStore(store.prefix), seq_len=args.seq_len, eos_id=256, max_tokens=len(ids)
            ):
                x = torch.as_tensor(window, dtype=torch.long)[None]
                with torch.no_grad():
                    loss = lm(x, labels=x).loss
                nll += float(loss) * (x.shape[1] - 1)
                count += x.shape[1] - 1
            return nll / count

        t_ours, loss = median_time(ours, args.repeats)
        t_hf, hf_loss = median_time(hf_recipe, args.repeats)
    tokens = len(ids)
    print(
        f"eval: {tokens} tokens, seq_len {args.seq_len} (loss {loss:.5f} vs {hf_loss:.5f}, "
        f"|diff| {abs(loss - hf_loss):.1e})",
        flush=True,
    )
    print(f"  synthlm batch 8      {t_ours:8.3f} s  {tokens / t_ours:8.0f} tok/s", flush=True)
    print(
        f"  HF recipe, batch 1   {t_hf:8.3f} s  {tokens / t_hf:8.0f} tok/s   ratio "
        f"{t_hf / t_ours:5.2f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--eval-chars", type=int, default=16384)
    args = parser.parse_args()
    text = SHAKESPEARE.read_text(encoding="utf-8")
    lm, tok = model(), byte_tokenizer()
    bench_generate(lm, tok, text, args)
    bench_eval(lm, tok, text, args)


if __name__ == "__main__":
    main()
