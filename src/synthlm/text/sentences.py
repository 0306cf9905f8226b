"""Sentence splitting with no download at run time, behind a small registry.

Why not NLTK's punkt by default: it needs a data download on first use, which fails on offline
cluster nodes (a problem DEPTH users hit). ``pysbd`` (rule-based, pure Python, a declared
dependency) is the default; ``rules`` is a small regex splitter, about 50x faster and less
careful with abbreviations, for corpora where speed matters more. ``nltk`` is the splitter the
DEPTH paper's code uses (``nltk.tokenize.sent_tokenize``, English punkt): it needs NLTK and its
``punkt_tab`` model installed beforehand, and stops with the download command when they are
missing, never falling back to another splitter. Adding a splitter is one decorated function
returning sentence end offsets.

Splitting is *lossless*: ``"".join(split_sentences(text)) == text``. Whitespace between two
sentences is given to the start of the next one, because BPE and SentencePiece vocabularies
attach a leading space to the following word (" How", "▁How"); encoding sentence by sentence
then gives almost the same tokens as encoding the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from synthlm.errors import UserError
from synthlm.registry import Registry

SplitFn = Callable[[str], list[int]]
"""Returns the end offset of every sentence (the last one may equal ``len(text)``)."""

SPLITTERS: Registry[SplitFn] = Registry("sentence splitter")
register_splitter = SPLITTERS.register
get_splitter = SPLITTERS.get


def split_sentences(text: str, splitter: str = "pysbd") -> list[str]:
    """Sentences of ``text``; they concatenate back to ``text`` exactly. No empty sentences."""
    if not text.strip():
        return [text] if text else []
    ends = get_splitter(splitter)(text)
    cuts = sorted({_content_end(text, end) for end in ends if 0 < end < len(text)})
    pieces, start = [], 0
    for cut in cuts:
        if text[start:cut].strip():
            pieces.append(text[start:cut])
            start = cut
    pieces.append(text[start:])
    if (
        not pieces[-1].strip() and len(pieces) > 1
    ):  # trailing whitespace stays with the last sentence
        tail = pieces.pop()
        pieces[-1] += tail
    return pieces


def _content_end(text: str, end: int) -> int:
    """Move a sentence end back over trailing whitespace, which belongs to the next sentence."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


@lru_cache(maxsize=8)
def _pysbd_segmenter(language: str):
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


@register_splitter("pysbd")
def pysbd_ends(text: str) -> list[int]:
    """pysbd (English rules). Offsets are found by searching each segment from a cursor, which
    stays correct even where pysbd normalises a segment's whitespace."""
    ends, cursor = [], 0
    for segment in _pysbd_segmenter("en").segment(text):
        core = segment.strip()
        if not core:
            continue
        found = text.find(core, cursor)
        if found < 0:  # pysbd changed the characters; keep the boundaries found so far
            continue
        cursor = found + len(core)
        ends.append(cursor)
    return ends


NLTK_DOWNLOAD = "python -m nltk.downloader punkt_tab"


@lru_cache(maxsize=1)
def _punkt():
    """NLTK's English punkt model, the one ``nltk.tokenize.sent_tokenize`` loads (NLTK >= 3.9
    reads it from the ``punkt_tab`` data package; the DEPTH code downloaded the older pickled
    ``punkt``, whose parameters are the same)."""
    try:
        from nltk.tokenize.punkt import PunktTokenizer
    except ImportError:
        raise UserError(
            "sentence splitter 'nltk' needs NLTK >= 3.9: pip install 'nltk>=3.9'"
        ) from None
    try:
        return PunktTokenizer("english")
    except LookupError:
        raise UserError(
            "sentence splitter 'nltk': NLTK's English punkt model is not installed; "
            "install it once "
            f"(where there is network, or copy it into an NLTK_DATA folder): {NLTK_DOWNLOAD}"
        ) from None


@register_splitter("nltk")
def nltk_ends(text: str) -> list[int]:
    """NLTK punkt (English), as ``nltk.tokenize.sent_tokenize`` splits: end offsets of its spans."""
    return [end for _, end in _punkt().span_tokenize(text)]


_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "al",
        "fig",
        "no",
        "vol",
        "ch",
        "p",
        "pp",
        "mt",
        "ave",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)|\n\s*\n")


@register_splitter("rules")
def rule_ends(text: str) -> list[int]:
    """End at ., ! or ? before whitespace (not after a known abbreviation or an initial), and at
    blank lines."""
    ends = []
    for match in _END.finditer(text):
        if match.group().startswith(".") and _is_abbreviation(text, match.start()):
            continue
        ends.append(match.end())
    return ends


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"(\S+)$", text[:dot])
    if word is None:
        return False
    token = word.group(1).lower().lstrip("(\"'")
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())
