"""The report's "Synthetic tasks" section: per-domain and per-answer-length tables.

``synthlm eval`` writes these tables into its results file (``RUN/eval/<name>.json``, key
``synthetic``); the report shows them per run and results file, next to where the predictions
JSONL lies, so a reader sees *which* domains and answer lengths a model gets right. Kept apart
from :mod:`synthlm.report.html` so the page layout can change without touching it: the page
only asks for :func:`synthetic_section`, which is empty when no eval wrote such tables.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

TITLE = "Synthetic tasks"


def synthetic_results(run_path: Path) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(results file stem, eval set, tables) for every RUN/eval/*.json holding ``synthetic``."""
    for path in sorted((run_path / "eval").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue  # being written, or not ours: the next report picks it up
        sets = data.get("synthetic") if isinstance(data, dict) else None
        for name, tables in (sets or {}).items() if isinstance(sets, dict) else ():
            if isinstance(tables, dict):
                yield path.stem, str(name), tables


def synthetic_section(runs: Sequence[Any], labels: Sequence[str]) -> str:
    """The whole ``<section>``, or "" when no run has synthetic eval tables."""
    blocks = []
    for run, label in zip(runs, labels):
        for stem, name, tables in synthetic_results(run.path):
            blocks.append(_block(f"{label}: eval/{stem}.json, set {name}", tables))
    if not blocks:
        return ""
    note = (
        '<p class="note">From <code>synthlm eval</code> on synthetic datasets: loss over each '
        "domain's target tokens, greedy exact-match accuracy per domain and by reference answer "
        "length (power-of-two buckets); cells read accuracy (correct / examples).</p>"
    )
    return f'<section id="synthetic-tasks"><h2>{TITLE}</h2>{note}{"".join(blocks)}</section>'


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    return "" if not isinstance(value, (int, float)) else f"{value:.{digits}g}"


def _acc(row: Mapping[str, Any]) -> str:
    if not row.get("examples"):
        return ""
    return f"{_num(row.get('acc'), 3)} ({row.get('correct')}/{row.get('examples')})"


def _block(title: str, tables: Mapping[str, Any]) -> str:
    parts = [f"<h3>{_e(title)}</h3>", _domain_table(tables.get("domains") or [])]
    parts.append(_length_table(tables.get("by_length") or []))
    if tables.get("predictions"):
        parts.append(f'<p class="note">Predictions: <code>{_e(tables["predictions"])}</code></p>')
    return "".join(parts)


def _domain_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = "<tr><th>domain</th><th>loss</th><th>loss tokens</th><th>accuracy</th></tr>"
    body = "".join(
        f'<tr><td>{_e(r.get("domain"))}</td><td class="num">{_num(r.get("loss"))}</td>'
        f'<td class="num">{_e(r.get("loss_tokens", ""))}</td>'
        f'<td class="num">{_e(_acc(r))}</td></tr>'
        for r in rows
    )
    return f'<table class="synthetic-domains">{head}{body}</table>'


def _length_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Answer-length buckets down, domains across."""
    if not rows:
        return ""
    domains = list(dict.fromkeys(str(r.get("domain")) for r in rows))
    buckets = sorted({(r.get("lo", 0), str(r.get("length"))) for r in rows})
    cells = {(str(r.get("domain")), str(r.get("length"))): r for r in rows}
    head = "<tr><th>answer length</th>" + "".join(f"<th>{_e(d)}</th>" for d in domains) + "</tr>"
    body = "".join(
        f"<tr><td>{_e(label)}</td>"
        + "".join(f'<td class="num">{_e(_acc(cells.get((d, label), {})))}</td>' for d in domains)
        + "</tr>"
        for _, label in buckets
    )
    return f'<table class="synthetic-lengths">{head}{body}</table>'
