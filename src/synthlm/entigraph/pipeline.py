"""``run_entigraph``: the EntiGraph method as one resumable, budgeted run.

Steps per document (Yang et al. 2024, "Synthetic continued pretraining"): (1) the LLM writes a
summary and lists the document's entities (JSON, validated); (2) for pairs of entities, and
(3) for triples, it writes an analysis of how they relate in the document's context. The texts,
plus the summaries, become ``corpus.jsonl``.

Everything a run needs is checked first (documents, prompts, output directory, credentials);
then the engine (:mod:`.engine`) sends requests; finally the corpus, the list of requests still
failing and the manifest are rewritten, also when the run was stopped by a budget or
interrupted, so the directory always describes exactly what its logs hold. Rerunning the same
command resumes; a run first deletes the temporary files a killed run left behind.

The corpus holds every completed record of the log, also those an earlier run made with other
settings (more documents, larger ``--max-pairs`` / ``--max-triples``, another seed): they were
paid for, and a corpus that shrank and grew back with the flags of the latest run would be
harder to reason about than one that only grows. The report and the manifest count those texts
(``corpus_from_other_settings``), so a narrower rerun says what its corpus holds beyond its
settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthlm import __version__
from synthlm.entigraph.backends.base import Backend, build_backend
from synthlm.entigraph.corpus import (
    CORPUS,
    FAILURE_HISTORY,
    FAILURES,
    GENERATIONS,
    MANIFEST,
    write_corpus,
    write_failures,
)
from synthlm.entigraph.costs import Prices, Usage
from synthlm.entigraph.documents import Document, FieldNames, read_documents
from synthlm.entigraph.engine import Engine
from synthlm.entigraph.estimate import Estimate, estimate_run
from synthlm.entigraph.progress import Progress
from synthlm.entigraph.records import AppendLog
from synthlm.entigraph.requests import STEPS
from synthlm.entigraph.settings import EntiGraphConfig
from synthlm.entigraph.state import RunState, adopt_old_failure_log, directory_lock
from synthlm.entigraph.templates import PromptSet
from synthlm.errors import UserError
from synthlm.fileio import atomic_write_json, remove_stale_temps_of

# The files a run writes atomically (a temporary name, then a rename): a run killed while
# writing one leaves its FINAL.tmp-PID-... behind, which the next run removes.
ATOMIC_OUTPUTS = (CORPUS, FAILURES, MANIFEST)
CORPUS_KIND = {"entities": "summary", "pair": "pair", "triple": "triple"}


@dataclass
class RunReport:
    """What one call did; the CLI prints it, Python callers inspect it."""

    out: Path
    estimate: Estimate | None = None
    completed: int = 0
    failed: int = 0
    transient_retries: int = 0  # after a 429, 5xx, timeout or malformed response
    reasks: int = 0  # after a reply that came back unusable (invalid JSON, empty, cut off)
    still_failing: int = 0  # requests listed in failures.jsonl after this run
    pending: int = 0
    corpus_lines: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    total_usage: Usage = field(default_factory=Usage)
    total_cost: float | None = None
    stop_reason: str | None = None
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)
    # corpus texts these settings do not ask for (made by earlier runs), per corpus kind
    other_settings: dict[str, int] = field(default_factory=dict)

    @property
    def other_settings_texts(self) -> int:
        """Corpus texts from earlier runs with other --docs/--max-pairs/--max-triples/--seed."""
        return sum(self.other_settings.values())

    @property
    def retries(self) -> int:
        """Requests sent again for either reason."""
        return self.transient_retries + self.reasks

    @property
    def complete(self) -> bool:
        return self.pending == 0


class RunInterrupted(KeyboardInterrupt):
    """A second Ctrl-C aborted the requests in flight; outputs were still written."""

    def __init__(self, report: RunReport) -> None:
        super().__init__("interrupted")
        self.report = report


@dataclass
class Session:
    """Everything validated before the first request."""

    cfg: EntiGraphConfig
    documents: list[Document]
    prompts: PromptSet
    backend: Backend
    state: RunState
    prices: Prices

    @property
    def identity(self) -> dict[str, Any]:
        model = self.backend.describe()["model"]
        return {
            "model": model,
            "prompts_sha256": self.prompts.sha256,
            "seed": self.cfg.seed,
            "prices": self.prices,
        }


def run_entigraph(cfg: EntiGraphConfig) -> RunReport:
    """Generate (or resume, or estimate with ``cfg.dry_run``) the EntiGraph corpus in ``cfg.out``."""
    documents = read_documents(
        cfg.docs,
        cfg.format,
        FieldNames(cfg.id_field, cfg.text_field, cfg.title_field, cfg.author_field, cfg.year_field),
    )
    prompts = PromptSet.load(cfg.prompts)
    prompts.check_documents(documents)
    backend = build_backend(cfg.backend, cfg.backend_options())
    backend.check_ready(dry_run=cfg.dry_run)
    if cfg.dry_run:  # reads --out if it exists, writes nothing
        state = RunState.load(cfg.out) if cfg.out.is_dir() else RunState()
        prices = Prices(cfg.price_in, cfg.price_out)
        return RunReport(
            cfg.out, estimate=estimate_run(cfg, documents, prompts, backend, state, prices)
        )
    with directory_lock(cfg.out):
        # Under the lock: no other run writes here, so a temporary of a dead process is garbage.
        remove_stale_temps_of(cfg.out / name for name in ATOMIC_OUTPUTS)
        adopt_old_failure_log(cfg.out)
        state = RunState.load(cfg.out)
        session = Session(
            cfg, documents, prompts, backend, state, Prices(cfg.price_in, cfg.price_out)
        )
        state.check_identity(session.identity, cfg.out, cfg.allow_mixed)
        return _generate(session)


def _generate(session: Session) -> RunReport:
    cfg, state = session.cfg, session.state
    logs = (AppendLog(cfg.out / GENERATIONS), AppendLog(cfg.out / FAILURE_HISTORY))
    progress = Progress(session.prices, disable=cfg.quiet)
    engine = Engine(
        cfg,
        session.documents,
        session.prompts,
        session.backend,
        state,
        logs,
        session.identity,
        progress.update,
    )
    started = time.time()
    aborted = False
    try:
        asyncio.run(_run(engine, session.backend))
    except (KeyboardInterrupt, asyncio.CancelledError):
        aborted = True
    finally:
        progress.close()
        for log in logs:
            log.close()
        report = _finish(session, engine, started)
    report.interrupted = aborted or engine.interrupted
    if aborted:
        raise RunInterrupted(report)
    if engine.fatal:
        raise UserError(f"{engine.fatal}; nothing more was sent (rerun to resume once fixed)")
    return report


async def _run(engine: Engine, backend: Backend) -> None:
    """Run the engine; the first Ctrl-C (or SIGTERM) stops it cleanly, a second one aborts."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if not engine.interrupted:
            engine.interrupted = True
            engine.stop("interrupted")
            print(
                "\ninterrupted: finishing the requests in flight, then writing the corpus "
                "(Ctrl-C again to abort them)",
                file=sys.stderr,
            )
        elif main is not None:
            main.cancel()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, threads
            loop.add_signal_handler(sig, on_signal)
            handled.append(sig)
    try:
        await engine.run()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await backend.aclose()


