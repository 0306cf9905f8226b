"""Rows of pair files as dicts: jsonl / json / csv / tsv / parquet, compressed or not.

TSV is read without quote handling, because the original GLUE files contain unbalanced quotes
inside sentences (a csv reader in its default mode would merge lines).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from synthlm.data.readers import open_binary
from synthlm.errors import UserError
from synthlm.synth.manifest import is_synthetic_dataset

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}


def detect_format(path: Path, declared: str) -> str:
    """``finetune.format``, or the format implied by the path."""
    if declared != "auto":
        return declared
    if path.is_dir():
        from synthlm.finetune.natural_instructions import is_natural_instructions

        if is_synthetic_dataset(path):
            return "synthetic"
        if is_natural_instructions(path):
            return "natural_instructions"
        raise UserError(
            f"{path}: a directory but neither a synthetic dataset (no manifest.json) nor a "
            f"natural-instructions checkout (no tasks/ and splits/); give a pair file or one "
            f"of those dirs"
        )
    name = path.name.lower().removesuffix(".gz").removesuffix(".zst")
    for extension, kind in EXTENSIONS.items():
        if name.endswith(extension):
            return kind
    raise UserError(
        f"{path}: cannot tell the format from the extension; set finetune.format to one "
        f"of: {', '.join(EXTENSIONS.values())}, synthetic"
    )


def read_rows(path: Path, kind: str, headerless: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every row of a pair file; ``headerless`` names the columns of a file whose first line
    is data (used when that line does not look like a header)."""
    if not path.is_file():
        raise UserError(f"{path}: pair file not found")
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        if kind == "jsonl":
            return [_json(line, path, n) for n, line in enumerate(text, 1) if line.strip()]
        if kind == "json":
            return _json_list(text.read(), path)
        reader = (
            csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
            if kind == "tsv"
            else csv.reader(text)
        )
        return _table(list(reader), path, headerless)


def _json(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
    if not isinstance(row, dict):
        raise UserError(
            f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}"
        )
    return row


def _json_list(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path}: expected a JSON list of objects")
    return rows


def _table(lines: list[list[str]], path: Path, headerless: tuple[str, ...]) -> list[dict[str, Any]]:
    if not lines:
        return []
    header = lines[0]
    if headerless and len(header) == len(headerless) and not set(header) & set(headerless):
        header, body = list(headerless), lines
    else:
        body = lines[1:]
    rows = []
    for number, values in enumerate(body, 2):
        if len(values) != len(header):
            raise UserError(
                f"{path}:{number}: {len(values)} columns, but the header has {len(header)}"
            )
        rows.append(dict(zip(header, values)))
    return rows
