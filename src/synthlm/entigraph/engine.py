"""The asynchronous engine: a bounded queue of requests, N workers, one durable writer.

Design in one paragraph: a producer enqueues each document's entity request, and, as each
entity list arrives, that document's pair and triple requests (so fan-out starts as soon as the
first document is analysed and memory stays bounded). ``--concurrency`` workers take requests,
apply the retry policy and the budget, and hand finished records to the log, which fsyncs each
one before it counts as done (group commit, in a thread: the event loop never blocks on disk).
A record is either fully written or, if we are killed mid-write, a torn tail the next run
drops. Stopping (budget, fatal error, Ctrl-C) starts no new request and lets those in flight
finish and be recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthlm.entigraph.backends.base import Backend, Completion, FatalError, TransientError
from synthlm.entigraph.costs import Budget, Usage
from synthlm.entigraph.documents import Document
from synthlm.entigraph.records import AppendLog, GroupCommitLog
from synthlm.entigraph.requests import (
    InvalidReply,
    Key,
    entity_values,
    follow_up_keys,
    parse_entity_reply,
)
from synthlm.entigraph.retry import PauseGate, RetryPolicy, sleep_unless
from synthlm.entigraph.settings import EntiGraphConfig
from synthlm.entigraph.state import RunState
from synthlm.entigraph.templates import PromptSet, document_values


@dataclass
class Job:
    key: Key
    doc: Document
    entities_ready: asyncio.Future[list[str] | None] | None = None


@dataclass
class Tries:
    """One request's attempts so far, and the tokens they used (invalid replies cost too)."""

    transient: int = 0
    invalid: int = 0
    usage: Usage = field(default_factory=Usage)


class GiveUp(Exception):
    """A request failed for good in this run: logged in failure_history.jsonl (listed in
    failures.jsonl until it succeeds), retried next run."""


@dataclass
class Counters:
    """What this run did; the progress bar and the final report read it.

    A request is sent again for two reasons, counted apart so a summary can name both:
    ``transient`` (429, 5xx, timeout: the same request after a backoff) and ``reasks`` (a reply
    that came back but was unusable: invalid JSON, empty, cut off by the length limit).
    """

    completed: int = 0
    failed: int = 0
    transient: int = 0
    reasks: int = 0
    invalid: int = 0
    usage: Usage = field(default_factory=Usage)
    failures: list[str] = field(default_factory=list)

    @property
    def retries(self) -> int:
        """Every request sent again, whatever the reason: each one costs a round trip."""
        return self.transient + self.reasks


