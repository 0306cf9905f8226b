"""OpenAI-compatible chat completions over HTTP: OpenAI itself, vLLM, llama.cpp, Ollama servers.

The API key is read from the environment variable named by ``--api-key-env`` when the client is
built, handed to the SDK and nowhere else: it is not stored on this object's public fields, not
written to the manifest, and scrubbed from any error text a server or the HTTP stack might echo it
in (in any of the escaped forms Python prints it in). A key that cannot travel in an HTTP header
(a trailing ``\\r`` from a key file with Windows line endings, a non-ASCII character from a
copy-paste) is refused before anything is sent: sent anyway, it fails inside the HTTP library
with the key in the error text, and every request fails the same way.

The server is ``--base-url``, else ``$OPENAI_BASE_URL`` (which the SDK would read on its own),
else OpenAI's API. We resolve it here and hand the SDK the result, so the URL the manifest
records is the one the requests went to, whichever of the three chose it.
"""

from __future__ import annotations

import email.utils
import functools
import json
import os
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

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
# Derived forms of a key (its stripped core) shorter than this are not scrubbed on their own: a
# placeholder such as "none" (for servers that need no key) is no secret, and replacing every
# "none" in an error message would garble it.
MIN_DERIVED_SECRET = 8


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
        if not dry_run:  # a dry run sends nothing, so needs no key (and does not read it)
            check_key(os.environ[env], env)
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
        except Exception as exc:  # unclassified: fails this request only, never with the key
            raise BackendError(self._scrub(f"{type(exc).__name__}: {exc}")) from None
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
        """The reply as a :class:`Completion`, also when it holds no text.

        Why an empty reply (no choices, empty or blank content) is returned rather than raised:
        the server answered and billed the prompt (and any output tokens), so the usage must be
        counted, in the totals and the ``--max-cost`` budget; and whether to ask again is the
        pipeline's rule for unusable replies (``--json-attempts``), not a server error's.
        """
        choices = getattr(response, "choices", None) or []
        first = choices[0] if choices else None
        message = getattr(first, "message", None)
        content = getattr(message, "content", None)
        text = content if isinstance(content, str) else ""
        finish_reason = getattr(first, "finish_reason", None)
        usage = getattr(response, "usage", None)
        if usage is None or usage.prompt_tokens is None:
            return Completion(
                text,
                estimate_message_tokens(messages),
                estimate_tokens(text) if text else 0,
                finish_reason,
                usage_estimated=True,
            )
        return Completion(
            text,
            int(usage.prompt_tokens),
            int(usage.completion_tokens or 0),
            finish_reason,
        )

    def _scrub(self, text: str) -> str:
        return redact(text, self._secret)

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


_CHARACTER_NAMES = {
    "\r": "a carriage return (\\r)",
    "\n": "a newline (\\n)",
    "\t": "a tab",
    " ": "a space",
    "\xa0": "a no-break space (U+00A0)",
    "\u200b": "a zero-width space (U+200B)",
    "\ufeff": "a byte-order mark (U+FEFF)",
}
_END_HINTS = {
    "\r": " (a key file with Windows line endings?)",
    "\n": " (read with a key file's final newline?)",
    "\ufeff": " (a key file saved as UTF-8 with BOM?)",
}


def _character(char: str) -> str:
    """A character of a key named without showing the key: its name or code point."""
    return _CHARACTER_NAMES.get(char, f"the character U+{ord(char):04X}")


def _surrounding(char: str) -> bool:
    return char.isspace() or char in ("\u200b", "\ufeff")


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be sent as an HTTP ``Authorization`` header value, or None.

    A header value is ASCII without control characters, and without whitespace at either end
    (HTTP strips it, and httpx refuses it). Such a key is refused, not cleaned: stripping would
    send a key other than the one given, and the stray character is usually the sign of a key
    read the wrong way (a key file with Windows line endings, a copy from a web page), which is
    best fixed where the key is stored. The message names a character, never the key.
    """
    if not key.strip():
        return "is blank (only whitespace)"
    if _surrounding(key[-1]):
        return f"ends with {_character(key[-1])}{_END_HINTS.get(key[-1], '')}"
    if _surrounding(key[0]):
        return f"starts with {_character(key[0])}{_END_HINTS.get(key[0], '')}"
    for char in key:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"contains {_character(char)}, a control character"
    for char in key:
        if ord(char) > 0x7F:
            return (
                f"contains {_character(char)}, which is not ASCII (API keys are; was it copied "
                f"from a page or document that changed a character?)"
            )
    return None


def check_key(key: str, env: str) -> None:
    """Refuse (exit 2, before any request) a key that no HTTP request could carry."""
    problem = key_problem(key)
    if problem is None:
        return
    fix = f"export {env} again without that character"
    if "\r" in key or "\n" in key:
        fix += f", e.g. from a key file: export {env}=\"$(tr -d '\\r\\n' < KEYFILE)\""
    raise UserError(
        f"--api-key-env {env}: the key in environment variable {env} {problem}; an HTTP "
        f"header cannot carry it as it is, so nothing was sent: {fix}"
    )


def secret_forms(secret: str) -> list[str]:
    """Every way the key may appear in an error text, longest first.

    Why more than the key itself: libraries print what they refuse as a ``repr`` (httpx and h11:
    ``Illegal header value b'Bearer sk-...\\r'``), so a key with a character needing an escape
    shows up escaped, not verbatim; its stripped core is scrubbed too (when long enough to be a
    secret), which covers any escaping of the characters around it.
    """
    if not secret:
        return []
    forms = {secret}
    core = secret.strip()
    candidates = [secret] + ([core] if len(core) >= MIN_DERIVED_SECRET else [])
    for text in candidates:
        forms.add(text)
        forms.add(repr(text)[1:-1])
        forms.add(ascii(text)[1:-1])
        forms.add(json.dumps(text)[1:-1])
        forms.add(repr(text.encode("utf-8", "backslashreplace"))[2:-1])
        forms.add(text.encode("unicode_escape").decode("ascii"))
        forms.add(quote(text, safe=""))
    return sorted((form for form in forms if form), key=len, reverse=True)


def redact(text: str, secret: str) -> str:
    """``text`` with every form of ``secret`` (see :func:`secret_forms`) replaced."""
    for form in secret_forms(secret):
        text = text.replace(form, REDACTED)
    return text


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
