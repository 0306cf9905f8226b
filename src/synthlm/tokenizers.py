"""Tokenizers behind one small interface: load the common formats, train four kinds, save anywhere.

One id convention for every tokenizer synthlm trains, so configs and stores can rely on it:

    0 <unk>   1 <s> (bos)   2 </s> (eos: the end-of-document token)   3 <pad>
    then the learned vocabulary (``byte``: the 256 bytes, id = byte + 4)
    then ``extra_tokens`` reserved ids <extra_id_0>, <extra_id_1>, ... at the very end

``vocab_size`` counts all of them. Text is always text: a literal ``</s>`` inside a document is
encoded as characters, never as the eos id (the GPT-2 ``<|endoftext|>`` injection bug); special
ids enter token streams only by id. A saved directory holds ``tokenizer.json`` for every kind, so
``transformers.AutoTokenizer.from_pretrained(dir)`` loads it and encodes identically; synthlm
reads ``synthlm_tokenizer.json`` beside it to restore the exact kind (a SentencePiece model keeps
its ``tokenizer.model`` and is encoded by sentencepiece itself).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from synthlm.errors import UserError
from synthlm.fileio import atomic_write_bytes, atomic_write_text

ROLES = ("unk", "bos", "eos", "pad")
DEFAULT_TOKENS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"}
EXTRA_TOKEN = "<extra_id_{}>"
EXTRA_RE = re.compile(r"^<extra_id_(\d+)>$")
META_FILE = "synthlm_tokenizer.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", META_FILE)
BYTE_OFFSET = len(ROLES)
_GUESSES = {
    "unk": ("<unk>", "[UNK]", "<|unk|>"),
    "bos": ("<s>", "<bos>", "<|startoftext|>", "<|begin_of_text|>"),
    "eos": ("</s>", "<eos>", "<|endoftext|>", "<|end_of_text|>"),
    "pad": ("<pad>", "[PAD]", "<|pad|>"),
}


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
    def save(self, directory: str | Path) -> Path: ...
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

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
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
        found = {int(m.group(1)): i for tok, i in self._named_ids().items() if (m := EXTRA_RE.match(tok))}
        return [found[n] for n in sorted(found)]

    def _new_extras(self, count: int) -> list[str]:
        start = len(self.extra_ids)
        return [EXTRA_TOKEN.format(n) for n in range(start, start + count)]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_flat(self, texts: list[str], dtype: Any = np.int32) -> tuple[np.ndarray, np.ndarray]:
        """All documents' ids in one array plus their sizes: the pipeline's hot path, no lists kept."""
        ids = self.encode_batch(texts)
        sizes = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        return np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(sizes.sum())), sizes

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

    def save(self, directory: str | Path, *, overwrite: bool = False, provenance: dict | None = None) -> Path:
        """Write the tokenizer files into ``directory`` (other files there, such as a checkpoint's
        model, are left alone), so AutoTokenizer and :func:`load_tokenizer` both load it.

        Each file is written atomically and ``synthlm_tokenizer.json`` last, as the completion mark.
        """
        directory = Path(directory)
        present = [name for name in TOKENIZER_FILES if (directory / name).exists()]
        if present and not overwrite:
            raise UserError(f"{directory}: already holds a tokenizer ({present[0]}); pass --overwrite to replace it")
        directory.mkdir(parents=True, exist_ok=True)
        for name in present:
            (directory / name).unlink()
        for name, content in self._files(provenance or {}).items():
            write = atomic_write_bytes if isinstance(content, bytes) else atomic_write_text
            write(directory / name, content)
        return directory

    def _files(self, provenance: dict) -> dict[str, str | bytes]:
        """File name -> content, in writing order (the synthlm file last)."""
        extras = [EXTRA_TOKEN.format(n) for n in range(len(self.extra_ids))]
        named = {f"{role}_token": tok for role, tok in self.tokens.items()}
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **named,
            "additional_special_tokens": extras,
            "clean_up_tokenization_spaces": False,
            "add_bos_token": False,
            "add_eos_token": False,
            "model_max_length": 1_000_000_000,
        }
        meta = {"format_version": 1, "kind": self.kind, "special_tokens": self.tokens, "extra_tokens": len(self.extra_ids),
                "vocab_size": self.vocab_size, **provenance}
        return {
            "tokenizer.json": self.hf_backend().to_str(pretty=True),
            **self._native_files(),
            "tokenizer_config.json": _json_text(config),
            "special_tokens_map.json": _json_text({**named, "additional_special_tokens": extras}),
            META_FILE: _json_text(meta),
        }


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# -------------------------------------------------------------------------------------------------
# Hugging Face tokenizers (tokenizer.json, GPT-2 vocab + merges, trained bpe / unigram)


# GPT-2's pre-tokenizer pattern (tokenizers' ByteLevel regex) restricted to ASCII text, where
# Python's re and tokenizers' regex engine classify every character alike: letters A-Za-z, digits
# 0-9, whitespace \t\n\v\f\r and space (re.ASCII), everything else "other".
_ASCII_PIECES = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""", re.ASCII)


