"""EntiGraph: an LLM writes a large synthetic corpus about a small set of documents.

Public API::

    from synthlm.entigraph import EntiGraphConfig, run_entigraph
    report = run_entigraph(EntiGraphConfig(docs="docs.jsonl", out="eg", model="gpt-4o-mini"))

Module map: ``documents`` (inputs), ``templates`` + ``prompts/`` (wording), ``plan`` (keys,
entity replies, seeded samples), ``backends/`` (LLMs), ``engine`` (concurrency, retries),
``records`` + ``state`` (durable log, resume), ``costs`` + ``estimate`` (usage, budgets, dry
run), ``corpus`` (outputs), ``pipeline`` (one call that ties them together).

Names are imported on first use (PEP 562), so ``synthlm --help``, which reads the settings'
field descriptions for the command's help, does not load the whole pipeline.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Backend": "backends.base",
    "BackendOptions": "backends.base",
    "Completion": "backends.base",
    "build_backend": "backends.base",
    "register_backend": "backends.base",
    "corpus_lines": "corpus",
    "write_corpus": "corpus",
    "Document": "documents",
    "FieldNames": "documents",
    "Question": "documents",
    "read_documents": "documents",
    "RunReport": "pipeline",
    "run_entigraph": "pipeline",
    "EntiGraphConfig": "settings",
    "PromptSet": "templates",
    "write_default_prompts": "templates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
