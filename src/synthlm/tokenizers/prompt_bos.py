"""Make a saved tokenizer start encoded text with BOS exactly when the training documents did.

A model learns whatever its documents start with: ``<s> text`` after ``synthlm tokenize
--prepend-bos``, bare ``text`` without it. Everything that prompts a saved checkpoint (``synthlm
generate``, multiple-choice QA, the lm-evaluation-harness, plain ``AutoTokenizer`` use) encodes
with ``add_special_tokens=True`` and so adds whatever the tokenizer's post-processor adds. The
tokenizer a run starts from says nothing about the stores (Llama 2's adds ``<s>``, synthlm's own
add nothing), so a checkpoint's copy gets the post-processor its training data implies.

transformers' generic fast tokenizer ignores ``add_bos_token`` in tokenizer_config.json; the
post-processor in tokenizer.json is what decides, so that is what is rewritten (the config key is
set too, for the tokenizer classes that read it).
"""

from __future__ import annotations

import json
from typing import Any

from synthlm.errors import ConfigError

# post-processors that insert tokens; the others (ByteLevel) only adjust offsets and are kept
_INSERTING = {"TemplateProcessing", "BertProcessing", "RobertaProcessing"}


def with_prompt_bos(backend: Any, bos_token: str | None, add_bos: bool) -> Any:
    """``backend`` (a ``tokenizers.Tokenizer``) with a special-token encoding that is the plain
    encoding, preceded by ``bos_token`` when ``add_bos``: itself when it already does that (its
    files, and so its digest, stay those of the tokenizer the stores were written with), else a
    copy with the post-processor rewritten."""
    from tokenizers import Tokenizer

    if _problem(backend, bos_token, add_bos) is None:
        return backend
    data = json.loads(backend.to_str())
    kept = [p for p in _flatten(data.get("post_processor")) if p["type"] not in _INSERTING]
    if add_bos:
        if bos_token is None or backend.token_to_id(bos_token) is None:
            raise ConfigError(
                "the training stores start documents with BOS (--prepend-bos) but the "
                "tokenizer has no BOS token to prompt the model with"
            )
        kept.append(_bos_template(bos_token, backend.token_to_id(bos_token)))
    data["post_processor"] = _join(kept)
    rewritten = Tokenizer.from_str(json.dumps(data))
    _check(rewritten, bos_token, add_bos)
    return rewritten


def _flatten(processor: dict | None) -> list[dict]:
    if processor is None:
        return []
    if processor["type"] == "Sequence":
        return [p for inner in processor["processors"] for p in _flatten(inner)]
    return [processor]


def _join(processors: list[dict]) -> dict | None:
    if not processors:
        return None
    if len(processors) == 1:
        return processors[0]
    return {"type": "Sequence", "processors": processors}


def _bos_template(token: str, token_id: int) -> dict:
    """``BOS $A`` (a pair: ``BOS $A BOS $B``, as Llama's own template), in tokenizer.json form."""

    def piece(sequence: str, type_id: int) -> list[dict]:
        return [
            {"SpecialToken": {"id": token, "type_id": type_id}},
            {"Sequence": {"id": sequence, "type_id": type_id}},
        ]

    return {
        "type": "TemplateProcessing",
        "single": piece("A", 0),
        "pair": piece("A", 0) + piece("B", 1),
        "special_tokens": {token: {"id": token, "ids": [token_id], "tokens": [token]}},
    }


def _check(backend: Any, bos_token: str | None, add_bos: bool) -> None:
    """The rewritten tokenizer does what was asked (a processor we did not foresee would not)."""
    problem = _problem(backend, bos_token, add_bos)
    if problem is not None:
        raise ConfigError(
            f"could not make the tokenizer {'add' if add_bos else 'omit'} BOS when prompting "
            f"({problem})"
        )


def _problem(backend: Any, bos_token: str | None, add_bos: bool) -> str | None:
    """How ``backend``'s special-token encoding differs from the wanted one (None: it does not)."""
    plain = backend.encode("a b", add_special_tokens=False).ids
    special = backend.encode("a b", add_special_tokens=True).ids
    bos = backend.token_to_id(bos_token) if bos_token is not None else None
    expected = ([bos] if add_bos else []) + plain
    if add_bos and bos is None:
        return "it has no BOS token"
    return None if special == expected else f"it encodes {plain} as {special}"
