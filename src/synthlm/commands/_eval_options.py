"""Which ``synthlm eval`` options belong to which evaluation, checked before any work.

``synthlm eval`` runs one of three evaluations: eval sets (``--data`` or the run's
``data.eval``), closed-book QA (``--qa``) or the lm-evaluation-harness (``--lm-eval``). An
option given to an evaluation that does not read it used to be dropped without a word (a
``--seq-len`` with ``--qa``, a ``--qa-shots`` with the loglik scorer), so the results looked
like an answer to the command typed. Every such option is refused here with exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthlm.errors import UserError

SETS, QA, LM_EVAL = "sets", "qa", "lm-eval"
NAMES = {SETS: "eval sets (--data or the run's data.eval)", QA: "--qa", LM_EVAL: "--lm-eval"}
#: instead of a limit the evaluation does not read, the one it does
LIMIT_HINT = {QA: " (use --qa-limit)", LM_EVAL: " (use --limit)"}
SET_LIMITS = ("--max-tokens", "--max-examples", "--max-documents")

#: the evaluations that read each option (the others refuse it)
APPLIES: dict[str, tuple[str, ...]] = {
    "--seq-len": (SETS, LM_EVAL),
    "--batch-size": (SETS, LM_EVAL),
    "--max-tokens": (SETS,),
    "--max-examples": (SETS,),
    "--max-documents": (SETS,),
    "--document-mask": (SETS,),
    "--no-document-mask": (SETS,),
    "--predictions": (SETS, QA),
    "--max-predictions": (SETS,),
    "--qa-scorer": (QA,),
    "--qa-limit": (QA,),
    "--qa-shots": (QA,),
    "--qa-max-new-tokens": (QA,),
    "--qa-protocol": (QA,),
    "--qa-prompt": (QA,),
    "--qa-temperature": (QA,),
    "--qa-stop": (QA,),
    # eval sets are scored deterministically (losses, greedy answers): nothing draws
    "--seed": (QA, LM_EVAL),
}
#: QA options that only the chain-of-thought scorer reads
COT_ONLY = (
    "--qa-shots",
    "--qa-max-new-tokens",
    "--qa-protocol",
    "--qa-prompt",
    "--qa-temperature",
    "--qa-stop",
)


def evaluation_of(lm_eval: str | None, qa: list[Path] | None) -> str:
    return LM_EVAL if lm_eval is not None else QA if qa else SETS


def given_options(options: dict[str, Any]) -> list[str]:
    """The flags of ``options`` the user set (None or an empty list: not given)."""
    return [flag for flag, value in options.items() if value is not None and value != []]


def check_options_apply(evaluation: str, options: dict[str, Any]) -> None:
    """Refuse each option given to an evaluation that does not read it."""
    wrong = [f for f in given_options(options) if evaluation not in APPLIES[f]]
    if not wrong:
        return
    readers = sorted({r for f in wrong for r in APPLIES[f]}, key=list(NAMES).index)
    hint = LIMIT_HINT.get(evaluation, "") if any(f in SET_LIMITS for f in wrong) else ""
    raise UserError(
        f"{', '.join(wrong)}: only for {' or '.join(NAMES[r] for r in readers)}, "
        f"not {NAMES[evaluation]}{hint}"
    )


def check_qa_options(scorer: str, options: dict[str, Any]) -> None:
    """The chain-of-thought options need a scorer that generates."""
    cot = [f for f in given_options(options) if f in COT_ONLY]
    if cot and scorer == "loglik":
        raise UserError(
            f"{', '.join(cot)}: only for the chain-of-thought scorer; add --qa-scorer cot "
            "(or both), or drop the flag (loglik scores each option's likelihood, it "
            "generates nothing)"
        )


def check_lm_eval_options(lm_eval: str | None, *, limit, num_fewshot, include, data, qa) -> None:
    """The lm-eval flags belong together, and lm-eval runs alone (one results file per command)."""
    if lm_eval is None:
        given = given_options(
            {"--limit": limit, "--num-fewshot": num_fewshot, "--lm-eval-include": include}
        )
        if given:
            raise UserError(
                f"{', '.join(given)}: only used with --lm-eval TASKS (e.g. --lm-eval hellaswag)"
            )
        return
    if not lm_eval.strip(" ,"):
        raise UserError("--lm-eval: no task names given; e.g. --lm-eval hellaswag,arc_easy")
    other = [flag for flag, value in (("--data", data), ("--qa", qa)) if value]
    if other:
        raise UserError(
            f"--lm-eval cannot be combined with {' or '.join(other)}; run them as separate "
            f"synthlm eval commands"
        )


def check_qa_alone(data: list[Path] | None, qa: list[Path] | None) -> None:
    """``--qa`` replaces the eval sets; one command writes one results file."""
    if qa and data:
        raise UserError(
            "--qa cannot be combined with --data; run them as separate synthlm eval commands"
        )


def check_predictions_path(predictions: Path, results: Path) -> None:
    """``--predictions`` must not be the results file: the second write would replace it."""
    if Path(predictions).resolve() == Path(results).resolve():
        raise UserError(
            f"--predictions {predictions}: the same file as the results (-o); give the "
            "predictions their own path (default: the results path with .predictions.jsonl)"
        )
