"""Prompt templates: editable text files, one system + one user template per step.

Templates use :class:`string.Template` (``$title``, ``$entity_1``) rather than ``str.format``
or Jinja: prompts are full of literal braces (the JSON answer format), and documents are only
ever substituted as values, never parsed as templates, so a ``$`` or ``{`` in a document is
harmless. A prompt set is a directory holding the six files below; ``--prompts DIR`` selects
one, and ``--write-prompts DIR`` copies the shipped set there as a starting point.

The shipped set is the paper's (Yang et al. 2024): its wording, its user-message layout and the
``"title", First Last, year.`` line that opens the document (see prompts/default/SOURCE.md).
``$author`` is the author as "First Last": a "Last, First" name is turned around, as the paper's
code does. A set that uses ``$title``, ``$author`` or ``$year`` refuses documents lacking them
(:meth:`PromptSet.check_documents`) rather than sending a request with a hole in it.

The set's hash (over file names and contents) is recorded in the manifest and with every
generation, so a corpus always says which wording produced it.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from synthlm.errors import UserError

if TYPE_CHECKING:
    from synthlm.entigraph.documents import Document

STEPS: tuple[str, ...] = ("entities", "pair", "triple")
ROLES: tuple[str, ...] = ("system", "user")
DOCUMENT_FIELDS = ("title", "author", "year", "text")
FIELDS: dict[str, tuple[str, ...]] = {
    "entities": DOCUMENT_FIELDS,
    "pair": (*DOCUMENT_FIELDS, "entity_1", "entity_2"),
    "triple": (*DOCUMENT_FIELDS, "entity_1", "entity_2", "entity_3"),
}


def default_prompts_dir() -> Path:
    """The prompt set shipped with the package."""
    return Path(str(resources.files("synthlm.entigraph") / "prompts" / "default"))


def file_names() -> list[str]:
    return [f"{step}.{role}.txt" for step in STEPS for role in ROLES]


@dataclass(frozen=True)
class PromptSet:
    """Loaded, validated templates; :meth:`messages` renders one request's chat messages."""

    directory: Path
    templates: dict[str, Template]
    sha256: str

    @classmethod
    def load(cls, directory: str | Path | None = None) -> PromptSet:
        directory = Path(directory) if directory is not None else default_prompts_dir()
        if not directory.is_dir():
            raise UserError(f"--prompts {directory}: not a directory")
        missing = [name for name in file_names() if not (directory / name).is_file()]
        if missing:
            raise UserError(
                f"--prompts {directory}: missing {', '.join(missing)}; a prompt set needs "
                f"{', '.join(file_names())} (copy the shipped set with --write-prompts DIR)"
            )
        texts = {name: (directory / name).read_text(encoding="utf-8") for name in file_names()}
        templates = {name: _checked(directory / name, text) for name, text in texts.items()}
        digest = hashlib.sha256()
        for name in file_names():
            digest.update(name.encode() + b"\0" + texts[name].encode() + b"\0")
        return cls(directory, templates, digest.hexdigest())

    def placeholders(self) -> set[str]:
        """Every placeholder the set uses, over all steps and roles."""
        return {name for t in self.templates.values() for name in _identifiers(self.directory, t)}

    def check_documents(self, documents: list[Document]) -> None:
        """Refuse, before any request, documents lacking a field the prompts print."""
        for name in ("title", "author", "year"):
            if name not in self.placeholders():
                continue
            lacking = [doc.id for doc in documents if not getattr(doc, name).strip()]
            if lacking:
                shown = ", ".join(repr(i) for i in lacking[:5]) + (
                    " ..." if len(lacking) > 5 else ""
                )
                raise UserError(
                    f"--docs: {len(lacking)} document(s) have no {name} ({shown}), which "
                    f"the prompts in "
                    f"{self.directory} print as ${name}; add it (jsonl key --{name}-field) "
                    f"or use --prompts "
                    "with a set that does not print it"
                )

    def messages(self, step: str, values: dict[str, str]) -> list[dict[str, str]]:
        """Chat messages for one request; ``values`` holds the step's fields."""
        return [
            {"role": role, "content": self.templates[f"{step}.{role}.txt"].substitute(values)}
            for role in ROLES
        ]


def format_name(name: str) -> str:
    """ "Last, First" -> "First Last" (exactly one comma); otherwise the name stripped."""
    parts = name.split(",")
    if len(parts) == 2:
        return f"{parts[1].strip()} {parts[0].strip()}"
    return name.strip()


def document_values(doc: Document, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Template values of one document (plus ``extra``, e.g. the entity names)."""
    values = {
        "title": doc.title,
        "author": format_name(doc.author),
        "year": doc.year,
        "text": doc.text,
    }
    return {**values, **(extra or {})}


def _checked(path: Path, text: str) -> Template:
    """Reject unknown placeholders now, not after hours of generation."""
    step = path.name.split(".", 1)[0]
    template = Template(text)
    allowed = FIELDS[step]
    unknown = [name for name in _identifiers(path, template) if name not in allowed]
    if unknown:
        raise UserError(
            f"{path}: unknown placeholder(s) {', '.join('$' + u for u in unknown)}; "
            f"allowed here: {', '.join('$' + a for a in allowed)}"
        )
    return template


def _identifiers(path: Path, template: Template) -> list[str]:
    """Placeholder names (``Template.get_identifiers`` needs Python 3.11; we support 3.10)."""
    names = []
    for match in template.pattern.finditer(template.template):
        if match.group("invalid") is not None:
            line = template.template[: match.start()].count("\n") + 1
            raise UserError(
                f"{path}:{line}: invalid placeholder; write $name or ${{name}}, and $$ for "
                f"a literal $"
            )
        name = match.group("named") or match.group("braced")
        if name and name not in names:
            names.append(name)
    return names


def write_default_prompts(directory: str | Path) -> list[Path]:
    """Copy the shipped prompt set to ``directory`` (never overwriting) for editing."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    existing = [name for name in file_names() if (directory / name).exists()]
    if existing:
        raise UserError(
            f"--write-prompts {directory}: {', '.join(existing)} already exist; not overwriting"
        )
    source = default_prompts_dir()
    return [Path(shutil.copyfile(source / name, directory / name)) for name in file_names()]
