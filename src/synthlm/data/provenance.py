"""Does a token store hold the ids of the tokenizer a run reads it with?

A store is only numbers: read with another tokenizer than the one that wrote it, every id means
another token, and training or evaluation runs on quietly without error (only ids past the
vocabulary are caught, by the store's range check). ``synthlm tokenize`` records its tokenizer
(kind, path, vocabulary size, sha256 of its files) in ``PREFIX.json``; this module compares
that record with the tokenizer a run or an evaluation uses, before any work.

The digest decides when it matches. When it does not, the tokenizer may still be the same one
saved again (a checkpoint's copy, with a pad token or T5 sentinels appended): if the recorded
tokenizer still loads from its path, both must give the same ids for a probe text, and the
run's may only add ids after the recorded ones. A store written by other tools records
nothing and is taken as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthlm.errors import ConfigError

if TYPE_CHECKING:
    from synthlm.tokenizers import Tokenizer

PROBE = "The quick brown fox, 1234: jumps? Über naïve café\n\tend."


def recorded_tokenizer(prefix: str | Path) -> dict[str, Any] | None:
    """The tokenizer ``PREFIX.json`` records (None for stores that record none); ``prefix`` may
    also name the store's .bin / .idx file."""
    return _tokenizer_in(_metadata(prefix))


def _metadata(prefix: str | Path) -> dict[str, Any]:
    from synthlm.data.store import TokenStore, normalize_prefix

    return TokenStore(normalize_prefix(prefix), check_ids=False).metadata


def _tokenizer_in(metadata: dict[str, Any]) -> dict[str, Any] | None:
    recorded = metadata.get("tokenizer")
    return recorded if isinstance(recorded, dict) and recorded.get("sha256") else None


def check_store_tokenizer(prefix: str | Path, tokenizer: Tokenizer, where: str, fix: str) -> None:
    """Refuse a store whose recorded tokenizer is not ``tokenizer`` (``where`` names the setting
    that chose the store, ``fix`` what to change)."""
    metadata = _metadata(prefix)
    recorded = _tokenizer_in(metadata)
    if recorded is None and metadata.get("source") == "synthlm synth":
        raise ConfigError(
            f"{where}: {prefix} is a split of a synthetic dataset (synthlm synth): its ids are "
            "the dataset's symbols, not text of any tokenizer; read it as synthetic data (its "
            "dataset directory, kind: synthetic), or see it with synthlm synth preview"
        )
    if recorded is None:
        _note_unchecked(prefix, tokenizer, where)
        return
    if recorded["sha256"] == tokenizer.describe()["sha256"]:
        return
    if _same_ids(recorded, tokenizer):
        return
    raise ConfigError(
        f"{where}: {prefix} was tokenized by another tokenizer ({recorded.get('kind')}, "
        f"{recorded.get('vocab_size')} ids, {recorded.get('path')}, sha256 "
        f"{str(recorded['sha256'])[:12]}) than this one reads it with ({tokenizer.kind}, "
        f"{tokenizer.vocab_size} ids, {tokenizer.path}, sha256 "
        f"{tokenizer.describe()['sha256'][:12]}): every id would mean another token. {fix}"
    )


_NOTED: set[str] = set()


def _note_unchecked(prefix: str | Path, tokenizer: Tokenizer, where: str) -> None:
    """Say once that a store with no record (another tool wrote it) is read unchecked: taking
    it as it is stays the rule (Megatron's and GPT-NeoX's stores record nothing), but never
    silently."""
    if str(prefix) in _NOTED:
        return
    _NOTED.add(str(prefix))
    print(
        f"note: {where}: {prefix} records no tokenizer (no PREFIX.json from synthlm tokenize): "
        f"its ids are read as this {tokenizer.kind} tokenizer's ({tokenizer.vocab_size} ids), "
        "unchecked",
        file=sys.stderr,
    )


def _same_ids(recorded: dict[str, Any], tokenizer: Tokenizer) -> bool:
    """The recorded tokenizer, loaded from its path, encodes like ``tokenizer`` and has no ids
    beyond it (``tokenizer`` may append some: a pad token, sentinels)."""
    from synthlm.tokenizers import load_tokenizer

    path = recorded.get("path")
    if not path or not Path(path).is_dir():
        return False
    try:
        theirs = load_tokenizer(path)
    except Exception:  # a dir that no longer holds a loadable tokenizer proves nothing
        return False
    if theirs.describe()["sha256"] != recorded["sha256"]:
        return False  # the path now holds another tokenizer (retrained in place): no witness
    return theirs.vocab_size <= tokenizer.vocab_size and theirs.encode(PROBE) == tokenizer.encode(
        PROBE
    )
