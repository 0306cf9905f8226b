"""Cheap integrity checks of big input files, run before the heavy libraries load them.

A truncated ``model.safetensors`` (an interrupted copy or download) otherwise surfaces, after
torch and transformers have been imported, as ``SafetensorError: Error while deserializing
header: ...`` without the file's name. The format makes the check nearly free: an 8-byte
little-endian header length, a JSON header giving each tensor's byte range, then the data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from synthlm.errors import UserError

MAX_HEADER = 100 << 20  # safetensors caps the header at 100 MB


def check_safetensors(path: str | Path) -> None:
    """Raise a :class:`UserError` naming ``path`` if it is not a complete safetensors file."""
    path = Path(path)
    size = path.stat().st_size
    hint = "the file is truncated or corrupt (an interrupted copy or save?); copy or save it again"
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise UserError(f"{path}: not a valid safetensors file ({size} bytes); {hint}")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER or 8 + length > size:
            what = f"header of {length} bytes, file of {size}"
            raise UserError(f"{path}: not a valid safetensors file ({what}); {hint}")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError):
            raise UserError(
                f"{path}: not a valid safetensors file (unreadable header); {hint}"
            ) from None
    ends = [
        int(t["data_offsets"][1])
        for k, t in header.items()
        if k != "__metadata__" and isinstance(t, dict)
    ]
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        raise UserError(
            f"{path}: truncated safetensors file ({size} bytes, its header needs {needed}); {hint}"
        )


def check_checkpoint_files(directory: str | Path) -> None:
    """Every ``*.safetensors`` of a model dir (a cheap pass before the model is loaded)."""
    directory = Path(directory)
    if directory.is_dir():
        for path in sorted(directory.glob("*.safetensors")):
            check_safetensors(path)
