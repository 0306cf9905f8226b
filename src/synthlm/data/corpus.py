"""A small natural corpus shipped with the package, so `synthlm quickstart` runs offline.

tinyshakespeare (about 1 MB of Shakespeare's plays, public domain; the corpus char-rnn and
nanoGPT made the standard first run) is split into documents at scene-sized blank-line breaks.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_corpus() -> Path:
    """Path of the packaged tinyshakespeare.txt."""
    return Path(str(resources.files("synthlm") / "assets" / "tinyshakespeare.txt"))


def split_documents(text: str, min_chars: int = 2000) -> list[str]:
    """Join consecutive speeches (blank-line separated) into documents of at least ``min_chars``."""
    documents, current = [], []
    size = 0
    for block in text.split("\n\n"):
        current.append(block)
        size += len(block) + 2
        if size >= min_chars:
            documents.append("\n\n".join(current))
            current, size = [], 0
    if current:
        documents.append("\n\n".join(current))
    return documents
