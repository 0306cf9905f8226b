"""``synthlm synth preview``: the first sequences of each domain, with their parts shown apart.

The examples are the very first sequences ``generate`` writes for each domain's train split (same
seed, same block), so a preview is a faithful look at the data, not a separate sampler.

A domain still being written may have no check yet (its ``solve`` raises NotImplementedError):
the preview still shows its examples, and says that their answers were not checked, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthlm.errors import UserError
from synthlm.synth.blocks import make_block
from synthlm.synth.domain import Domain
from synthlm.synth.generation_plan import make_plan
from synthlm.synth.spec import DatasetSpecBase

INLINE_MARKERS = ("word", "row")  # separators inside an input, shown inline
PART_STYLES = {
    "promoter": "magenta",
    "input": "",
    "query": "cyan",
    "marker": "bold yellow",
    "output": "green",
}


@dataclass
class Part:
    role: str  # promoter | input | query | marker | output
    tokens: list[int]


@dataclass
class PreviewExample:
    domain: str
    type: str
    parts: list[Part]
    valid: bool | None  # None: the domain cannot check a sequence (see unchecked_reason)

    @property
    def length(self) -> int:
        return sum(len(p.tokens) for p in self.parts)


def preview_examples(
    spec: DatasetSpecBase, count: int = 3, only: str | None = None
) -> tuple[list[PreviewExample], dict]:
    """``count`` examples per domain (or only the domain named ``only``), and the bound domains.

    Without a seed in the spec, seed 0 is used.
    """
    spec = spec if spec.seed is not None else spec.model_copy(update={"seed": 0})
    plan = make_plan(spec)
    if only is not None and only not in plan.domain_names():
        raise UserError(
            f"--domain {only!r}: the spec has no such domain; domains: "
            f"{', '.join(plan.domain_names())}"
        )
    out = []
    for index, domain in enumerate(plan.domains):
        if only is not None and domain.name != only:
            continue
        block = make_block(plan, 0, index, 0)
        offsets = block.offsets
        for i in range(min(count, len(block.sizes))):
            sequence = block.tokens[offsets[i] : offsets[i + 1]].astype(np.int64)
            out.append(
                PreviewExample(
                    domain.name,
                    domain.type_name,
                    segments(domain, sequence),
                    verify_if_possible(domain, sequence),
                )
            )
    return out, {d.name: d for d in plan.domains}


def verify_if_possible(domain: Domain, sequence: np.ndarray) -> bool | None:
    """``domain.verify``, or None when the domain implements no check to run."""
    try:
        return domain.verify(sequence)
    except NotImplementedError:
        return None


def unchecked_reason(domain: Domain) -> str:
    """Why a domain's sequences cannot be verified: the method ``synth verify`` would call."""
    if domain.is_task:
        return (
            "the domain has no solver (solve / check_answer not implemented), so its answers "
            "are not checked; synth verify will fail on it"
        )
    return (
        "the domain has no check_language, so its sequences are not checked; synth verify "
        "will fail on it"
    )


def verdict(example: PreviewExample, domain: Domain) -> str:
    """The example's check as shown: ok, FAILED, or n/a naming the missing method."""
    if example.valid is None:
        return "verify n/a: no solver" if domain.is_task else "verify n/a: no check_language"
    return "verify ok" if example.valid else "verify FAILED"


def segments(domain, sequence: np.ndarray) -> list[Part]:
    """Split a sequence into runs of promoter / input / query / marker / output tokens."""
    output = domain.output_mask(sequence)
    inline = {domain.layout.markers.get(m) for m in INLINE_MARKERS}
    markers = set(domain.layout.markers.values())
    query = domain.layout.markers.get("query")
    prompt_end = int(np.argmax(output)) - 1 if output.any() else -1
    roles, after_query = [], False
    for i, token in enumerate(sequence.tolist()):
        if i < len(domain.promoter):
            roles.append("promoter")
        elif token in markers and not output[i] and (token not in inline or i == prompt_end):
            after_query = token == query
            roles.append("marker")
        else:
            roles.append("output" if output[i] else "query" if after_query else "input")
    parts: list[Part] = []
    for role, token in zip(roles, sequence.tolist()):
        if parts and parts[-1].role == role and role != "marker":
            parts[-1].tokens.append(token)
        else:
            parts.append(Part(role, [token]))
    return parts


def render(
    examples: list[PreviewExample], plan_domains: dict, symbols: bool = True, width: int = 40
) -> list:
    """Rich renderables: one block per example, one line per part."""
    from rich.text import Text

    lines = []
    for number, ex in enumerate(examples):
        domain = plan_domains[ex.domain]
        if number == 0 or examples[number - 1].domain != ex.domain:
            lines.append(Text(f"\n{ex.domain} ({ex.type})", style="bold underline"))
            if any(e.valid is None for e in examples if e.domain == ex.domain):
                lines.append(Text(f"  note: {unchecked_reason(domain)}", style="yellow"))
        lines.append(
            Text(
                f"  example {number_in_domain(examples, number)}: {ex.length} tokens, "
                f"{verdict(ex, domain)}",
                style="dim",
            )
        )
        for part in ex.parts:
            shown = [domain.symbol(t) if symbols else str(t) for t in part.tokens]
            if len(shown) > width:
                shown = [
                    *shown[: width // 2],
                    f"... ({len(shown) - width} more) ...",
                    *shown[-width // 2 :],
                ]
            lines.append(
                Text(f"    {part.role:<8} ", style="dim")
                + Text(" ".join(shown), style=PART_STYLES[part.role])
            )
    return lines


def number_in_domain(examples: list[PreviewExample], number: int) -> int:
    return sum(1 for e in examples[:number] if e.domain == examples[number].domain) + 1