class PieceCache:
    """Encode ASCII documents piece by piece through a cache, as tiktoken does.

    With byte-level BPE behind GPT-2's pre-tokenizer and nothing before it, a document's ids are
    the concatenation of its pieces' ids, and natural text repeats a few thousand pieces: each new
    piece is encoded once by the tokenizer itself (so the ids stay exact), every repeat is a dict
    lookup. This costs about a third of ``encode_batch``'s CPU on English text (benchmarks/).
    """

    LIMIT = 1 << 20  # pieces kept; the cache restarts when full

    def __init__(self, backend) -> None:
        self.backend = backend
        self.ids: dict[str, list[int]] = {}

    @staticmethod
    def applies(backend) -> bool:
        from tokenizers import pre_tokenizers

        pre = backend.pre_tokenizer
        return (
            backend.normalizer is None
            and isinstance(pre, pre_tokenizers.ByteLevel)
            and pre.use_regex and not pre.add_prefix_space
            and all(t.special for t in backend.get_added_tokens_decoder().values())
        )

    @staticmethod
    def split(texts: list[str]) -> list[str]:
        """Every piece of ``texts``, in order (for tests and inspection)."""
        return [p for t in texts for p in _ASCII_PIECES.findall(t)]

    def encode(self, texts: list[str]) -> list[list[int]]:
        pieces = [_ASCII_PIECES.findall(t) for t in texts]
        missing = {p for doc in pieces for p in doc if p not in self.ids}
        if len(self.ids) + len(missing) > self.LIMIT:
            self.ids.clear()
            missing = {p for doc in pieces for p in doc}
        unseen = list(missing)
        for piece, encoding in zip(unseen, self.backend.encode_batch_fast(unseen, add_special_tokens=False), strict=True):
            self.ids[piece] = encoding.ids
        lookup = self.ids.__getitem__
        return [list(itertools.chain.from_iterable(map(lookup, doc))) for doc in pieces]


