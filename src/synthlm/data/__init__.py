"""The data stage: input readers -> tokenization -> token stores -> weighted mixtures.

Modules, in the order data flows through them:

- ``readers``: one reader per input format (jsonl, json, parquet, csv, txt, HF datasets).
- ``tokenization``: the parallel, ordered, resumable tokenize pipeline.
- ``chat_tokenization``: conversations -> token ids with assistant-only loss masks.
- ``store``: Megatron-compatible token stores (.bin/.idx + loss-mask sidecar + provenance).
- ``summary``: what ``synthlm data inspect`` prints about a store.
- ``mixture``: deterministic weighted sampling across stores, packing, meta-language ids.
- ``corpus``: the small natural corpus shipped for the quickstart.
"""
