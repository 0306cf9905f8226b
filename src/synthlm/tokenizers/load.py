"""Load a tokenizer from whatever a user has: a name, a saved dir, or one of the common files.

Format detection lives here: ``synthlm_tokenizer.json`` names the exact kind when present;
otherwise the files in the dir (or the file's suffix) decide, and special tokens come from the
transformers config files or, failing that, from well-known token names.

A spec that is no local file or directory is a Hugging Face Hub name, looked up in this order so
that a mistyped local name fails in a second, not after a minute of retries: a name that cannot
be a repo id stops at once; the local HF cache answers without the network; with
``HF_HUB_OFFLINE=1`` nothing more is tried; otherwise stderr says the Hub is being asked, one
request without retries checks that it can be reached, and only then does AutoTokenizer download.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from synthlm.errors import UserError
from synthlm.tokenizers.base import META_FILE, ROLES, BaseTokenizer
from synthlm.tokenizers.byte import ByteTokenizer
from synthlm.tokenizers.hf import HFTokenizer
from synthlm.tokenizers.sentencepiece import SentencePieceTokenizer

_GUESSES = {
    "unk": ("<unk>", "[UNK]", "<|unk|>"),
    "bos": ("<s>", "<bos>", "<|startoftext|>", "<|begin_of_text|>"),
    "eos": ("</s>", "<eos>", "<|endoftext|>", "<|end_of_text|>"),
    "pad": ("<pad>", "[PAD]", "<|pad|>", "<|padding|>"),  # <|padding|>: GPT-NeoX-20B / Pythia
}


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
    elif _looks_local(text):
        raise UserError(
            f"tokenizer {text}: no such file or directory (it is a local path, not a hub "
            "name such as gpt2 or ORG/NAME); check the path"
        )
    else:
        return _load_hub(text, trust_remote_code)
    tokenizer.path = str(path.resolve())
    return tokenizer


LOCAL_SUFFIXES = (".json", ".model", ".txt", ".vocab")


def _looks_local(text: str) -> bool:
    """A spec no hub name can be (``./x``, ``/x``, ``~/x``, ``a/b/c``, ``x/``, ``x.json``) or
    whose folder exists here: a typo in a local path fails at once, not after a minute of hub
    lookups."""
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or text.endswith(LOCAL_SUFFIXES):
        return True
    if text.endswith("/"):  # a folder, as a shell completes it; hub names never end so
        return True
    parent = Path(text).parent
    return parent != Path(".") and parent.exists()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read this JSON file ({exc})") from None


def _load_dir(path: Path, trust_remote_code: bool) -> BaseTokenizer:
    meta = _read_json(path / META_FILE) if (path / META_FILE).is_file() else {}
    if meta.get("kind") == "byte":
        return ByteTokenizer(
            extra_tokens=int(meta.get("extra_tokens", 0)), tokens=meta.get("special_tokens")
        )
    if (path / "tokenizer.model").is_file() and (
        meta.get("kind") == "sentencepiece" or not (path / "tokenizer.json").is_file()
    ):
        return SentencePieceTokenizer((path / "tokenizer.model").read_bytes())
    if (path / "tokenizer.json").is_file():
        tokens = meta.get("special_tokens") or _configured_tokens(path)
        return _hf_from_file(path / "tokenizer.json", tokens, kind=meta.get("kind", "hf"))
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return _load_gpt2(path / "vocab.json", path / "merges.txt")
    if meta:  # synthlm wrote this dir, and its files are gone: AutoTokenizer would only confuse
        raise UserError(
            f"tokenizer {path}: holds {META_FILE} but not the tokenizer it describes "
            "(tokenizer.json or tokenizer.model): an incomplete copy; copy the whole directory "
            "again, or retrain it"
        )
    if not any(path.iterdir()):
        raise UserError(f"tokenizer {path}: the directory is empty; give a tokenizer directory")
    return _load_auto(str(path), trust_remote_code, path=str(path))


def _load_file(path: Path) -> BaseTokenizer:
    if path.suffix == ".model":
        return SentencePieceTokenizer(path.read_bytes())
    if path.suffix == ".json" and (path.parent / "merges.txt").is_file() and _is_flat_vocab(path):
        return _load_gpt2(path, path.parent / "merges.txt")
    if path.suffix == ".json":
        return _hf_from_file(path, _configured_tokens(path.parent), kind="hf")
    raise UserError(
        f"{path}: not a tokenizer file (expected tokenizer.json, vocab.json + merges.txt, "
        f"or a SentencePiece .model)"
    )


def _is_flat_vocab(path: Path) -> bool:
    data = _read_json(path)
    return isinstance(data, dict) and "model" not in data


def _hf_from_file(path: Path, tokens: dict[str, str], *, kind: str) -> HFTokenizer:
    from tokenizers import Tokenizer as Backend

    try:
        backend = Backend.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise UserError(f"{path}: not a Hugging Face tokenizer.json ({exc})") from None
    return HFTokenizer(
        backend, tokens or _guess_tokens(backend.get_vocab(with_added_tokens=True)), kind=kind
    )


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
    """Roles of a vocabulary that names none (a bare tokenizer.json, vocab.json + merges.txt);
    GPT-2's and GPT-NeoX's one ``<|endoftext|>`` is both their bos and their eos."""
    tokens = {
        role: next(t for t in names if t in vocab)
        for role, names in _GUESSES.items()
        if any(t in vocab for t in names)
    }
    if tokens.get("eos") == "<|endoftext|>":
        tokens.setdefault("bos", "<|endoftext|>")
    return tokens


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
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in set(tokens.values())]
    )
    return HFTokenizer(backend, tokens, kind="gpt2")


HUB_PROBE_TIMEOUT = 10.0  # seconds for the one request that checks the Hub can be reached


def _load_hub(name: str, trust_remote_code: bool) -> HFTokenizer:
    """``name``, no local file or directory, as a Hugging Face Hub repo id: from the local HF
    cache when it is there, else from the Hub, failing at once (not after huggingface_hub's
    retries, ~50 s per file when offline) when it cannot be."""
    from huggingface_hub import constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise UserError(
            f"tokenizer {name}: no such file or directory, and not a Hugging Face Hub name "
            "(gpt2, ORG/NAME); check the path"
        ) from None
    cached = _cached_auto(name, trust_remote_code)
    if cached is not None:
        return cached
    if constants.is_offline_mode():
        raise UserError(
            f"tokenizer {name}: no such file or directory here, and the Hugging Face Hub name "
            f"{name} is not in the local HF cache (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is "
            "set, so the Hub is not asked); check the path, or download it first"
        )
    print(
        f"tokenizer {name}: not a local file or directory, nor in the local HF cache; looking "
        f"it up on the Hugging Face Hub ({constants.ENDPOINT})",
        file=sys.stderr,
    )
    _check_hub_reachable(name)
    return _load_auto(name, trust_remote_code, path=name)


def _cached_auto(name: str, trust_remote_code: bool) -> HFTokenizer | None:
    """The tokenizer from the local HF cache (no network), or None when it is not cached there.

    A cached name is used as cached, online too: no request, and the same files every run
    (``hf download NAME`` refreshes it).
    """
    from transformers import AutoTokenizer

    try:
        auto = AutoTokenizer.from_pretrained(
            name, trust_remote_code=trust_remote_code, local_files_only=True
        )
    except OSError:  # transformers' "not in the cached files" (EnvironmentError)
        return None
    except Exception as exc:  # cached but not loadable: unknown class, remote code, ...
        raise UserError(
            f"{name}: found in the local HF cache, but AutoTokenizer could not load it: {exc}"
        ) from None
    return _from_auto(auto, name)


def _check_hub_reachable(name: str) -> None:
    """One request, no retries: when the Hub cannot be reached (no network, a typo'd local
    name), say so now. Any answer, even 401 or 404, means it can; AutoTokenizer then gives the
    precise error for a missing or gated repo without retrying."""
    from huggingface_hub import constants, get_session

    url = f"{constants.ENDPOINT}/api/models/{name}"
    try:
        get_session().head(url, timeout=HUB_PROBE_TIMEOUT)
    except Exception as exc:  # the HTTP client's connection / timeout errors, whatever its name
        raise UserError(
            f"tokenizer {name}: no such file or directory here, not in the local HF cache, and "
            f"the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached "
            f"({type(exc).__name__}: {exc}); check the path, or the network"
        ) from None


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
    return _from_auto(auto, path)


def _from_auto(auto, path: str) -> HFTokenizer:
    """An AutoTokenizer result as synthlm's tokenizer (its fast backend and special tokens)."""
    backend = getattr(auto, "backend_tokenizer", None)
    if backend is None:
        raise UserError(
            f"{path}: AutoTokenizer gave a tokenizer without a fast backend "
            f"({type(auto).__name__}); save it with tokenizer.json"
        )
    tokens = {
        role: getattr(auto, f"{role}_token")
        for role in ROLES
        if isinstance(getattr(auto, f"{role}_token", None), str)
    }
    from tokenizers import Tokenizer as Backend

    return HFTokenizer(Backend.from_str(backend.to_str()), tokens, kind="hf", path=path)


def to_hf(tokenizer: BaseTokenizer):
    """The tokenizer as a ``transformers`` tokenizer (exactly what a saved dir loads as)."""
    import tempfile

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as scratch:
        return AutoTokenizer.from_pretrained(str(tokenizer.save(Path(scratch) / "tokenizer")))