class HFTokenizer(BaseTokenizer):
    """A ``tokenizers.Tokenizer``; batch encoding runs in Rust without the GIL."""

    def __init__(self, backend, tokens: dict[str, str], *, kind: str = "hf", path: str | None = None) -> None:
        backend.encode_special_tokens = True  # text is text: a literal "</s>" stays characters
        self._backend = backend
        # set to None to encode everything with encode_batch (the benchmark's "no cache" run)
        self.piece_cache = PieceCache(backend) if PieceCache.applies(backend) else None
        self.kind = kind
        super().__init__(tokens, path)

    def _id_of(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def _count_ids(self) -> int:
        return max(self._backend.get_vocab(with_added_tokens=True).values(), default=-1) + 1

    def _named_ids(self) -> dict[str, int]:
        return {t.content: i for i, t in self._backend.get_added_tokens_decoder().items()}

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._backend.encode_batch_fast(list(texts), add_special_tokens=False)]

    def encode_flat(self, texts: list[str], dtype: Any = np.int32) -> tuple[np.ndarray, np.ndarray]:
        """The pipeline's path: ASCII documents through the piece cache where it applies."""
        if self.piece_cache is None:
            ids = self.encode_batch(texts)
        else:
            ids = [None] * len(texts)
            plain = [i for i, t in enumerate(texts) if t.isascii()]
            other = [i for i, t in enumerate(texts) if not t.isascii()]
            for group, encoded in ((plain, self.piece_cache.encode([texts[i] for i in plain])),
                                   (other, self.encode_batch([texts[i] for i in other]))):
                for i, doc in zip(group, encoded, strict=True):
                    ids[i] = doc
        sizes = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        return np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(sizes.sum())), sizes

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        return self._backend.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def hf_backend(self):
        from tokenizers import Tokenizer as Backend

        return Backend.from_str(self._backend.to_str())

    def extend(self, *, pad: bool = False, extra_tokens: int = 0) -> HFTokenizer:
        from tokenizers import AddedToken

        backend = self.hf_backend()
        tokens = dict(self.tokens)
        new = self._new_extras(extra_tokens)
        if pad and "pad" not in tokens:
            tokens["pad"] = DEFAULT_TOKENS["pad"]
            new.insert(0, tokens["pad"])
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in new])
        return HFTokenizer(backend, tokens, kind=self.kind, path=None)

    def _digest(self) -> str:
        return hashlib.sha256(self._backend.to_str().encode("utf-8")).hexdigest()

    def __getstate__(self) -> dict:
        return {"json": self._backend.to_str(), "tokens": self.tokens, "kind": self.kind, "path": self.path}

    def __setstate__(self, state: dict) -> None:
        from tokenizers import Tokenizer as Backend

        self.__init__(Backend.from_str(state["json"]), state["tokens"], kind=state["kind"], path=state["path"])


# -------------------------------------------------------------------------------------------------
# Bytes


def byte_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each byte 0..255, in byte order.

    ``tokenizers``' ByteLevel pre-tokenizer maps bytes through this table internally but exposes it
    only unordered, so the (standard, frozen) table is rebuilt here to lay out the byte vocabulary.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


class ByteTokenizer(BaseTokenizer):
    """UTF-8 bytes (id = byte + 4) plus the specials: lossless for any text, no training."""

    kind = "byte"

    def __init__(self, *, extra_tokens: int = 0, tokens: dict[str, str] | None = None, path: str | None = None) -> None:
        tokens = dict(tokens or DEFAULT_TOKENS)
        if list(tokens) != list(ROLES):
            raise UserError(f"a byte tokenizer needs exactly the special tokens {', '.join(ROLES)} in that order")
        self._specials = list(tokens.values())
        self._extras = [EXTRA_TOKEN.format(n) for n in range(extra_tokens)]
        super().__init__(tokens, path)

    def _id_of(self, token: str) -> int | None:
        return self._specials.index(token) if token in self._specials else None

    def _count_ids(self) -> int:
        return BYTE_OFFSET + 256 + len(self._extras)

    def _named_ids(self) -> dict[str, int]:
        return {tok: BYTE_OFFSET + 256 + n for n, tok in enumerate(self._extras)}

    def encode_flat(self, texts: list[str], dtype: Any = np.int32) -> tuple[np.ndarray, np.ndarray]:
        encoded = [t.encode("utf-8") for t in texts]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        flat = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(dtype)
        flat += BYTE_OFFSET
        return flat, sizes

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        flat, sizes = self.encode_flat(texts, np.int64)
        return [part.tolist() for part in np.split(flat, np.cumsum(sizes)[:-1])] if len(texts) else []

    def _token(self, i: int) -> str:
        if i < BYTE_OFFSET:
            return self._specials[i]
        if BYTE_OFFSET + 256 <= i < self.vocab_size:
            return self._extras[i - BYTE_OFFSET - 256]
        raise ValueError(f"id {i} is outside the byte tokenizer's {self.vocab_size} ids")

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        out: list[str] = []
        run = bytearray()
        for i in map(int, ids):
            if BYTE_OFFSET <= i < BYTE_OFFSET + 256:
                run.append(i - BYTE_OFFSET)
                continue
            out.append(run.decode("utf-8", errors="replace"))
            run.clear()
            token = self._token(i)
            if not skip_special:
                out.append(token)
        out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)

    def hf_backend(self):
        from tokenizers import AddedToken, decoders, models, pre_tokenizers
        from tokenizers import Tokenizer as Backend

        vocab = {tok: i for i, tok in enumerate(self._specials)}
        vocab.update({char: BYTE_OFFSET + b for b, char in enumerate(byte_alphabet())})
        backend = Backend(models.BPE(vocab=vocab, merges=[]))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        backend.decoder = decoders.ByteLevel()
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in self._specials + self._extras])
        return backend

    def extend(self, *, pad: bool = False, extra_tokens: int = 0) -> ByteTokenizer:
        tokens = dict(zip(ROLES, self._specials, strict=True))
        return ByteTokenizer(extra_tokens=len(self._extras) + extra_tokens, tokens=tokens)

    def _digest(self) -> str:
        layout = {"kind": "byte", "specials": self._specials, "offset": BYTE_OFFSET, "extras": len(self._extras)}
        return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()


