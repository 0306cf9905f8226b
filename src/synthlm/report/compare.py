"""``synthlm report --equal-tokens SOURCE``: the comparison table, its JSON and its figure."""

from __future__ import annotations

from pathlib import Path

from synthlm.config import parse_count
from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json
from synthlm.report import Report
from synthlm.report.equal_tokens import compare, plot

JSON_FILE = "equal_tokens.json"
PNG_FILE = "equal_tokens.png"


def parse_budgets(text: str | None) -> list[float]:
    if not text:
        raise UserError("--at: give the token budgets to compare at, e.g. --at 1M,2M")
    try:
        return [float(parse_count(part.strip())) for part in text.split(",") if part.strip()]
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"--at {text}: expected comma-separated token counts such as 500K,1M ({exc})"
        ) from None


def write_equal_tokens(
    report: Report, out: Path, source: str, metric: str | None, at: str | None
) -> str:
    """Write ``equal_tokens.json`` and ``.png`` into the report dir; returns the text table."""
    names = [
        run.name for run in report.runs
    ]  # short and stable; the page's labels list config diffs
    comparison = compare(
        report.runs, names, metric or f"eval/{source}/loss", source, parse_budgets(at)
    )
    atomic_write_json(Path(out) / JSON_FILE, comparison.to_dict())
    plot(comparison, report.runs, Path(out) / PNG_FILE)
    return comparison.table() + f"\n(wrote {Path(out) / JSON_FILE} and {PNG_FILE})"