def _finish(session: Session, engine: Engine, started: float) -> RunReport:
    """Rewrite corpus and manifest from the log on disk; after success, stop or interruption.

    The log is re-read rather than trusting memory: after an abort it may hold records whose
    writers were cancelled before they could be counted.
    """
    cfg, counters = session.cfg, engine.counters
    state = RunState.load(cfg.out)
    pending, wanted = state.coverage(session.documents, cfg.seed, cfg.limits())
    report = RunReport(
        out=cfg.out,
        completed=counters.completed,
        failed=counters.failed,
        transient_retries=counters.transient,
        reasks=counters.reasks,
        pending=pending,
        usage=counters.usage,
        cost=session.prices.usage_cost(counters.usage),
        total_usage=state.usage,
        total_cost=session.prices.usage_cost(state.usage),
        stop_reason=engine.stop_reason,
        failures=counters.failures,
    )
    kinds = write_corpus(cfg.out / CORPUS, cfg.out / GENERATIONS, [d.id for d in session.documents])
    report.corpus_lines = sum(kinds.values())
    report.other_settings = {
        kind: state.steps[step] - wanted[step] for step, kind in CORPUS_KIND.items()
    }
    report.still_failing = write_failures(
        cfg.out / FAILURES, cfg.out / FAILURE_HISTORY, state.done_keys
    )
    atomic_write_json(cfg.out / MANIFEST, _manifest(session, state, report, started))
    return report


def _manifest(
    session: Session, state: RunState, report: RunReport, started: float
) -> dict[str, Any]:
    cfg = session.cfg
    return {
        "synthlm_version": __version__,
        "method": "entigraph",
        "documents": {
            "paths": [str(p) for p in cfg.docs],
            "count": len(session.documents),
            "analysed": sum(d.id in state.entities for d in session.documents),
        },
        "backend": session.backend.describe(),
        "prompts": {"dir": str(session.prompts.directory), "sha256": session.prompts.sha256},
        "seed": cfg.seed,
        "sampling": {
            "max_pairs": cfg.max_pairs,
            "max_triples": cfg.max_triples,
            "max_tokens": cfg.max_tokens,
            "temperature": cfg.temperature,
            "json_mode": cfg.json_mode,
        },
        "records": {"total": state.completed, **{step: state.steps[step] for step in STEPS}},
        "corpus_lines": report.corpus_lines,
        # texts of corpus.jsonl these settings (documents, max_pairs, max_triples, seed) do not
        # ask for: earlier runs in this directory made them; the corpus keeps every record
        "corpus_from_other_settings": {
            "texts": report.other_settings_texts,
            **report.other_settings,
        },
        "pending": report.pending,
        "still_failing": report.still_failing,
        "complete": report.complete,
        "prices_per_million": {"input": cfg.price_in, "output": cfg.price_out},
        "last_run": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 3),
            "completed": report.completed,
            "failed": report.failed,
            "retries": report.retries,
            "transient_retries": report.transient_retries,
            "reasks": report.reasks,
            "usage": report.usage.to_dict(),
            "cost": report.cost,
            "stop_reason": report.stop_reason,
        },
        "total": {"usage": report.total_usage.to_dict(), "cost": report.total_cost},
        "files": {
            "generations": GENERATIONS,
            "failures": FAILURES,
            "failure_history": FAILURE_HISTORY,
            "corpus": CORPUS,
        },
    }