# -------------------------------------------------------------------------------------------------
# SentencePiece


class SentencePieceTokenizer(BaseTokenizer):
    """A SentencePiece model, encoded by the sentencepiece library itself."""

    kind = "sentencepiece"

    def __init__(self, proto: bytes, *, path: str | None = None, num_threads: int = -1) -> None:
        import sentencepiece as spm

        self._proto = proto
        self._sp = spm.SentencePieceProcessor(model_proto=proto)
        self.num_threads = num_threads  # worker processes set 1: parallelism comes from the pool
        roles = {"unk": self._sp.unk_id(), "bos": self._sp.bos_id(), "eos": self._sp.eos_id(), "pad": self._sp.pad_id()}
        super().__init__({role: self._sp.id_to_piece(i) for role, i in roles.items() if i >= 0}, path)

    def _id_of(self, token: str) -> int | None:
        i = self._sp.piece_to_id(token)
        return i if self._sp.id_to_piece(i) == token else None

    def _count_ids(self) -> int:
        return self._sp.get_piece_size()

    def _named_ids(self) -> dict[str, int]:
        pieces = (self._sp.id_to_piece(i) for i in range(self.vocab_size))
        return {piece: i for i, piece in enumerate(pieces) if piece.startswith("<extra_id_")}

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._sp.encode(list(texts), out_type=int, num_threads=self.num_threads)

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """Like ``sp.decode`` but control tokens (bos, eos, pad, extras) are shown, not dropped."""
        out, run = [], []
        for i in map(int, ids):
            if not self._sp.is_control(i):
                run.append(i)
                continue
            out.append(self._sp.decode(run))
            run = []
            if not skip_special:
                out.append(self._sp.id_to_piece(i))
        out.append(self._sp.decode(run))
        return "".join(out)

    def hf_backend(self):
        return _sp_backend(self._proto)

    def _native_files(self) -> dict[str, bytes]:
        return {"tokenizer.model": self._proto}

    def extend(self, *, pad: bool = False, extra_tokens: int = 0) -> SentencePieceTokenizer:
        from sentencepiece import sentencepiece_model_pb2 as pb

        model = pb.ModelProto()
        model.ParseFromString(self._proto)
        new = self._new_extras(extra_tokens)
        add_pad = pad and self.pad_id is None
        if add_pad:
            new.insert(0, DEFAULT_TOKENS["pad"])
        for token in new:
            piece = model.pieces.add()
            piece.piece, piece.score, piece.type = token, 0.0, pb.ModelProto.SentencePiece.CONTROL
        if add_pad:
            model.trainer_spec.pad_id = len(model.pieces) - len(new)
            model.trainer_spec.pad_piece = DEFAULT_TOKENS["pad"]
        return SentencePieceTokenizer(model.SerializeToString(), num_threads=self.num_threads)

    def _digest(self) -> str:
        return hashlib.sha256(self._proto).hexdigest()

    def __getstate__(self) -> dict:
        return {"proto": self._proto, "path": self.path, "num_threads": self.num_threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["proto"], path=state["path"], num_threads=state["num_threads"])


