"""The HTTP backend classifies what a real OpenAI-compatible server does, and never leaks the key."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest
from entigraph_fakes import EMPTY_FAULTS, FAKE_KEY, NO_CHOICES_OUTPUT_TOKENS, FakeOpenAI

from synthlm.entigraph.backends.base import (
    BackendError,
    BackendOptions,
    FatalError,
    TransientError,
    build_backend,
)
from synthlm.entigraph.backends.openai_http import (
    REDACTED,
    key_problem,
    public_url,
    redact,
    retry_after_seconds,
)
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


@pytest.mark.parametrize("fault", EMPTY_FAULTS)
def test_an_empty_reply_comes_back_with_the_usage_the_server_billed(monkeypatch, fault):
    """No choices, or empty or blank content, is a reply, not a server error: the pipeline
    re-asks it as an unusable reply, and its billed tokens must count (totals, --max-cost)."""
    with FakeOpenAI(faults={0: fault}) as fake:
        completion = complete_once(fake, monkeypatch)
    assert not completion.text.strip() and not completion.usage_estimated
    prompt, output = fake.billed[0]
    assert (completion.prompt_tokens, completion.completion_tokens) == (prompt, output)
    assert prompt > 0 and (output == NO_CHOICES_OUTPUT_TOKENS) == (fault == "nochoices")
    assert len(fake.hits) == 1


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (
            FAKE_KEY + "\r",
            "ends with a carriage return (\\r) (a key file with Windows line endings?)",
        ),
        (FAKE_KEY + "\n", "ends with a newline"),
        (FAKE_KEY + " ", "ends with a space"),
        ("\t" + FAKE_KEY, "starts with a tab"),
        ("\ufeff" + FAKE_KEY, "starts with a byte-order mark (U+FEFF)"),
        (
            FAKE_KEY[:5] + "\x07" + FAKE_KEY[5:],
            "contains the character U+0007, a control character",
        ),
        (
            FAKE_KEY[:5] + "\u2019" + FAKE_KEY[5:],
            "contains the character U+2019, which is not ASCII",
        ),
        ("  ", "is blank"),
    ],
)
def test_a_key_no_http_header_can_carry_is_refused_by_name_never_shown(monkeypatch, key, problem):
    monkeypatch.setenv("FAKE_KEY_ENV", key)
    with FakeOpenAI() as fake:
        backend = build_backend(
            "openai", BackendOptions(model="m", base_url=fake.url, api_key_env="FAKE_KEY_ENV")
        )
        with pytest.raises(UserError) as caught:
            backend.check_ready()
        backend.check_ready(dry_run=True)  # a dry run sends nothing: it needs no key
    message = str(caught.value)
    assert message.startswith("--api-key-env FAKE_KEY_ENV: the key in environment variable ")
    assert problem in message and "nothing was sent" in message
    assert "LEAKCHECK" not in message and not fake.hits
    assert key_problem(FAKE_KEY) is None and key_problem("none") is None


def test_every_printed_form_of_the_key_is_redacted():
    """httpx prints a header it refuses as bytes; other layers may print a repr or JSON."""
    key = FAKE_KEY + "\r"
    texts = [
        f"Illegal header value b'Bearer {key.encode()!r}'",
        f"Illegal header value {('Bearer ' + key).encode()!r}",
        f"value {key!r} and {key!a} and {key}",
        '{"authorization": "Bearer sk-synthlm-LEAKCHECK-7f3a9c21d4\\r"}',
        f"key {FAKE_KEY}\\u00e9 of a non-ASCII key",
    ]
    for text in texts:
        scrubbed = redact(text, key)
        assert "LEAKCHECK" not in scrubbed and REDACTED in scrubbed, scrubbed
    unicode_key = FAKE_KEY + "é"
    for shown in (repr(unicode_key.encode()), ascii(unicode_key), unicode_key):
        assert "LEAKCHECK" not in redact(f"error: {shown}", unicode_key)
    # a placeholder key (servers that need none) is scrubbed as itself only
    assert redact("none of the 3 attempts worked", "none\r") == "none of the 3 attempts worked"
    assert redact("", FAKE_KEY) == "" and redact("text", "") == "text"


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
