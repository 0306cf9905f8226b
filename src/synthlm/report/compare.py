"""``synthlm report --equal-tokens SOURCE``: the comparison table, its JSON and its figure.

The comparison is computed (and so every flag checked: source, metric, budgets, masking, and
that the runs share an objective, a tokenizer and the metric's eval set) before the report
writes anything, so bad input leaves no half-made report behind; it is written with the page
and published with it (:mod:`synthlm.report.publish`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synthlm.config import parse_count
from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json
from synthlm.report.equal_tokens import Comparison, compare, plot
from synthlm.report.load import Run, run_names

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


def equal_tokens_comparison(
    runs: Sequence[Run], source: str, metric: str | None, at: str | None
) -> Comparison:
    """The runs compared at ``at`` tokens of ``source``; raises UserError on any bad flag.

    Labels are the directory names, qualified until unique (:func:`run_names`): short and
    stable, where the page's legend lists config differences.
    """
    budgets = parse_budgets(at)
    return compare(runs, run_names(runs), metric or f"eval/{source}/loss", source, budgets)


def write_equal_tokens(comparison: Comparison, runs: Sequence[Run], folder: Path) -> None:
    """Write ``equal_tokens.json`` and ``.png`` into the report's (staging) folder."""
    atomic_write_json(Path(folder) / JSON_FILE, comparison.to_dict())
    plot(comparison, runs, Path(folder) / PNG_FILE)


def equal_tokens_text(comparison: Comparison, out: Path) -> str:
    """The comparison as a text table, and where its files are once the report is in place."""
    return comparison.table() + f"\n(wrote {Path(out) / JSON_FILE} and {PNG_FILE})"
