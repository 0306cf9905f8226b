"""Errors that reach the user, and the one table that turns known failures into clear errors.

Anything raised as :class:`UserError` is a problem with the user's input (a config, a spec, a
path, a flag): the CLI prints its message on one line and exits with status 2, without a
traceback. A few other exception kinds are not bugs either but facts about the user's files and
machine: a full or read-only disk, an output path that is a directory, a config that is not
UTF-8, a truncated JSON / parquet / safetensors file. :func:`explain` maps those to one line
naming the file and what to do, so commands need no try/except of their own; everything else is a
bug and keeps its traceback (and ``synthlm --debug`` keeps the traceback for every error).
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import PurePath
from types import TracebackType

from synthlm.fileio import TMP_MARK


class UserError(Exception):
    """Bad input: the message names the file, key and allowed values."""

    exit_code = 2


class ConfigError(UserError):
    """A config file, spec or override failed validation."""


class StoreError(UserError):
    """A token store on disk is missing, truncated or inconsistent."""


class TrainingDiverged(UserError):
    """The loss became NaN/inf more often than ``train.max_bad_steps`` allows, or fp16
    gradients overflowed at the loss scale's floor."""

    exit_code = 1


def corrupt_file(path: object, what: str, exc: BaseException, hint: str = "") -> UserError:
    """A UserError for a file that exists but cannot be parsed (truncated, not the format)."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    advice = hint or "it is truncated or not this format; restore or regenerate it"
    return UserError(f"{path}: not a valid {what} ({detail}); {advice}")


# ---------------------------------------------------------------------------------------------
# The CLI's table: exception kind -> one line


_OS_ADVICE = {
    errno.ENOSPC: "no space left on device; free space (or choose another output location) "
    "and rerun",
    errno.EDQUOT: "disk quota exceeded; free space or choose another output location, then rerun",
    errno.EROFS: "read-only file system; choose a writable output location",
    errno.EACCES: "permission denied; choose a location you can write (or fix the permissions)",
    errno.EPERM: "operation not permitted; choose another location",
    errno.EISDIR: "is a directory, but a file is needed here; give a file path",
    errno.ENOTDIR: "a component of this path is a file, not a directory; fix the path",
    errno.ENOENT: "no such file or directory",
    errno.EEXIST: "already exists; remove it or choose another name",
    errno.ENAMETOOLONG: "file name too long",
}


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The ``error:`` line and exit status for a known failure, or None for a bug."""
    if isinstance(exc, UserError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)):
        notes = getattr(exc, "__notes__", [])
        return "; ".join([_explain_os(exc), *notes]), 2
    if isinstance(exc, UnicodeDecodeError):
        where = _file_in_traceback(exc.__traceback__) or "an input file"
        return (
            f"{where}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8 text"
        ), 2
    if isinstance(exc, json.JSONDecodeError):
        where = _file_in_traceback(exc.__traceback__) or "a JSON file"
        return (
            f"{where}: not valid JSON ({exc}); it is truncated or corrupt, restore or delete it",
            2,
        )
    if isinstance(exc, EOFError):
        where = _file_in_traceback(exc.__traceback__) or "an input file"
        return f"{where}: ends early ({exc}); the file is truncated, download or copy it again", 2
    if type(exc).__name__ == "FailOnRecompileLimitHit":  # torch._dynamo.exc, not imported here
        return _recompile_limit_line(), 2
    kind = _third_party_kind(exc)
    if kind is not None:
        where = _file_in_traceback(exc.__traceback__) or f"a {kind} file"
        return str(corrupt_file(where, kind, exc)), 2
    return None


def _explain_os(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else _file_in_traceback(exc.__traceback__)
    head = name.split(TMP_MARK)[0] if isinstance(name, str) else ""
    if head and not head.endswith(os.sep):  # FILE.tmp-123-abc: name the file it would become
        name = head
    advice = _OS_ADVICE.get(exc.errno or -1) or (exc.strerror or str(exc))
    if exc.filename2 is not None and exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        name = f"{name} -> {exc.filename2}"
    return f"{name if name is not None else 'an output file'}: {advice}"


def _recompile_limit_line() -> str:
    """synthlm.models.loud_recompile_limit turned dynamo's quiet fallback to eager into this."""
    import sys

    dynamo = sys.modules.get("torch._dynamo.config")
    limit = getattr(dynamo, "recompile_limit", "its")
    return (
        f"model.compile: one compiled function needed more than {limit} graphs (dynamo's "
        "recompile limit), so the batches' shapes keep changing; synthlm stops rather than run "
        "it uncompiled. Set model.compile_dynamic: true for variable-length batches, or "
        "model.compile: false (TORCH_LOGS=recompiles shows what changed)"
    )


def _third_party_kind(exc: BaseException) -> str | None:
    """Format errors of libraries we read files with, by class (importing them here is costly)."""
    module, name = type(exc).__module__, type(exc).__name__
    if module.startswith("pyarrow") and name in ("ArrowInvalid", "ArrowIOError"):
        return "parquet/arrow"
    if name == "SafetensorError" or (module.startswith("safetensors") and "Error" in name):
        return "safetensors"
    if module.startswith("yaml"):
        return "YAML"
    if module.startswith("zstandard"):
        return "zstd"
    return None


_FILE_LOCALS = ("self", "path", "file", "filename", "source", "temp", "target", "final", "out")


def _as_file_name(value: object, key: str) -> str | None:
    """``value`` as a file name if it plausibly is one (a path, or an object with a ``.path``)."""
    if isinstance(value, PurePath):
        return str(value)
    if key != "self" and isinstance(value, str) and (os.sep in value or os.path.exists(value)):
        return value
    inner = getattr(value, "path", None) if key == "source" else None
    return str(inner) if isinstance(inner, (str, PurePath)) else None


def _file_in_traceback(tb: TracebackType | None) -> str | None:
    """The innermost file the failing code was working on: an open file object or a path.

    Low-level errors (``write`` on a full disk, a decode error inside ``read_text``) carry no
    file name; the frames that raised them still hold the file (``self`` of a ``Path``, a
    ``handle``), so the message can name it without every caller wrapping its I/O.
    """
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
        for key in _FILE_LOCALS:
            name = _as_file_name(frame.f_locals.get(key), key)
            if name is not None:
                return name
    return None