def _sp_backend(proto: bytes):
    """The ``tokenizers`` equivalent of a SentencePiece model, for AutoTokenizer.

    transformers' own converters assume per-model quirks (Llama's prefix handling differs from
    sentencepiece on text that starts with a space), so the model's normalizer settings are mapped
    one by one: charsmap, whitespace cleanup, dummy prefix, then splitting before each "▁" exactly
    where sentencepiece splits words.
    """
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as Backend

    model = pb.ModelProto()
    model.ParseFromString(proto)
    spec, norm, kinds = model.trainer_spec, model.normalizer_spec, pb.ModelProto.SentencePiece
    pieces = [(p.piece, p.score) for p in model.pieces]
    if spec.model_type == pb.TrainerSpec.UNIGRAM:
        backend = Backend(models.Unigram(pieces, unk_id=spec.unk_id, byte_fallback=spec.byte_fallback))
    elif spec.model_type == pb.TrainerSpec.BPE:
        vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
        normal = [p.piece for p in model.pieces if p.type == kinds.NORMAL]
        backend = Backend(models.BPE(vocab, _sp_merges(normal, vocab), unk_token=spec.unk_piece, fuse_unk=True, byte_fallback=spec.byte_fallback))
    else:
        raise UserError("only unigram and bpe SentencePiece models can be saved for transformers")
    steps = [normalizers.Precompiled(norm.precompiled_charsmap)] if norm.precompiled_charsmap else []
    if norm.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    steps += [normalizers.Prepend("▁")] if norm.add_dummy_prefix else []
    backend.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
    if spec.split_by_whitespace and not spec.treat_whitespace_as_suffix:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    strip = [decoders.Strip(" ", 1, 0)] if norm.add_dummy_prefix else []
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *strip])
    added = [AddedToken(p.piece, special=p.type != kinds.USER_DEFINED, normalized=False)
             for p in model.pieces if p.type in (kinds.CONTROL, kinds.USER_DEFINED, kinds.UNKNOWN)]
    backend.add_tokens(added)
    return backend


