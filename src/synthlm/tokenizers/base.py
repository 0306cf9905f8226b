"""The id convention, the interface every tokenizer offers, and the behaviour they share.

Each kind (``hf``, ``byte``, ``sentencepiece``) supplies only how it maps tokens to ids and
encodes; saving (tokenizer.json + transformers config + ``synthlm_tokenizer.json``), the special
ids and ``describe()`` live here once, so every kind writes a directory AutoTokenizer can load.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from synthlm.errors import UserError
from synthlm.fileio import atomic_write_bytes, atomic_write_text
from synthlm.tokenizers.prompt_bos import with_prompt_bos

ROLES = ("unk", "bos", "eos", "pad")
DEFAULT_TOKENS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"}
EXTRA_TOKEN = "<extra_id_{}>"
EXTRA_RE = re.compile(r"^<extra_id_(\d+)>$")
META_FILE = "synthlm_tokenizer.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    META_FILE,
)
BYTE_OFFSET = len(ROLES)


@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of synthlm needs from a tokenizer."""

    vocab_size: int
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None

    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def special_ids(self) -> dict[str, int]: ...
    def save(self, directory: str | Path, **options: Any) -> Path: ...
    def describe(self) -> dict: ...


class BaseTokenizer:
    """Shared behaviour; subclasses wrap HF ``tokenizers``, sentencepiece, or plain bytes."""

    kind = "base"

    def __init__(self, tokens: dict[str, str], path: str | None) -> None:
        self.tokens = {role: tok for role, tok in tokens.items() if tok is not None}
        self.path = path
        ids = {role: self._id_of(tok) for role, tok in self.tokens.items()}
        self._ids = {role: i for role, i in ids.items() if i is not None}
        self.tokens = {role: tok for role, tok in self.tokens.items() if role in self._ids}
        self.vocab_size = self._count_ids()
        self.extra_ids = self._extra_ids()

    # -- what subclasses provide ------------------------------------------------------------------
    def _id_of(self, token: str) -> int | None:
        raise NotImplementedError

    def _count_ids(self) -> int:
        raise NotImplementedError

    def _named_ids(self) -> dict[str, int]:
        """Every token string that may be an ``<extra_id_N>``, with its id."""
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def _decode(self, ids: list[int], skip_special: bool) -> str:
        """Text of ``ids``, all known to be this tokenizer's (:meth:`decode` checked them)."""
        raise NotImplementedError

    def hf_backend(self):
        """An equivalent ``tokenizers.Tokenizer`` (what AutoTokenizer loads from tokenizer.json)."""
        raise NotImplementedError

    def extend(self, *, pad: bool = False, extra_tokens: int = 0) -> BaseTokenizer:
        """A copy with a pad token (if missing) and ``extra_tokens`` more ids at the end."""
        raise NotImplementedError

    def _digest(self) -> str:
        raise NotImplementedError

    def _native_files(self) -> dict[str, bytes]:
        """Files besides tokenizer.json that this kind needs (none by default)."""
        return {}

    # -- shared -------------------------------------------------------------------------------------
    bos_id = property(lambda self: self._ids.get("bos"))
    eos_id = property(lambda self: self._ids.get("eos"))
    pad_id = property(lambda self: self._ids.get("pad"))
    unk_id = property(lambda self: self._ids.get("unk"))

    def _extra_ids(self) -> list[int]:
        found = {
            int(m.group(1)): i for tok, i in self._named_ids().items() if (m := EXTRA_RE.match(tok))
        }
        return [found[n] for n in sorted(found)]

    def _new_extras(self, count: int) -> list[str]:
        start = len(self.extra_ids)
        return [EXTRA_TOKEN.format(n) for n in range(start, start + count)]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """Text of ``ids``; an id outside ``0..vocab_size-1`` is an error naming it.

        Never dropped or passed on: HF ``tokenizers`` skip unknown ids silently and
        sentencepiece raises a bare ``IndexError``, while such an id always means a mix-up (a
        model's padded or meta-language rows generated, another tokenizer's ids) to fix.
        """
        checked = [int(i) for i in ids]
        if checked and (min(checked) < 0 or max(checked) >= self.vocab_size):
            bad = next(i for i in checked if not 0 <= i < self.vocab_size)
            raise ValueError(
                f"cannot decode id {bad}: the {self.kind} tokenizer has {self.vocab_size} ids "
                f"(0..{self.vocab_size - 1})"
            )
        return self._decode(checked, skip_special)

    def encode_flat(self, texts: list[str], dtype: Any = np.int32) -> tuple[np.ndarray, np.ndarray]:
        """All documents' ids in one array plus their sizes: the pipeline's hot path, no lists kept."""
        ids = self.encode_batch(texts)
        sizes = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        return np.fromiter(
            itertools.chain.from_iterable(ids), dtype=dtype, count=int(sizes.sum())
        ), sizes

    def special_ids(self) -> dict[str, int]:
        return dict(self._ids)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "vocab_size": self.vocab_size,
            "sha256": self._digest(),
            "extra_tokens": len(self.extra_ids),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, vocab_size={self.vocab_size}, path={self.path!r})"

    def save(
        self,
        directory: str | Path,
        *,
        overwrite: bool = False,
        provenance: dict | None = None,
        prompt_bos: bool | None = None,
    ) -> Path:
        """Write the tokenizer files into ``directory`` (other files there, such as a checkpoint's
        model, are left alone), so AutoTokenizer and :func:`load_tokenizer` both load it.

        ``prompt_bos`` (a checkpoint's copy) makes AutoTokenizer's special-token encoding start
        with BOS exactly when True (see :mod:`synthlm.tokenizers.prompt_bos`); None keeps the
        backend's own rule. Each file is written atomically and ``synthlm_tokenizer.json`` last,
        as the completion mark.
        """
        directory = Path(directory)
        present = replaceable_files(directory, overwrite=overwrite)
        directory.mkdir(parents=True, exist_ok=True)
        for name in present:
            (directory / name).unlink()
        for name, content in self._files(provenance or {}, prompt_bos).items():
            write = atomic_write_bytes if isinstance(content, bytes) else atomic_write_text
            write(directory / name, content)
        return directory

    def _files(self, provenance: dict, prompt_bos: bool | None) -> dict[str, str | bytes]:
        """File name -> content, in writing order (the synthlm file last)."""
        backend = self.hf_backend()
        if prompt_bos is not None:
            backend = with_prompt_bos(backend, self.tokens.get("bos"), prompt_bos)
        extras = [EXTRA_TOKEN.format(n) for n in range(len(self.extra_ids))]
        named = {f"{role}_token": tok for role, tok in self.tokens.items()}
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **named,
            "additional_special_tokens": extras,
            "clean_up_tokenization_spaces": False,
            "add_bos_token": bool(prompt_bos),
            "add_eos_token": False,
            "model_max_length": 1_000_000_000,
            # without it PreTrainedTokenizerFast also returns token_type_ids, which Llama and T5
            # reject: model.generate(**tokenizer(text, return_tensors="pt")) would raise
            "model_input_names": ["input_ids", "attention_mask"],
        }
        meta = {
            "format_version": 1,
            "kind": self.kind,
            "special_tokens": self.tokens,
            "extra_tokens": len(self.extra_ids),
            "vocab_size": self.vocab_size,
            **provenance,
        }
        return {
            "tokenizer.json": backend.to_str(pretty=True),
            **self._native_files(),
            "tokenizer_config.json": _json_text(config),
            "special_tokens_map.json": _json_text({**named, "additional_special_tokens": extras}),
            META_FILE: _json_text(meta),
        }


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def replaceable_files(directory: Path, *, overwrite: bool) -> list[str]:
    """The tokenizer files already in ``directory``, refused unless ``overwrite``.

    Saving and training both ask before any work, so a new tokenizer never lands on top of
    another one's files by accident (a checkpoint dir's other files are not tokenizer files).
    """
    present = [name for name in TOKENIZER_FILES if (directory / name).exists()]
    if present and not overwrite:
        raise UserError(
            f"{directory}: already holds a tokenizer ({present[0]}); pass --overwrite to replace it"
        )
    return present
