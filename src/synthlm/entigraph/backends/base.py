"""The one small interface every LLM backend implements, and the registry that names them.

A backend turns chat messages into a :class:`Completion` with token counts. It knows nothing
about retries, budgets or resume: it only *classifies* its failures, so that one policy in the
pipeline governs every backend:

* :class:`TransientError` (rate limits, 5xx, timeouts, malformed responses): worth retrying,
  optionally after the server's ``Retry-After``;
* :class:`FatalError` (bad key, unknown model): retrying any request is pointless, stop the run;
* anything else: this request failed; it is recorded as failed and retried on the next run.

Adding a backend is one module with one ``@register_backend("name")`` class.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from synthlm.errors import UserError
from synthlm.registry import Registry

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """One generation. ``usage_estimated`` is True when the server reported no token usage."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    usage_estimated: bool = False


class BackendError(Exception):
    """Base of the classified failures; messages must never contain credentials."""


class TransientError(BackendError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(BackendError):
    """The backend cannot serve any request (authentication, missing model): stop the run."""


@dataclass(frozen=True)
class BackendOptions:
    """Everything a backend may need; each backend reads only its own fields."""

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    device: str = "auto"
    batch_size: int = 8
    seed: int = 0
    quiet: bool = False


class Backend(abc.ABC):
    name: ClassVar[str]

    def __init__(self, options: BackendOptions) -> None:
        self.options = options

    @abc.abstractmethod
    async def complete(
        self,
        messages: Messages,
        *,
        max_tokens: int | None,
        temperature: float,
        json_mode: bool = False,
    ) -> Completion:
        """Generate one reply; raise the classified errors above on failure.

        ``max_tokens`` None: no cap of ours (the server's or the model's context limit).
        ``json_mode``: ask for a JSON object (OpenAI ``response_format``), as the paper's entity
        step does; a backend that cannot constrain its output says so in :meth:`describe`.
        """

    @abc.abstractmethod
    def count_prompt_tokens(self, messages: Messages) -> int:
        """Prompt tokens this request would use (exact or estimated); used by ``--dry-run``."""

    def check_ready(self, dry_run: bool = False) -> None:  # noqa: B027 (optional hook)
        """Fail fast (UserError) on missing files or credentials (the latter not for a dry run)."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release connections or memory."""

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this backend: never a secret."""
        return {"backend": self.name, "model": self.options.model}


BackendT = TypeVar("BackendT", bound=type[Backend])
BACKENDS: Registry[type[Backend]] = Registry("backend")


def register_backend(name: str) -> Callable[[BackendT], BackendT]:
    def decorate(cls: BackendT) -> BackendT:
        cls.name = name
        BACKENDS.add(name, cls)
        return cls

    return decorate


def build_backend(name: str, options: BackendOptions) -> Backend:
    from synthlm.entigraph import backends  # noqa: F401  (registers the shipped backends)

    if name not in BACKENDS:
        raise UserError(
            f"--backend {name!r}: unknown backend; choose one of {', '.join(BACKENDS.names())}"
        )
    return BACKENDS[name](options)


def estimate_tokens(text: str) -> int:
    """~4 characters per token: the usual rule of thumb for English BPE vocabularies.

    Used only where no tokenizer is at hand (the HTTP backend's dry run, servers that report
    no usage); figures derived from it are labelled as estimates.
    """
    return max(1, (len(text) + 3) // 4)


def estimate_message_tokens(messages: Messages) -> int:
    """Content tokens plus a few per message for the chat-format wrapping."""
    return sum(estimate_tokens(m["content"]) + 4 for m in messages) + 3
