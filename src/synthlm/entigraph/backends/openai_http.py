"""OpenAI-compatible chat completions over HTTP: OpenAI itself, vLLM, llama.cpp, Ollama servers.

The API key is read from the environment variable named by ``--api-key-env`` when the client is
built, handed to the SDK and nowhere else: it is not stored on this object's public fields, not
written to the manifest, and scrubbed from any error text a server might echo it in.

The server is ``--base-url``, else ``$OPENAI_BASE_URL`` (which the SDK would read on its own),
else OpenAI's API. We resolve it here and hand the SDK the result, so the URL the manifest
records is the one the requests went to, whichever of the three chose it.
"""

from __future__ import annotations

import email.utils
import functools
import os
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from synthlm.entigraph.backends.base import (
    Backend,
    BackendError,
    Completion,
    FatalError,
    Messages,
    TransientError,
    estimate_message_tokens,
    estimate_tokens,
    register_backend,
)
from synthlm.errors import UserError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
FATAL_STATUS = {
    401: "the server rejected the API key",
    403: "the API key may not use this model or endpoint",
    404: "model or endpoint not found",
}
REDACTED = "[redacted]"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
REACH_TIMEOUT = 5.0  # seconds; a server that is up accepts a connection at once


@register_backend("openai")
class OpenAIHTTPBackend(Backend):
    """Chat completions through the ``openai`` SDK's async client."""

    _client: Any = None
    _secret: str = ""
    _token_param = "max_tokens"

    @functools.cached_property
    def _server(self) -> tuple[str, str]:
        """(URL, what chose it), resolved once: the URL checked is the one used and recorded."""
        return resolve_base_url(self.options.base_url)

    def check_ready(self, dry_run: bool = False) -> None:
        env = self.options.api_key_env
        if not dry_run and not os.environ.get(env):
            raise UserError(
                f"--api-key-env {env}: environment variable {env} is not set; export the key there "
                f"(servers that need no key, such as vLLM, llama.cpp or Ollama, accept any "
                f"value: export {env}=none)"
            )
        url, source = self._server
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise UserError(
                f"{source} {public_url(url)!r}: expected an http:// or https:// URL, "
                f"e.g. http://127.0.0.1:8000/v1"
            )
        if not dry_run:  # a dry run sends nothing, so needs no server
            check_reachable(url, source, min(self.options.timeout, REACH_TIMEOUT))

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self.check_ready()
            self._secret = os.environ[self.options.api_key_env]
            # max_retries=0: the SDK would otherwise retry on its own, invisibly, with its own
            # caps on Retry-After; our pipeline's policy (exponential backoff with jitter that
            # honours Retry-After, --max-attempts, a pause shared by all workers) must be the
            # only one in force so attempts, waits and failures are counted and reported.
            self._client = AsyncOpenAI(
                api_key=self._secret,
                base_url=self._server[0],
                timeout=self.options.timeout,
                max_retries=0,
            )
        return self._client

    async def complete(
        self,
        messages: Messages,
        *,
        max_tokens: int | None,
        temperature: float,
        json_mode: bool = False,
    ) -> Completion:
        import openai

        client = self._get_client()
        arguments: dict[str, Any] = {
            "model": self.options.model,
            "messages": list(messages),
            "temperature": temperature,
        }
        if max_tokens is not None:  # no cap: the parameter is left out, as the paper's requests do
            arguments[self._token_param] = max_tokens
        if json_mode:
            arguments["response_format"] = {"type": "json_object"}
        try:
            response = await client.chat.completions.create(**arguments)
        except openai.APIStatusError as exc:
            raise self._classify_status(exc) from None
        except openai.APITimeoutError:
            raise TransientError(f"timed out after {self.options.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            raise TransientError(self._scrub(f"connection error: {exc.__cause__ or exc}")) from None
        except (ValueError, openai.APIResponseValidationError) as exc:
            raise TransientError(
                self._scrub(f"malformed response from the server: {exc}")
            ) from None
        return self._completion(response, messages)

    def _classify_status(self, exc: Any) -> BackendError:
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = self._scrub(f"HTTP {status}: {body.get('message') or exc.message}")
        if status in FATAL_STATUS:
            return FatalError(
                f"{FATAL_STATUS[status]} ({detail}); model {self.options.model!r}, key "
                f"from ${self.options.api_key_env}"
            )
        if (
            status == 400
            and "max_completion_tokens" in str(exc.message)
            and self._token_param == "max_tokens"
        ):
            # Newer OpenAI models refuse max_tokens; switch once and retry at once.
            self._token_param = "max_completion_tokens"
            return TransientError(detail, retry_after=0.0)
        if status in RETRYABLE_STATUS or status >= 500:
            return TransientError(detail, retry_after=retry_after_seconds(exc.response.headers))
        return BackendError(detail)

    def _completion(self, response: Any, messages: Messages) -> Completion:
        choices = getattr(response, "choices", None) or []
        text = choices[0].message.content if choices and choices[0].message else None
        if not isinstance(text, str) or not text.strip():
            raise TransientError("the server returned no text (empty choices or content)")
        usage = getattr(response, "usage", None)
        if usage is None or usage.prompt_tokens is None:
            return Completion(
                text,
                estimate_message_tokens(messages),
                estimate_tokens(text),
                choices[0].finish_reason,
                usage_estimated=True,
            )
        return Completion(
            text,
            int(usage.prompt_tokens),
            int(usage.completion_tokens or 0),
            choices[0].finish_reason,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, REDACTED) if self._secret else text

    def count_prompt_tokens(self, messages: Messages) -> int:
        return estimate_message_tokens(messages)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def describe(self) -> dict[str, Any]:
        url, source = self._server
        return {
            **super().describe(),
            "base_url": public_url(url),
            "base_url_from": source,
            "api_key_env": self.options.api_key_env,
        }


def resolve_base_url(flag: str | None) -> tuple[str, str]:
    """The server URL and what chose it: ``--base-url``, ``OPENAI_BASE_URL`` or ``default``.

    An empty ``OPENAI_BASE_URL`` counts as unset (the SDK would take it as an empty URL).
    """
    if flag is not None:
        return flag, "--base-url"
    env = os.environ.get(BASE_URL_ENV, "").strip()
    if env:
        return env, BASE_URL_ENV
    return DEFAULT_BASE_URL, "default"


def check_reachable(url: str, source: str, timeout: float) -> None:
    """Open and close one TCP connection to the server (or to the proxy requests go through).

    Why: with no server listening every request fails with a connection error, which the retry
    policy rightly treats as transient mid-run; before the first request it only means a wrong
    URL or a server not started, and retrying it cost half a minute before an exit 1 that never
    said so. Nothing is sent, so this costs no request and no tokens.
    """
    host, port, proxy = connect_target(url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = connect_failure(exc, host, timeout)
    if proxy is None:
        where, hint = reason, f"is it running? check {_url_setting(source)} (host and port)"
    else:
        where = f"proxy {proxy}: {reason}"
        hint = "is the proxy running? check HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY"
    raise UserError(
        f"cannot reach the LLM server at {public_url(url)} ({where}): {hint}; nothing was sent"
    )


def _url_setting(source: str) -> str:
    return "--base-url" if source == "default" else source


def connect_target(url: str) -> tuple[str, int, str | None]:
    """``(host, port, proxy)``: the proxy the SDK would use for ``url`` (httpx honours
    ``HTTP(S)_PROXY``/``ALL_PROXY`` and ``NO_PROXY``), else the server itself (proxy None)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass_environment(host, proxies):
        hop = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if hop.hostname:
            return hop.hostname, _port(hop), public_url(hop.geturl())
    return host, _port(parts), None


def _port(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def connect_failure(exc: OSError, host: str, timeout: float) -> str:
    """A connection error in words: refused, timed out, unknown host, or the system's text."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias since Python 3.10
        return f"no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"host {host!r} not found"
    return exc.strerror or str(exc)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, or ``retry-after`` (seconds or date)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


def public_url(url: str | None) -> str | None:
    """The URL without user:password or query string, both of which may carry credentials."""
    if url is None:
        return None
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
