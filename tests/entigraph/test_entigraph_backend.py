"""The HTTP backend classifies what a real OpenAI-compatible server does, and never leaks the key."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest
from entigraph_fakes import FAKE_KEY, FakeOpenAI

from synthlm.entigraph.backends.base import (
    BackendError,
    BackendOptions,
    FatalError,
    TransientError,
    build_backend,
)
from synthlm.entigraph.backends.openai_http import public_url, retry_after_seconds
from synthlm.errors import UserError

MESSAGES = [
    {"role": "system", "content": "Reply briefly."},
    {"role": "user", "content": "- Alpha\n- Beta"},
]


def complete_once(fake: FakeOpenAI, monkeypatch, timeout: float = 5.0):
    monkeypatch.setenv("FAKE_KEY_ENV", FAKE_KEY)
    backend = build_backend(
        "openai",
        BackendOptions(model="m", base_url=fake.url, api_key_env="FAKE_KEY_ENV", timeout=timeout),
    )

    async def go():
        try:
            return await backend.complete(MESSAGES, max_tokens=16, temperature=0.0)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_success_reports_text_and_server_usage(monkeypatch):
    with FakeOpenAI() as fake:
        completion = complete_once(fake, monkeypatch)
    assert completion.text.startswith("Analysis") and "Alpha / Beta" in completion.text
    assert completion.prompt_tokens == sum(len(m["content"]) for m in MESSAGES) // 4
    assert not completion.usage_estimated and len(fake.hits) == 1  # the SDK itself never retried


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("429", "HTTP 429"),
        ("500", "HTTP 500"),
        ("malformed", "malformed response"),
        ("timeout", "timed out"),
    ],
)
def test_transient_failures_are_classified_for_our_retry_policy(monkeypatch, fault, message):
    with (
        FakeOpenAI(faults={0: fault}, retry_after="7", hang=1.5) as fake,
        pytest.raises(TransientError, match=message) as caught,
    ):
        # only the hanging fault meets the short timeout: a loaded machine may take longer than
        # 0.3 s to answer the others, which then failed as timeouts
        complete_once(fake, monkeypatch, timeout=0.3 if fault == "timeout" else 30.0)
    assert len(fake.hits) == 1  # max_retries=0 on the SDK: one attempt, ours to repeat
    assert caught.value.retry_after == (7.0 if fault == "429" else None)


def test_bad_key_is_fatal_and_the_echoed_key_is_scrubbed(monkeypatch):
    with (
        FakeOpenAI(expected_key="something-else") as fake,
        pytest.raises(FatalError, match="rejected the API key") as caught,
    ):
        complete_once(fake, monkeypatch)
    assert FAKE_KEY not in str(caught.value) and "[redacted]" in str(caught.value)


def test_other_client_errors_fail_only_the_request(monkeypatch):
    """A 400 (say, a document too long for the context) is neither transient nor fatal."""
    with (
        FakeOpenAI(faults={0: "400"}) as fake,
        pytest.raises(BackendError, match="HTTP 400: maximum context length") as caught,
    ):
        complete_once(fake, monkeypatch)
    assert type(caught.value) is BackendError


def test_missing_key_variable_is_a_user_error_but_not_for_a_dry_run(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    backend = build_backend("openai", BackendOptions(model="m", api_key_env="NO_SUCH_KEY_VAR"))
    with pytest.raises(UserError, match="environment variable NO_SUCH_KEY_VAR is not set"):
        backend.check_ready()
    backend.check_ready(dry_run=True)
    with pytest.raises(UserError, match="expected an http"):
        build_backend("openai", BackendOptions(model="m", base_url="ftp://x")).check_ready(
            dry_run=True
        )
    with pytest.raises(UserError, match="unknown backend; choose one of local, openai"):
        build_backend("nope", BackendOptions(model="m"))


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert (
        8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    )
    assert retry_after_seconds({}) is None


def test_public_url_drops_credentials():
    assert (
        public_url("https://user:sk-secret@api.example.com:8443/v1?key=sk-secret")
        == "https://api.example.com:8443/v1"
    )
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


@pytest.mark.parametrize(
    ("flag", "env", "url", "source"),
    [
        (None, None, "https://api.openai.com/v1", "default"),
        (None, "", "https://api.openai.com/v1", "default"),  # empty: unset, not an empty URL
        (None, "http://u:sk-x@10.0.0.5:8000/v1", "http://10.0.0.5:8000/v1", "OPENAI_BASE_URL"),
        ("http://127.0.0.1:9/v1", "http://10.0.0.5:8000/v1", "http://127.0.0.1:9/v1", "--base-url"),
    ],
)
def test_the_described_server_is_the_one_requests_go_to(monkeypatch, flag, env, url, source):
    """--base-url, else $OPENAI_BASE_URL, else OpenAI's: the manifest never says null."""
    if env is None:
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("OPENAI_BASE_URL", env)
    described = build_backend("openai", BackendOptions(model="m", base_url=flag)).describe()
    assert (described["base_url"], described["base_url_from"]) == (url, source)


def test_a_bad_openai_base_url_is_named_as_such(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://x")
    with pytest.raises(UserError, match="^OPENAI_BASE_URL 'ftp://x': expected an http"):
        build_backend("openai", BackendOptions(model="m")).check_ready(dry_run=True)
