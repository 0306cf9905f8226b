"""Prompt sets: shipped defaults load, edits are validated and change the recorded hash."""

from __future__ import annotations

import pytest

from synthlm.entigraph.templates import PromptSet, file_names, write_default_prompts
from synthlm.errors import UserError

VALUES = {
    "title": "T",
    "author": "A",
    "year": "1999",
    "text": "costs $5 {not a field}",
    "entity_1": "X",
    "entity_2": "Y",
    "entity_3": "Z",
}


def test_shipped_prompts_render_every_step_with_document_and_entities():
    prompts = PromptSet.load()
    for step, expected in (
        ("entities", ["T", "costs $5 {not a field}"]),
        ("pair", ["X", "Y"]),
        ("triple", ["X", "Y", "Z"]),
    ):
        system, user = prompts.messages(step, VALUES)
        assert system["role"] == "system" and user["role"] == "user"
        assert all(value in user["content"] for value in expected)
        assert "$" not in system["content"]
    assert (
        '"entities"' in prompts.messages("entities", VALUES)[0]["content"]
    )  # asks for the JSON shape


def test_written_copy_has_the_same_hash_and_an_edit_changes_it(tmp_path):
    written = write_default_prompts(tmp_path / "p")
    assert sorted(p.name for p in written) == sorted(file_names())
    assert PromptSet.load(tmp_path / "p").sha256 == PromptSet.load().sha256
    (tmp_path / "p" / "pair.user.txt").write_text("Relate $entity_1 and $entity_2 in $title.\n")
    edited = PromptSet.load(tmp_path / "p")
    assert edited.sha256 != PromptSet.load().sha256
    assert edited.messages("pair", VALUES)[1]["content"] == "Relate X and Y in T.\n"
    with pytest.raises(UserError, match="already exist; not overwriting"):
        write_default_prompts(tmp_path / "p")


def test_unknown_placeholder_and_missing_file_are_named(tmp_path):
    write_default_prompts(tmp_path / "p")
    (tmp_path / "p" / "entities.user.txt").write_text("$text about $entity_1")
    with pytest.raises(
        UserError,
        match=r"entities\.user\.txt: unknown placeholder\(s\) \$entity_1; allowed here: "
        r"\$title, \$author, \$year, \$text",
    ):
        PromptSet.load(tmp_path / "p")
    (tmp_path / "p" / "triple.system.txt").unlink()
    with pytest.raises(UserError, match=r"missing triple\.system\.txt"):
        PromptSet.load(tmp_path / "p")


def test_invalid_dollar_syntax_names_the_line(tmp_path):
    write_default_prompts(tmp_path / "p")
    (tmp_path / "p" / "pair.system.txt").write_text("line one\ncosts $ 5\n")
    with pytest.raises(UserError, match=r"pair\.system\.txt:2: invalid placeholder"):
        PromptSet.load(tmp_path / "p")
