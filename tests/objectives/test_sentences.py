"""Sentence splitting: download-free, lossless, pluggable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from t5_helpers import corpus_text

from synthlm.errors import ConfigError
from synthlm.text.sentences import SPLITTERS, register_splitter, split_sentences

TEXT = "Hello there Mr. Smith.  How are you?\nI am fine! Thanks...   ok\n\nNew paragraph"


@pytest.mark.parametrize("splitter", ["pysbd", "rules"])
def test_splits_sentences_and_gives_whitespace_to_the_next(splitter: str) -> None:
    parts = split_sentences(TEXT, splitter)
    assert "".join(parts) == TEXT
    assert parts[0] == "Hello there Mr. Smith."  # an abbreviation is not a sentence end
    assert parts[1] == "  How are you?"
    assert parts[2] == "\nI am fine!"
    assert parts[-1] == "\n\nNew paragraph"


@pytest.mark.parametrize("splitter", ["pysbd", "rules"])
def test_real_text_is_lossless_and_has_no_empty_sentences(splitter: str) -> None:
    text = corpus_text(5000)
    parts = split_sentences(text, splitter)
    assert "".join(parts) == text
    assert len(parts) > 20
    assert all(p.strip() for p in parts)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\"'")), max_size=80))
def test_any_text_round_trips(text: str) -> None:
    for splitter in ("pysbd", "rules"):
        parts = split_sentences(text, splitter)
        assert "".join(parts) == text
        assert all(p.strip() for p in parts) or len(parts) <= 1


def test_splitters_are_pluggable() -> None:
    @register_splitter("test-every-comma")
    def commas(text: str) -> list[int]:
        return [i + 1 for i, c in enumerate(text) if c == ","]

    try:
        assert split_sentences("a, b, c", "test-every-comma") == ["a,", " b,", " c"]
    finally:
        del SPLITTERS["test-every-comma"]


def test_unknown_splitter_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'pysbd'"):
        split_sentences("Hi. There.", "pysdb")
