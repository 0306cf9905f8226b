"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions API, with injectable faults.

Runs in a thread of the test process (ephemeral port) while the pipeline runs as a subprocess,
so the server's request log is the ground truth of what the pipeline sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FAKE_KEY = "sk-synthlm-LEAKCHECK-7f3a9c21d4"


def signature(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Hit:
    index: int
    signature: str
    outcome: str
    time: float
    is_entities: bool


EMPTY_FAULTS = ("empty", "blank", "nochoices")  # 200 replies with no usable text, billed
NO_CHOICES_OUTPUT_TOKENS = 3  # billed with no choices, as reasoning tokens are


@dataclass
class FakeOpenAI:
    """``faults`` maps a 0-based request index to a fault; ``fault_for`` may decide per request.

    Faults: ``429``, ``400``, ``500``, ``401``, ``timeout``, ``malformed`` (a torn body),
    ``badjson`` (prose where JSON was asked), ``length`` (cut off), and the empty 200 replies
    ``empty`` (content ""), ``blank`` (whitespace only) and ``nochoices`` (``choices: []``), each
    with the usage a real server bills. ``billed`` lists the (prompt, output) tokens of every 200
    reply, the ground truth for the pipeline's totals.
    """

    faults: dict[int, str] = field(default_factory=dict)
    fault_for: Callable[[int, list[dict[str, str]]], str | None] | None = None
    entities_per_doc: int = 4
    delay: float = 0.0
    hang: float = 3.0
    retry_after: str = "1"
    expected_key: str = FAKE_KEY
    hits: list[Hit] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every request body, in order
    billed: list[tuple[int, int]] = field(default_factory=list)  # usage of every 200 reply

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- bookkeeping ---------------------------------------------------------------------

    def ok_counts(self) -> Counter[str]:
        return Counter(h.signature for h in self.hits if h.outcome == "ok")

    def sent(self) -> Counter[str]:
        return Counter(h.signature for h in self.hits)

    def billed_usage(self) -> dict[str, int]:
        """What the server billed in all: the pipeline's totals must say the same."""
        return {
            "requests": len(self.hits),
            "prompt_tokens": sum(p for p, _ in self.billed),
            "completion_tokens": sum(c for _, c in self.billed),
        }

    # -- replies -------------------------------------------------------------------------

    def reply_text(self, messages: list[dict[str, str]], json_mode: bool = False) -> str:
        """Like a real chat model: JSON only when JSON mode was asked for (response_format)."""
        if is_entity_request(messages):
            text = messages[-1]["content"].split("Content:", 1)[-1]
            names = list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]{2,}\b", text)))[
                : self.entities_per_doc
            ]
            summary = f"Summary {signature(messages)}."
            if json_mode:
                return json.dumps({"summary": summary, "entities": names})
            return f"Sure! {summary} The entities are: " + ", ".join(names) + "."
        return f"Analysis {signature(messages)}: " + " / ".join(
            re.findall(r"^\s*- (.+)$", messages[-1]["content"], re.M)
        )


def is_entity_request(messages: list[dict[str, str]]) -> bool:
    return '"entities"' in messages[0]["content"]


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            messages = body["messages"]
            with fake._lock:
                index = len(fake.hits)
                fault = fake.faults.get(index) or (
                    fake.fault_for(index, messages) if fake.fault_for else None
                )
                if self.headers.get("authorization") != f"Bearer {fake.expected_key}":
                    fault = "401"
                fake.hits.append(
                    Hit(
                        index,
                        signature(messages),
                        fault or "ok",
                        time.monotonic(),
                        is_entity_request(messages),
                    )
                )
                fake.bodies.append(body)
            if fake.delay:
                time.sleep(fake.delay)
            self._answer(fault, messages, body)

        def _answer(
            self, fault: str | None, messages: list[dict[str, str]], body: dict[str, Any]
        ) -> None:
            if fault == "429":
                return self._send(
                    429,
                    {"error": {"message": "rate limited", "type": "rate_limit"}},
                    {"Retry-After": fake.retry_after},
                )
            if fault == "400":
                return self._send(
                    400,
                    {
                        "error": {
                            "message": "maximum context length exceeded",
                            "type": "invalid_request_error",
                        }
                    },
                )
            if fault == "500":
                return self._send(500, {"error": {"message": "upstream exploded"}})
            if fault == "401":
                got = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                return self._send(
                    401,
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {got}",
                            "type": "invalid_request_error",
                        }
                    },
                )
            if fault == "timeout":
                time.sleep(fake.hang)
            if fault == "malformed":
                return self._raw(200, b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess')
            json_mode = (body.get("response_format") or {}).get("type") == "json_object"
            if json_mode and not any("json" in m["content"].lower() for m in messages):
                # OpenAI's rule: JSON mode needs the word JSON in the messages
                return self._send(
                    400,
                    {
                        "error": {
                            "message": "'messages' must contain the word 'json'",
                            "type": "invalid_request_error",
                        }
                    },
                )
            canned = {
                "badjson": "Sure! The entities are Alpha and Beta.",
                "empty": "",
                "blank": " \n ",
            }
            text = canned[fault] if fault in canned else fake.reply_text(messages, json_mode)
            finish = "length" if fault == "length" else "stop"
            prompt = sum(len(m["content"]) for m in messages) // 4
            output = NO_CHOICES_OUTPUT_TOKENS if fault == "nochoices" else len(text) // 4
            choices = [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ]
            with fake._lock:
                fake.billed.append((prompt, output))
            self._send(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [] if fault == "nochoices" else choices,
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": output,
                        "total_tokens": prompt + output,
                    },
                },
            )

        def _send(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            self._raw(status, json.dumps(payload).encode(), headers)

        def _raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test) or was killed

    return Handler


# -- helpers for the CLI tests -------------------------------------------------------------

DOCS = [
    {
        "id": "keeper",
        "title": "Gull Rock",
        "author": "Ann",
        "year": 1961,
        "text": "Marta kept the Lighthouse while Tomas installed the Beacon near Vestby.",
    },
    {
        "id": "vault",
        "title": "Cold Storage",
        "author": "Bo",
        "year": 1974,
        "text": "Ilse guarded the Vault after the Flood broke the Server at Ostrava.",
    },
]
REQUESTS_PER_DOC = 1 + 6 + 4  # entities, C(4,2) pairs, C(4,3) triples (the fake names 4 entities)


def write_docs(path: Path) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    return path


def entigraph_command(docs: Path, out: Path, fake: FakeOpenAI, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "synthlm",
        "entigraph",
        "--docs",
        str(docs),
        "--out",
        str(out),
        "--model",
        "fake-model",
        "--base-url",
        fake.url,
        "--api-key-env",
        "SYNTHLM_TEST_KEY",
        "--retry-base",
        "0.01",
        "--quiet",
        *extra,
    ]


def key_env(key: str = FAKE_KEY) -> dict[str, str]:
    return {**os.environ, "SYNTHLM_TEST_KEY": key}


def run(
    command: list[str], key: str = FAKE_KEY, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, env=key_env(key), capture_output=True, text=True, timeout=timeout
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def request_signature(record: dict[str, Any], docs_path: Path) -> str:
    """The signature the server saw for the request behind a generation record."""
    from synthlm.entigraph.documents import read_documents
    from synthlm.entigraph.requests import Key, entity_values
    from synthlm.entigraph.templates import PromptSet, document_values

    key = Key.from_record(record)
    doc = next(d for d in read_documents(docs_path) if d.id == key.doc_id)
    return signature(PromptSet.load().messages(key.step, document_values(doc, entity_values(key))))
