"""SentencePiece models, encoded by the sentencepiece library itself, plus their tokenizer.json.

sentencepiece stays the encoder (its byte fallback and normalization are the reference); the
``tokenizers`` equivalent built here is only what a saved dir offers AutoTokenizer.
"""

from __future__ import annotations

import hashlib
import re

from synthlm.errors import UserError
from synthlm.tokenizers.base import DEFAULT_TOKENS, BaseTokenizer


class SentencePieceTokenizer(BaseTokenizer):
    """A SentencePiece model, encoded by the sentencepiece library itself."""

    kind = "sentencepiece"

    def __init__(self, proto: bytes, *, path: str | None = None, num_threads: int = -1) -> None:
        import sentencepiece as spm

        self._proto = proto
        self._sp = spm.SentencePieceProcessor(model_proto=proto)
        self.num_threads = num_threads  # worker processes set 1: parallelism comes from the pool
        roles = {
            "unk": self._sp.unk_id(),
            "bos": self._sp.bos_id(),
            "eos": self._sp.eos_id(),
            "pad": self._sp.pad_id(),
        }
        super().__init__(
            {role: self._sp.id_to_piece(i) for role, i in roles.items() if i >= 0}, path
        )

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

    def _decode(self, ids: list[int], skip_special: bool) -> str:
        """Like ``sp.decode`` but control tokens (bos, eos, pad, extras) are shown, not dropped."""
        out, run = [], []
        for i in ids:
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
    user = [p.piece for p in model.pieces if p.type == kinds.USER_DEFINED]
    if spec.model_type == pb.TrainerSpec.UNIGRAM:
        backend = Backend(
            models.Unigram(
                _unigram_scores(model, kinds), unk_id=spec.unk_id, byte_fallback=spec.byte_fallback
            )
        )
    elif spec.model_type == pb.TrainerSpec.BPE:
        vocab = {p.piece: i for i, p in enumerate(model.pieces)}
        normal = [p.piece for p in model.pieces if p.type == kinds.NORMAL]
        backend = Backend(
            models.BPE(
                vocab,
                _sp_merges(normal, vocab),
                unk_token=spec.unk_piece,
                fuse_unk=True,
                byte_fallback=spec.byte_fallback,
                # a user-defined piece is no merge of others: looked up whole once isolated
                ignore_merges=bool(user),
            )
        )
    else:
        raise UserError("only unigram and bpe SentencePiece models can be saved for transformers")
    steps = (
        [normalizers.Precompiled(norm.precompiled_charsmap)] if norm.precompiled_charsmap else []
    )
    if norm.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    steps += [normalizers.Prepend("▁")] if norm.add_dummy_prefix else []
    backend.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", "▁")])
    splits = []
    if user and spec.model_type == pb.TrainerSpec.BPE:
        # sentencepiece's BPE cuts user-defined pieces out of the *normalized* text (after the
        # dummy prefix, spaces as "▁") before merging: "foo bar" is "▁", "foo", "▁b", "ar".
        # As added tokens they would be matched in the raw text, each remaining segment getting
        # its own prefix ("foo", "▁", "▁b", "ar"); isolated by a pre-tokenizer, longest first,
        # they are cut where sentencepiece cuts them. (Its unigram instead scores them in the
        # lattice: see _unigram_scores.)
        longest_first = sorted(user, key=len, reverse=True)
        pattern = "|".join(re.escape(piece) for piece in longest_first)
        splits.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated"))
    if spec.split_by_whitespace and not spec.treat_whitespace_as_suffix:
        splits.append(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True))
    if splits:
        backend.pre_tokenizer = pre_tokenizers.Sequence(splits)
    strip = [decoders.Strip(" ", 1, 0)] if norm.add_dummy_prefix else []
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *strip]
    )
    added = [
        AddedToken(p.piece, special=True, normalized=False)
        for p in model.pieces
        if p.type in (kinds.CONTROL, kinds.UNKNOWN)
    ]
    backend.add_tokens(added)
    return backend


FLT_MIN = 1.1754943508222875e-38  # C's FLT_MIN: sentencepiece's starting "max" score


def _unigram_scores(model, kinds) -> list[tuple[str, float]]:
    """Pieces with the scores sentencepiece's unigram lattice gives them: a user-defined piece
    of ``n`` characters scores ``n * max_score - 0.1`` ("a bonus to always be selected"), where
    ``max_score`` starts at FLT_MIN and rises only over a normal piece scoring above it, so with
    the usual negative log probabilities a user-defined piece scores about -0.1. The proto
    stores 0 for them, which the lattice never reads."""
    normal = [p.score for p in model.pieces if p.type == kinds.NORMAL]
    top = max([FLT_MIN, *normal])
    return [
        (p.piece, len(p.piece) * top - 0.1 if p.type == kinds.USER_DEFINED else p.score)
        for p in model.pieces
    ]


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