def _sp_merges(normal: list[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """BPE merges that rebuild each piece, ordered by the piece's rank (sentencepiece merges the
    highest-scoring, i.e. lowest-id, piece first)."""
    merges = []
    for piece in normal:
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                merges.append((vocab[piece], vocab[left], vocab[right], left, right))
    return [(left, right) for *_, left, right in sorted(merges)]


# -------------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(spec: str | Path, *, trust_remote_code: bool = False) -> BaseTokenizer:
    """A tokenizer from ``byte``, a saved dir, ``tokenizer.json``, ``vocab.json`` (+ ``merges.txt``
    beside it), a SentencePiece ``.model``, a local HF tokenizer dir, or a hub name (cached/online)."""
    text = str(spec)
    if text == "byte":
        return ByteTokenizer(path="byte")
    path = Path(text).expanduser()
    if path.is_dir():
        tokenizer = _load_dir(path, trust_remote_code)
    elif path.is_file():
        tokenizer = _load_file(path)
    else:
        return _load_auto(text, trust_remote_code, path=text)
    tokenizer.path = str(path.resolve())
    return tokenizer


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read this JSON file ({exc})") from None


def _load_dir(path: Path, trust_remote_code: bool) -> BaseTokenizer:
    meta = _read_json(path / META_FILE) if (path / META_FILE).is_file() else {}
    if meta.get("kind") == "byte":
        return ByteTokenizer(extra_tokens=int(meta.get("extra_tokens", 0)), tokens=meta.get("special_tokens"))
    if (path / "tokenizer.model").is_file() and (meta.get("kind") == "sentencepiece" or not (path / "tokenizer.json").is_file()):
        return SentencePieceTokenizer((path / "tokenizer.model").read_bytes())
    if (path / "tokenizer.json").is_file():
        tokens = meta.get("special_tokens") or _configured_tokens(path)
        return _hf_from_file(path / "tokenizer.json", tokens, kind=meta.get("kind", "hf"))
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return _load_gpt2(path / "vocab.json", path / "merges.txt")
    return _load_auto(str(path), trust_remote_code, path=str(path))


def _load_file(path: Path) -> BaseTokenizer:
    if path.suffix == ".model":
        return SentencePieceTokenizer(path.read_bytes())
    if path.suffix == ".json" and (path.parent / "merges.txt").is_file() and _is_flat_vocab(path):
        return _load_gpt2(path, path.parent / "merges.txt")
    if path.suffix == ".json":
        return _hf_from_file(path, _configured_tokens(path.parent), kind="hf")
    raise UserError(f"{path}: not a tokenizer file (expected tokenizer.json, vocab.json + merges.txt, or a SentencePiece .model)")


def _is_flat_vocab(path: Path) -> bool:
    data = _read_json(path)
    return isinstance(data, dict) and "model" not in data


def _hf_from_file(path: Path, tokens: dict[str, str], *, kind: str) -> HFTokenizer:
    from tokenizers import Tokenizer as Backend

    try:
        backend = Backend.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise UserError(f"{path}: not a Hugging Face tokenizer.json ({exc})") from None
    return HFTokenizer(backend, tokens or _guess_tokens(backend.get_vocab(with_added_tokens=True)), kind=kind)


def _configured_tokens(directory: Path) -> dict[str, str]:
    """Special tokens named in tokenizer_config.json / special_tokens_map.json, if any."""
    found: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (directory / name).is_file():
            data = _read_json(directory / name)
            for role in ROLES:
                value = data.get(f"{role}_token")
                value = value.get("content") if isinstance(value, dict) else value
                if isinstance(value, str):
                    found[role] = value
    return found


def _guess_tokens(vocab: dict[str, int]) -> dict[str, str]:
    return {role: next(t for t in names if t in vocab) for role, names in _GUESSES.items() if any(t in vocab for t in names)}


def _load_gpt2(vocab: Path, merges: Path) -> HFTokenizer:
    from tokenizers import AddedToken, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as Backend

    try:
        backend = Backend(models.BPE.from_file(str(vocab), str(merges)))
    except Exception as exc:  # malformed vocab/merges
        raise UserError(f"{vocab} + {merges}: not a GPT-2 BPE vocabulary ({exc})") from None
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokens = _guess_tokens(backend.get_vocab())
    if tokens.get("eos") == "<|endoftext|>":
        tokens.setdefault("bos", "<|endoftext|>")  # GPT-2 uses one token for both
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in set(tokens.values())])
    return HFTokenizer(backend, tokens, kind="gpt2")


def _load_auto(spec: str, trust_remote_code: bool, *, path: str) -> HFTokenizer:
    """A local HF dir without tokenizer.json, or a hub name: via AutoTokenizer."""
    from transformers import AutoTokenizer

    try:
        auto = AutoTokenizer.from_pretrained(spec, trust_remote_code=trust_remote_code)
    except Exception as exc:  # OSError offline, ValueError for unknown classes, ...
        raise UserError(
            f"{spec}: not a tokenizer file or dir, and AutoTokenizer could not load it "
            f"(hub names need the network or a local cache): {exc}"
        ) from None
    backend = getattr(auto, "backend_tokenizer", None)
    if backend is None:
        raise UserError(f"{spec}: AutoTokenizer gave a tokenizer without a fast backend ({type(auto).__name__}); save it with tokenizer.json")
    tokens = {role: getattr(auto, f"{role}_token") for role in ROLES if isinstance(getattr(auto, f"{role}_token", None), str)}
    from tokenizers import Tokenizer as Backend

    return HFTokenizer(Backend.from_str(backend.to_str()), tokens, kind="hf", path=path)


def to_hf(tokenizer: BaseTokenizer):
    """The tokenizer as a ``transformers`` tokenizer (exactly what a saved dir loads as)."""
    import tempfile

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as scratch:
        return AutoTokenizer.from_pretrained(str(tokenizer.save(Path(scratch) / "tokenizer")))


