"""``--sp-option KEY=VALUE``: any SentencePiece trainer option, checked before any training work.

synthlm's own recipe is Llama 2's (byte fallback, digits split, no normalization), but a user
reproducing a tokenizer trained with the library directly (Rocket's ``spm.SentencePieceTrainer
.train(input=..., vocab_size=32000, pad_id=3)``) needs the library's defaults and its exact
options. The keys and their types are read from the installed library's own protobuf
descriptors (TrainerSpec, NormalizerSpec), so every option that library version knows is
accepted without synthlm listing it, and a typo stops the run before the corpus is read.

A few keys are synthlm's to decide: where the text comes from and where the model goes (it feeds
``--input`` itself and saves into ``--out``), the vocabulary size (``--vocab-size`` counts the
extra tokens too), the id convention <unk> <s> </s> <pad> = 0 1 2 3 and the special pieces (the
``--*-token`` flags), the log level (``--verbose``), and the whitespace settings that the saved
``tokenizer.json`` (what AutoTokenizer loads) cannot express. Such a key is accepted only with the
value synthlm passes anyway (so Rocket's ``pad_id=3`` may be written as it is), and refused with
its reason otherwise.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

from synthlm.errors import UserError
from synthlm.tokenizers.base import ROLES

SP_DEFAULTS = ("synthlm", "library")
MODEL_TYPES = ("unigram", "bpe")  # the two a tokenizer.json can hold (no word / char model)
NORMALIZATION_RULES = ("nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity")
OPTIONS_DOC = "https://github.com/google/sentencepiece/blob/master/doc/options.md"
_ROLE_IDS = {role: i for i, role in enumerate(ROLES)}  # the id convention: 0 1 2 3
_NOT_ACCEPTED = object()

_INPUT = "synthlm feeds sentencepiece the text of --input itself (--keys picks the field)"
_IDS = "synthlm's id convention is <unk> <s> </s> <pad> = 0 1 2 3"
_HF = "the tokenizer.json saved beside the model (what AutoTokenizer loads) cannot express it"
OWNED = {
    "input": _INPUT,
    "input_format": _INPUT,
    "model_prefix": "synthlm writes the model into --out",
    "vocab_size": "set it with --vocab-size (which also counts --extra-tokens)",
    **{f"{role}_id": _IDS for role in _ROLE_IDS},
    **{f"{role}_piece": f"set it with --{role}-token" for role in _ROLE_IDS},
    "minloglevel": "use --verbose for sentencepiece's own log",
    "escape_whitespaces": f"the unigram trainer requires it, and {_HF} otherwise",
    "treat_whitespace_as_suffix": _HF,
    "denormalization_rule_tsv": _HF,
}


def llama_recipe() -> dict[str, Any]:
    """synthlm's defaults (``--sp-defaults synthlm``): Llama 2's tokenizer recipe.

    Byte fallback spells any character unseen in training in UTF-8 bytes (never <unk>), digits
    are split, the text is not normalized (lossless round trips), a small corpus gives a smaller
    vocabulary with a warning rather than a failed run.
    """
    return {
        "model_type": "bpe",
        "byte_fallback": True,
        "split_digits": True,
        "normalization_rule_name": "identity",
        "remove_extra_whitespaces": False,
        "hard_vocab_limit": False,
        "input_sentence_size": 5_000_000,
        "shuffle_input_sentence": True,
        "max_sentence_length": 1 << 16,
        # the library's own default, not this machine's CPU count: the trained model depends on
        # the thread count, so a fixed one gives the same model on any machine
        "num_threads": 16,
    }


def option_fields() -> dict[str, Any]:
    """Every key ``SentencePieceTrainer.train`` accepts -> the protobuf field that types it.

    The library sets a key on TrainerSpec, else on NormalizerSpec, and renames two
    (``normalization_rule_name`` is the normalizer's ``name``); the normalizer's compiled
    charsmap is bytes no command line can carry.
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    normalizer = pb.NormalizerSpec.DESCRIPTOR.fields_by_name
    fields = {
        name: field
        for name, field in normalizer.items()
        if name not in ("name", "precompiled_charsmap")
    }
    fields.update(pb.TrainerSpec.DESCRIPTOR.fields_by_name)
    fields["normalization_rule_name"] = normalizer["name"]
    fields["denormalization_rule_tsv"] = normalizer["normalization_rule_tsv"]
    return fields


def parse_sp_options(items: Sequence[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> ``{key: typed value}``, each key known and given once."""
    fields = option_fields()
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            raise UserError(
                f"--sp-option {item!r}: write KEY=VALUE, e.g. --sp-option byte_fallback=false"
            )
        if key not in fields and key not in OWNED:
            # a key synthlm owns is often also a library field (pad_id): named once
            known = list(dict.fromkeys([*fields, *OWNED]))
            raise UserError(f"--sp-option {item}: {_unknown(key, known)}")
        if key in parsed:
            raise UserError(f"--sp-option {item}: {key} is given twice; keep one")
        parsed[key] = _checked(key, raw, _typed(key, raw, fields.get(key)))
    return parsed


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"sentencepiece has no trainer option {key!r}{hint} (all options: {OPTIONS_DOC})"


def _typed(key: str, raw: str, field: Any) -> Any:
    """The value as the field's type: the library itself would only fail mid-call."""
    if field is None:  # minloglevel: a library flag, not a proto field
        return _integer(key, raw, low=-(2**31), high=2**31 - 1)
    if field.is_repeated:
        return [part.strip() for part in raw.split(",") if part.strip()]
    kind = field.cpp_type
    if kind == field.CPPTYPE_BOOL:
        return _boolean(key, raw)
    signed = {field.CPPTYPE_INT32: 32, field.CPPTYPE_INT64: 64}
    unsigned = {field.CPPTYPE_UINT32: 32, field.CPPTYPE_UINT64: 64}
    if kind in signed:
        half = 2 ** (signed[kind] - 1)
        return _integer(key, raw, low=-half, high=half - 1)
    if kind in unsigned:
        return _integer(key, raw, low=0, high=2 ** unsigned[kind] - 1)
    if kind in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
        return _number(key, raw)
    if kind == field.CPPTYPE_ENUM:
        names = [value.name.lower() for value in field.enum_type.values]
        if raw.strip().lower() not in names:
            raise UserError(f"--sp-option {key}={raw}: {key} takes one of {', '.join(names)}")
        return raw.strip().lower()
    return raw


def _boolean(key: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise UserError(f"--sp-option {key}={raw}: {key} takes true or false")


def _integer(key: str, raw: str, *, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        span = "an integer >= 0" if low == 0 else f"an integer from {low} to {high}"
        raise UserError(f"--sp-option {key}={raw}: {key} takes {span}")
    return value


def _number(key: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"--sp-option {key}={raw}: {key} takes a number, e.g. 0.9995")
    return value


def _checked(key: str, raw: str, value: Any) -> Any:
    """Values the library accepts but synthlm cannot save or load, refused here, not after
    training: a word / char model, and a normalization rule the library does not ship."""
    if key == "model_type" and value not in MODEL_TYPES:
        raise UserError(
            f"--sp-option {key}={raw}: choose {' or '.join(MODEL_TYPES)} (the tokenizer.json "
            f"saved for AutoTokenizer has no {value} model)"
        )
    if key == "normalization_rule_name" and not _known_rule(value):
        raise UserError(
            f"--sp-option {key}={raw}: sentencepiece has no rule {value!r}; choose one of "
            f"{', '.join(NORMALIZATION_RULES)}, or give your own with normalization_rule_tsv=FILE"
        )
    return value


def _known_rule(name: str) -> bool:
    """Asked of the library itself, so a rule a newer version ships is accepted."""
    import sentencepiece as spm

    try:
        spm.SentencePieceNormalizer(rule_name=name)
    except (RuntimeError, ValueError, OSError):
        return False
    return True


def sentencepiece_arguments(
    size: int,
    tokens: dict[str, str],
    *,
    model_type: str | None = None,
    defaults: str = "synthlm",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``SentencePieceTrainer.train`` (less the input, the output and
    the log level), which ``synthlm_tokenizer.json`` records so a run can be repeated.

    ``defaults`` picks synthlm's recipe or the library's own defaults; ``model_type`` is
    ``--sp-model-type``; ``options`` (parsed ``--sp-option``) override either.
    """
    if defaults not in SP_DEFAULTS:
        raise UserError(f"--sp-defaults {defaults!r}: choose {' or '.join(SP_DEFAULTS)}")
    options = dict(options or {})
    owned = _owned_values(size, tokens)
    for key, value in options.items():
        if key in OWNED and owned.get(key, _NOT_ACCEPTED) != value:
            raise UserError(f"--sp-option {key}={_shown(value)}: {_refusal(key, owned)}")
    chosen = _model_type(model_type, options)
    base = llama_recipe() if defaults == "synthlm" else {}
    passed = {key: owned[key] for key in ("vocab_size", *_id_and_piece_keys())}
    return {**passed, **base, **chosen, **options}


def _owned_values(size: int, tokens: dict[str, str]) -> dict[str, Any]:
    """The value synthlm passes (or needs the library default of) for each key it owns."""
    return {
        "vocab_size": size,
        **{f"{role}_id": i for role, i in _ROLE_IDS.items()},
        **{f"{role}_piece": tokens[role] for role in _ROLE_IDS},
        "escape_whitespaces": True,
        "treat_whitespace_as_suffix": False,
    }


def _id_and_piece_keys() -> list[str]:
    return [f"{role}_{what}" for what in ("id", "piece") for role in _ROLE_IDS]


def _refusal(key: str, owned: dict[str, Any]) -> str:
    if key not in owned:
        return f"{OWNED[key]}; leave {key} out"
    return f"{OWNED[key]}, so only {key}={_shown(owned[key])} is accepted"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _model_type(model_type: str | None, options: dict[str, Any]) -> dict[str, str]:
    """``--sp-model-type`` as a model_type argument; given both ways, they must agree."""
    if model_type is None:
        return {}
    if model_type not in MODEL_TYPES:
        raise UserError(f"--sp-model-type {model_type!r}: choose {' or '.join(MODEL_TYPES)}")
    if options.get("model_type", model_type) != model_type:
        raise UserError(
            f"--sp-model-type {model_type} and --sp-option model_type={options['model_type']} "
            "disagree; give one"
        )
    return {"model_type": model_type}
