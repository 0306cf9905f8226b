"""Every ``synthlm`` command line in the docs and examples names options the command has.

Docs rot silently: a renamed flag leaves a README line that fails the moment a user pastes it
(two paper pages said ``--num-tokens`` for ``synth generate``, which takes ``--tokens``). The
command tree is read from the CLI itself (typer's click commands), so this runs in-process in
well under a second and needs no model or data.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from synthlm.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/**/*.md", "examples/**/*.md", "examples/**/*.yaml", "examples/**/*.sh"]
COMMAND = re.compile(r"(?:^|[\s`(])synthlm ([a-z].*)")
FLAG = re.compile(r"^--[a-z][a-z0-9_-]*$")


def command_lines() -> list[tuple[str, str]]:
    """(file, text after ``synthlm ``) for every command line, continuation lines joined."""
    found = []
    for pattern in DOCS:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text(encoding="utf-8").replace("\\\n", " ")
            for line in text.splitlines():
                match = COMMAND.search(line.strip().lstrip("#").strip())
                if match:
                    rest = re.split(r"`| # |;|\||&&", match.group(1))[0]
                    found.append((str(path.relative_to(ROOT)), rest))
    return found


def resolve(root, words: list[str]):
    """The deepest (sub)command ``words`` name, and how many words named it."""
    command, used = root, 0
    ctx = root.context_class(root)
    for word in words:
        sub = command.get_command(ctx, word) if hasattr(command, "get_command") else None
        if sub is None:
            break
        command, used = sub, used + 1
    return command, used


def test_documented_options_exist():
    root = typer.main.get_command(app)
    lines = command_lines()
    checked, unknown = 0, []
    for where, rest in lines:
        words = rest.split()
        command, used = resolve(root, words)
        if not used:
            continue  # prose such as "synthlm keeps ..." names no command
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        for word in words[used:]:
            name = word.split("=")[0]
            if FLAG.match(name):
                checked += 1
                if name not in options:
                    unknown.append(f"{where}: synthlm {' '.join(words[:used])} {name}")
    assert checked > 200, f"only {checked} options found: is the docs scan still finding lines?"
    assert not unknown, "documented options the CLI does not have:\n" + "\n".join(unknown)