class Engine:
    def __init__(
        self,
        cfg: EntiGraphConfig,
        documents: list[Document],
        prompts: PromptSet,
        backend: Backend,
        state: RunState,
        logs: tuple[AppendLog, AppendLog],
        identity: dict[str, Any],
        on_change: Callable[[Engine], None] = lambda engine: None,
    ) -> None:
        self.cfg, self.documents, self.prompts, self.backend, self.state = (
            cfg,
            documents,
            prompts,
            backend,
            state,
        )
        self.generations, self.failures = GroupCommitLog(logs[0]), logs[1]
        self.identity = identity
        self.on_change = on_change
        self.policy = RetryPolicy(cfg.max_attempts, cfg.retry_base, cfg.retry_max)
        self.gate = PauseGate()
        self.budget = Budget(identity["prices"], cfg.max_cost, cfg.max_requests)
        self.counters = Counters()
        self.total = 0
        self.stop_reason: str | None = None
        self.fatal: str | None = None
        self.interrupted = False
        self._stopped = asyncio.Event()

    # -- producing -------------------------------------------------------------------------

    async def run(self) -> None:
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=2 * self.cfg.concurrency)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.cfg.concurrency)]
        tasks = [asyncio.create_task(self._produce(len(workers))), *workers]
        try:
            # A worker that dies (say, the disk is full) must end the run, not leave the
            # producer blocked on a queue nobody drains.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _produce(self, workers: int) -> None:
        """Entity requests first; each document's follow-ups as soon as its entity list arrives."""
        fresh = [doc for doc in self.documents if doc.id not in self.state.entities]
        fresh_ids = {doc.id for doc in fresh}
        self._grow(len(fresh))
        pending = []
        for doc in fresh:
            future: asyncio.Future[list[str] | None] = asyncio.get_running_loop().create_future()
            pending.append(self._entities_of(doc, future))
            await self.queue.put(Job(Key(doc.id, "entities"), doc, future))
        for doc in self.documents:
            if doc.id not in fresh_ids:
                await self._follow_ups(doc, self.state.entities[doc.id])
        for arrival in asyncio.as_completed(pending):
            doc, entities = await arrival
            if entities:
                await self._follow_ups(doc, entities)
        for _ in range(workers):
            await self.queue.put(None)

    @staticmethod
    async def _entities_of(
        doc: Document, future: asyncio.Future[list[str] | None]
    ) -> tuple[Document, list[str] | None]:
        return doc, await future

    async def _follow_ups(self, doc: Document, entities: list[str]) -> None:
        if self.stop_reason:
            return
        keys = [
            k
            for k in follow_up_keys(doc.id, entities, self.cfg.seed, self.cfg.limits())
            if not self.state.done(k)
        ]
        self._grow(len(keys))
        for key in keys:
            if self.stop_reason:
                return
            await self.queue.put(Job(key, doc))

    def _grow(self, count: int) -> None:
        self.total += count
        self.on_change(self)

    # -- consuming -------------------------------------------------------------------------

    async def _worker(self) -> None:
        while (job := await self.queue.get()) is not None:
            result: list[str] | None = None
            try:
                if not self.stop_reason:
                    result = await self._execute(job)
            finally:
                if job.entities_ready is not None and not job.entities_ready.done():
                    job.entities_ready.set_result(result)

    async def _execute(self, job: Job) -> list[str] | None:
        """Run one request until it is recorded, fails for good, or the run stops.

        Returns the entity list for entity jobs (None otherwise or when nothing was recorded).
        """
        messages = self.prompts.messages(job.key.step, self._values(job))
        estimate = (
            self.backend.count_prompt_tokens(messages) if self.cfg.max_cost is not None else 0
        )
        tries = Tries()
        try:
            while not self.stop_reason:
                completion = await self._attempt(
                    messages, estimate, tries, json_mode=self._json_mode(job.key)
                )
                extra = self._accept(job.key, completion, tries) if completion is not None else None
                if completion is not None and extra is not None:
                    await self._complete(job, completion, tries.usage, extra)
                    return extra.get("entity_list")
        except GiveUp as exc:
            self._fail(job, str(exc), tries.usage)
        return None

    def _json_mode(self, key: Key) -> bool:
        return self.cfg.json_mode and key.step == "entities"

    async def _attempt(
        self, messages: Any, estimate: int, tries: Tries, *, json_mode: bool
    ) -> Completion | None:
        """Send once. None means: retry (after any backoff) or stop; :class:`GiveUp` means failed."""
        reservation = self.budget.admit(
            estimate, self.cfg.max_tokens or 0
        )  # max_cost implies max_tokens
        if reservation is None:
            self.stop(self.budget.exhausted or "budget reached")
            return None
        completion = None
        try:
            await self.gate.wait(self._stopped)
            if self.stop_reason:
                return None
            completion = await self.backend.complete(
                messages,
                max_tokens=self.cfg.max_tokens,
                temperature=self.cfg.temperature,
                json_mode=json_mode,
            )
        except TransientError as exc:
            await self._transient(exc, tries)
        except FatalError as exc:
            self.fatal = str(exc)
            self.stop(f"stopped: {exc}")
        except Exception as exc:  # this request failed for good; the run goes on
            self._count(tries.usage, None)
            raise GiveUp(f"{type(exc).__name__}: {exc}") from None
        finally:
            tokens = (
                (completion.prompt_tokens, completion.completion_tokens) if completion else (0, 0)
            )
            self.budget.settle(reservation, *tokens)
        if completion is not None:
            self._count(tries.usage, completion)
        return completion

    async def _transient(self, exc: TransientError, tries: Tries) -> None:
        """Count a retryable failure; give up after --max-attempts, else back off."""
        self._count(tries.usage, None)
        tries.transient += 1
        if tries.transient >= self.cfg.max_attempts:
            raise GiveUp(f"{exc} (gave up after {tries.transient} attempts)")
        self.counters.transient += 1
        self.on_change(self)
        delay = self.policy.delay(tries.transient, exc.retry_after)
        if exc.retry_after is not None:
            self.gate.pause(delay)  # the server's limit holds for every worker
        await sleep_unless(self._stopped, delay)

    def _accept(self, key: Key, completion: Completion, tries: Tries) -> dict[str, Any] | None:
        """Fields the record adds, or None to ask again; give up after --json-attempts."""
        try:
            return self._validate(key, completion)
        except InvalidReply as exc:
            tries.invalid += 1
            self.counters.invalid += 1
            if tries.invalid >= self.cfg.json_attempts:
                raise GiveUp(f"invalid reply: {exc} (after {tries.invalid} attempts)") from None
            self.counters.reasks += 1
            self.on_change(self)
            return None

    def _values(self, job: Job) -> dict[str, str]:
        return document_values(job.doc, entity_values(job.key))

    def _validate(self, key: Key, completion: Completion) -> dict[str, Any]:
        if completion.finish_reason == "length":
            # A reply cut off by the token limit is an unfinished text, not corpus material.
            raise InvalidReply("cut off by the length limit (finish_reason 'length')")
        if not completion.text.strip():
            # The server answered (and billed the prompt) but wrote nothing usable: a re-ask under
            # --json-attempts like any unusable reply, not a server error under --max-attempts.
            raise InvalidReply("empty reply (no text, or only whitespace)")
        if key.step != "entities":
            return {}
        summary, entities = parse_entity_reply(completion.text)
        return {"summary": summary, "entity_list": entities}

    def _count(self, usage: Usage, completion: Completion | None) -> None:
        tokens = (completion.prompt_tokens, completion.completion_tokens) if completion else (0, 0)
        usage.add(*tokens)
        self.counters.usage.add(*tokens)

    # -- outcomes --------------------------------------------------------------------------

    async def _complete(
        self, job: Job, completion: Completion, usage: Usage, extra: dict[str, Any]
    ) -> None:
        record = {
            "key": job.key.encode(),
            "doc_id": job.key.doc_id,
            "step": job.key.step,
            "entities": list(job.key.entities),
            "text": completion.text,
            **extra,
            "model": self.identity["model"],
            "prompts_sha256": self.identity["prompts_sha256"],
            "seed": self.identity["seed"],
            "finish_reason": completion.finish_reason,
            "usage_estimated": completion.usage_estimated,
            "usage": usage.to_dict(),
            "cost": self.identity["prices"].usage_cost(usage),
            "time": _now(),
        }
        await self.generations.write(record)  # durable before it counts as done
        self.state.add(record)
        self.counters.completed += 1
        self.on_change(self)

    def _fail(self, job: Job, error: str, usage: Usage) -> None:
        self.failures.append(
            {
                "key": job.key.encode(),
                "doc_id": job.key.doc_id,
                "step": job.key.step,
                "entities": list(job.key.entities),
                "error": error,
                "usage": usage.to_dict(),
                "time": _now(),
            }
        )
        self.state.usage.merge(usage)
        self.counters.failed += 1
        if len(self.counters.failures) < 5:
            self.counters.failures.append(f"{job.key.encode()}: {error}")
        self.on_change(self)

    def stop(self, reason: str) -> None:
        """Start no new request; those in flight finish and are recorded."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._stopped.set()
            self.on_change(self)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
