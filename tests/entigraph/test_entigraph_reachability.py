"""``synthlm entigraph`` with no server at ``--base-url``: one connection attempt up front, then a
clear exit 2, instead of half a minute of retries and an exit 1 that never says why."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from entigraph_fakes import FakeOpenAI, write_docs

from cli_runner import run_cli
from synthlm.entigraph.backends.openai_http import check_reachable, connect_target
from synthlm.errors import UserError

NO_PROXY = {"NO_PROXY": "*", "no_proxy": "*"}  # the closed port is local, whatever the machine


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound to get a free number, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def entigraph(tmp_path: Path, url: str, *extra: str):
    docs = write_docs(tmp_path / "docs.jsonl")
    env = {"OPENAI_API_KEY": "none", **NO_PROXY}
    args = ("--docs", str(docs), "--out", str(tmp_path / "eg"), "--base-url", url, "--model", "m")
    return run_cli("entigraph", *args, *extra, env=env, timeout=60)


def test_no_server_listening_exits_2_at_once_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    start = time.perf_counter()
    result = entigraph(tmp_path, url)
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert f"error: cannot reach the LLM server at {url} (connection refused): is it running?" in (
        result.stderr
    )
    assert "--base-url" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 15  # one connection attempt, no retries (it took ~27 s)
    assert not (tmp_path / "eg").exists()  # before any work


def test_a_dry_run_needs_no_server(tmp_path):
    result = entigraph(tmp_path, f"http://127.0.0.1:{closed_port()}/v1", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was sent" in result.stdout


def test_a_listening_server_passes_and_receives_nothing():
    with FakeOpenAI() as fake:
        check_reachable(fake.url, "--base-url", timeout=5)
    assert not fake.hits


def test_the_check_goes_where_the_sdk_would_connect(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        for variant in (name, name.lower()):
            monkeypatch.delenv(variant, raising=False)
    assert connect_target("https://api.example.com/v1") == ("api.example.com", 443, None)
    assert connect_target("http://10.0.0.5:8000/v1") == ("10.0.0.5", 8000, None)
    monkeypatch.setenv("https_proxy", "http://user:secret@proxy.local:3128")
    assert connect_target("https://api.example.com/v1") == (
        "proxy.local",
        3128,
        "http://proxy.local:3128",  # no credentials in what an error would print
    )
    monkeypatch.setenv("no_proxy", "api.example.com")
    assert connect_target("https://api.example.com/v1") == ("api.example.com", 443, None)


def test_a_refused_proxy_is_named_as_the_proxy(monkeypatch):
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    port = closed_port()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    with pytest.raises(UserError, match=rf"\(proxy http://127.0.0.1:{port}: connection refused\)"):
        check_reachable("http://10.0.0.5:8000/v1", "--base-url", timeout=5)