# -------------------------------------------------------------------------------------------------
# Training

Trainer = Callable[[Iterator[str], int, dict[str, str], dict[str, Any]], BaseTokenizer]
TRAINERS: dict[str, Trainer] = {}
MIN_LEARNED = {"bpe": BYTE_OFFSET + 256 + 1, "unigram": BYTE_OFFSET + 2, "sentencepiece": BYTE_OFFSET + 256 + 2, "byte": 0}


def trainer(kind: str) -> Callable[[Trainer], Trainer]:
    """Register a training recipe for ``synthlm tokenizer train --kind KIND``."""

    def register(fn: Trainer) -> Trainer:
        TRAINERS[kind] = fn
        return fn

    return register


def train_tokenizer(
    files: list[str | Path],
    kind: str,
    vocab_size: int | None,
    out: str | Path,
    *,
    extra_tokens: int = 0,
    special_tokens: dict[str, str] | None = None,
    keys: Sequence[str] = ("text",),
    txt_mode: str = "file",
    max_docs: int | None = None,
    min_frequency: int = 2,
    sp_model_type: str = "bpe",
    overwrite: bool = False,
    quiet: bool = False,
) -> BaseTokenizer:
    """Train a ``kind`` tokenizer with ``vocab_size`` ids in all (specials and extras included)."""
    if kind not in TRAINERS:
        raise UserError(f"--kind {kind!r}: choose one of {', '.join(sorted(TRAINERS))}")
    tokens = {**DEFAULT_TOKENS, **(special_tokens or {})}
    if set(tokens) != set(ROLES) or not all(tokens.values()) or len(set(tokens.values())) != len(ROLES):
        raise UserError(f"special tokens must be {', '.join(ROLES)}, each a distinct non-empty string; got {tokens}")
    learned = _learned_size(kind, vocab_size, extra_tokens)
    out = Path(out)
    present = [name for name in TOKENIZER_FILES if (out / name).exists()]
    if present and not overwrite:
        raise UserError(f"{out}: already holds a tokenizer ({present[0]}); pass --overwrite to replace it")
    documents, sources = _training_documents(files, kind, list(keys), txt_mode, max_docs)
    options = {"min_frequency": min_frequency, "sp_model_type": sp_model_type, "quiet": quiet}
    tokenizer = TRAINERS[kind](documents, learned, tokens, options)
    if extra_tokens:
        tokenizer = tokenizer.extend(extra_tokens=extra_tokens)
    provenance = {"trained_on": sources, "requested_vocab_size": vocab_size, "options": {k: v for k, v in options.items() if k != "quiet"}}
    tokenizer.save(out, overwrite=overwrite, provenance=provenance)
    return load_tokenizer(out)


def _learned_size(kind: str, vocab_size: int | None, extra_tokens: int) -> int:
    if extra_tokens < 0:
        raise UserError(f"--extra-tokens must be >= 0, got {extra_tokens}")
    if kind == "byte":
        natural = BYTE_OFFSET + 256 + extra_tokens
        if vocab_size not in (None, natural):
            raise UserError(f"--vocab-size {vocab_size}: a byte tokenizer has exactly {natural} ids (4 specials + 256 bytes + {extra_tokens} extra); omit --vocab-size")
        return 0
    if vocab_size is None:
        raise UserError(f"--vocab-size is required for --kind {kind}")
    learned = vocab_size - extra_tokens
    if learned < MIN_LEARNED[kind]:
        raise UserError(
            f"--vocab-size {vocab_size} is too small for --kind {kind} with {extra_tokens} extra tokens: "
            f"needs at least {MIN_LEARNED[kind] + extra_tokens}"
        )
    return learned


