"""summary.json and summary.md of the GPU check (written atomically after every phase)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RUN_KEYS = (
    "step_s",
    "tokens_per_s",
    "mfu",
    "peak_mem_gb",
    "first_step_s",
    "setup_s",
    "loader_headroom",
    "compiled_graphs",
    "graph_breaks",
)


def write(out: Path, summary: dict[str, Any]) -> None:
    atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    atomic(out / "summary.md", markdown(summary))


def atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def markdown(summary: dict[str, Any]) -> str:
    env = summary["phases"].get("env", {}).get("figures", {})
    lines = [f"# synthlm GPU check ({summary['mode']})", ""]
    if env:
        lines += [
            f"{env.get('device')}; torch {env.get('torch')}, transformers "
            f"{env.get('transformers')}, "
            f"accelerate {env.get('accelerate')}; measured matmul peak "
            f"{env.get('matmul_peak_tflops')} TFLOP/s "
            f"({env.get('matmul')}), the MFU denominator.",
            "",
        ]
    lines += ["| phase | status | seconds (cap) | with process start |", "|---|---|---|---|"]
    for name, phase in summary["phases"].items():
        lines.append(
            f"| {name} | {phase['status']} | {phase.get('seconds', '-')} "
            f"({phase.get('cap_s', '-')}) | {phase.get('process_s', '-')} |"
        )
    lines.append("")
    runs = [
        (name if key == "run" else f"{name}/{key}", value)
        for name, phase in summary["phases"].items()
        for key, value in _runs(phase.get("figures", {}))
    ]
    if runs:
        lines += ["| run | " + " | ".join(RUN_KEYS) + " |", "|---" * (len(RUN_KEYS) + 1) + "|"]
        lines += [
            f"| {name} | " + " | ".join(str(fig.get(k, "-")) for k in RUN_KEYS) + " |"
            for name, fig in runs
        ]
        lines.append("")
    for name, phase in summary["phases"].items():
        rest = {
            k: v
            for k, v in phase.get("figures", {}).items()
            if not (isinstance(v, dict) and "step_s" in v)
        }
        if phase["status"] != "ok":
            rest = {
                "error": phase.get("error"),
                "partial_figures": phase.get("partial_figures"),
                "stderr_tail": phase.get("stderr_tail", "")[-800:],
            }
        if rest:
            lines += [
                f"## {name}",
                "",
                "```",
                json.dumps(rest, indent=1, default=str)[:3000],
                "```",
                "",
            ]
    return "\n".join(lines)


def _runs(figures: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Timed training runs inside a phase's figures (a phase may hold one or several)."""
    if "step_s" in figures:
        return [("run", figures)]
    return [(k, v) for k, v in figures.items() if isinstance(v, dict) and "step_s" in v]