def _training_documents(files, kind: str, keys: list[str], txt_mode: str, max_docs: int | None) -> tuple[Iterator[str], list[str]]:
    from synthlm.readers import expand_inputs, iter_documents, source_summary

    if kind == "byte" and not files:
        return iter(()), []
    sources = expand_inputs(list(files))
    documents = iter_documents(sources, keys, txt_mode=txt_mode, max_docs=max_docs)
    first = next(documents, None)
    if first is None:
        raise UserError(f"no documents found in {', '.join(map(str, files))} (keys: {', '.join(keys)})")
    return itertools.chain([first], documents), source_summary(sources)


@trainer("bpe")
def _train_bpe(documents: Iterator[str], size: int, tokens: dict[str, str], options: dict) -> BaseTokenizer:
    """Byte-level BPE (GPT-2 style pre-tokenization): every byte is in the alphabet, so lossless."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    recipe = trainers.BpeTrainer(
        vocab_size=size, min_frequency=options["min_frequency"], special_tokens=list(tokens.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=not options["quiet"],
    )
    backend.train_from_iterator(documents, recipe)
    return HFTokenizer(backend, tokens, kind="bpe")


@trainer("unigram")
def _train_unigram(documents: Iterator[str], size: int, tokens: dict[str, str], options: dict) -> BaseTokenizer:
    """Unigram LM over "▁"-marked words (HF tokenizers); non-ASCII characters never seen in
    training map to <unk> (use sentencepiece for byte fallback)."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    backend = Backend(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    recipe = trainers.UnigramTrainer(
        vocab_size=size, special_tokens=list(tokens.values()), unk_token=tokens["unk"], show_progress=not options["quiet"],
        initial_alphabet=[chr(c) for c in range(32, 127)] + ["\n", "\t"],
    )
    backend.train_from_iterator(documents, recipe)
    return HFTokenizer(_demote_specials(backend, len(tokens)), tokens, kind="unigram")


def _demote_specials(backend, count: int):
    """Unigram keeps the specials as ordinary pieces with the best score (0.0), so "</s>" typed in
    a document would become the eos id. Scored far below any real piece (and with every printable
    ASCII character in the alphabet to spell them with), they are never chosen for text."""
    from tokenizers import Tokenizer as Backend

    data = json.loads(backend.to_str())
    vocab = data["model"]["vocab"]
    floor = min(score for _, score in vocab) - 1e6
    for entry in vocab[:count]:
        entry[1] = floor
    return Backend.from_str(json.dumps(data))


@trainer("sentencepiece")
def _train_sentencepiece(documents: Iterator[str], size: int, tokens: dict[str, str], options: dict) -> BaseTokenizer:
    """The sentencepiece library (Llama recipe: byte fallback, digits split, no normalization)."""
    import io
    import os

    import sentencepiece as spm

    if options["sp_model_type"] not in ("bpe", "unigram"):
        raise UserError(f"--sp-model-type {options['sp_model_type']!r}: choose bpe or unigram")
    lines = (line for doc in documents for line in doc.split("\n") if line.strip())
    model = io.BytesIO()
    spm.set_random_generator_seed(0)  # sampling of training sentences is reproducible
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines, model_writer=model, vocab_size=size, model_type=options["sp_model_type"],
            unk_id=0, bos_id=1, eos_id=2, pad_id=3, unk_piece=tokens["unk"], bos_piece=tokens["bos"],
            eos_piece=tokens["eos"], pad_piece=tokens["pad"], byte_fallback=True, split_digits=True,
            normalization_rule_name="identity", remove_extra_whitespaces=False, hard_vocab_limit=False,
            input_sentence_size=5_000_000, shuffle_input_sentence=True, max_sentence_length=1 << 16,
            num_threads=os.cpu_count() or 1, minloglevel=2 if options["quiet"] else 0,
        )
    except RuntimeError as exc:
        raise UserError(f"sentencepiece could not train a {size}-piece model on these inputs: {exc}") from None
    return SentencePieceTokenizer(model.getvalue())


@trainer("byte")
def _train_byte(documents: Iterator[str], size: int, tokens: dict[str, str], options: dict) -> BaseTokenizer:
    """Nothing to learn: the 256 bytes and the specials."""
    return ByteTokenizer(tokens=tokens)
