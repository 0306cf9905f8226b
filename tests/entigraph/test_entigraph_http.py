"""``synthlm entigraph`` against a real local HTTP server speaking the OpenAI API.

The server (a thread of this test process) injects 429 + Retry-After, 500, timeouts, malformed
bodies and invalid JSON replies, and logs every request it receives; the pipeline runs as a
real ``python -m synthlm entigraph`` subprocess. Invariants: every record exactly once, no
completed request ever sent again (also after SIGKILL or Ctrl-C), failures recorded and retried
next run, budgets stop cleanly, and the API key appears in no output.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from entigraph_fakes import (
    DOCS,
    FAKE_KEY,
    REQUESTS_PER_DOC,
    FakeOpenAI,
    entigraph_command,
    is_entity_request,
    key_env,
    read_jsonl,
    request_signature,
    run,
)

from synthlm.entigraph.requests import Key
from synthlm.entigraph.templates import PromptSet

TOTAL = REQUESTS_PER_DOC * len(DOCS)


def assert_no_key_anywhere(out: Path, *texts: str) -> None:
    for path in out.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
    for text in texts:
        assert FAKE_KEY not in text


def assert_complete(out: Path) -> list[dict]:
    records = read_jsonl(out / "generations.jsonl")
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == TOTAL
    assert Counter(r["step"] for r in records) == {"entities": 2, "pair": 12, "triple": 8}
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["complete"] and manifest["pending"] == 0 and manifest["records"]["total"] == TOTAL
    )
    return records


@pytest.mark.slow
def test_injected_faults_still_give_every_record_exactly_once_and_never_leak_the_key(
    docs, tmp_path
):
    out = tmp_path / "out"
    bad_json_sent: set[str] = set()

    def bad_json_once_for_second_doc(index: int, messages: list[dict]) -> str | None:
        if (
            is_entity_request(messages)
            and "Cold Storage" in messages[1]["content"]
            and not bad_json_sent
        ):
            bad_json_sent.add("yes")
            return "badjson"
        return None

    faults = {0: "429", 3: "500", 6: "timeout", 9: "malformed"}
    with FakeOpenAI(
        faults=faults, fault_for=bad_json_once_for_second_doc, retry_after="1", hang=1.0
    ) as fake:
        command = entigraph_command(
            docs,
            out,
            fake,
            "--timeout",
            "0.4",
            "--concurrency",
            "3",
            "--price-in",
            "2",
            "--price-out",
            "8",
        )
        result = run(command)
        assert result.returncode == 0, result.stderr
        hits = list(fake.hits)
        # A rerun of a complete directory sends nothing.
        again = run(command)
        assert again.returncode == 0 and len(fake.hits) == len(hits)
    assert "0 new records" in again.stdout and "complete" in again.stdout

    records = assert_complete(out)
    ok = Counter(h.signature for h in hits if h.outcome == "ok")
    assert (
        set(ok.values()) == {1} and len(ok) == TOTAL
    )  # each request succeeded once: no duplicate spend
    assert {h.signature for h in hits} == set(ok)  # every faulted request was retried to success
    assert {h.outcome for h in hits} == {"ok", "429", "500", "timeout", "malformed", "badjson"}
    for hit in (h for h in hits if h.outcome == "429"):
        retry = next(h for h in hits if h.signature == hit.signature and h.index > hit.index)
        assert retry.time - hit.time >= 0.95  # Retry-After: 1 honoured
    assert {request_signature(r, docs) for r in records} == set(ok)

    corpus = read_jsonl(out / "corpus.jsonl")
    assert len(corpus) == TOTAL and all(line["text"] for line in corpus)
    assert Counter(line["kind"] for line in corpus) == {"summary": 2, "pair": 12, "triple": 8}
    assert corpus[0]["doc_id"] == DOCS[0]["id"] and corpus[0]["kind"] == "summary"
    tokenized = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthlm",
            "tokenize",
            str(out / "corpus.jsonl"),
            "-t",
            "byte",
            "-o",
            str(tmp_path / "tok" / "eg"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tokenized.returncode == 0 and f"{TOTAL} documents" in tokenized.stdout, (
        tokenized.stderr
    )  # feeds tokenize as is

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prompts"]["sha256"] == PromptSet.load().sha256
    assert manifest["backend"]["model"] == "fake-model" and manifest["seed"] == 0
    usage = manifest["total"]["usage"]
    assert usage["requests"] == len(hits)
    assert usage["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in records)
    assert manifest["total"]["cost"] == pytest.approx(
        (usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 8) / 1e6
    )
    assert_no_key_anywhere(out, result.stdout, result.stderr, again.stdout, again.stderr)


@pytest.mark.slow
def test_sigkill_midway_then_rerun_sends_no_completed_request_again(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI(delay=0.08) as fake:
        command = entigraph_command(docs, out, fake, "--concurrency", "2")
        process = subprocess.Popen(
            command, env=key_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while len(read_jsonl(out / "generations.jsonl")) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        survived = read_jsonl(out / "generations.jsonl")
        assert 6 <= len(survived) < TOTAL
        sent_before = len(fake.hits)
        result = run(command)
        assert result.returncode == 0, result.stderr
        second_run = [h.signature for h in fake.hits[sent_before:]]
    completed_before = {request_signature(r, docs) for r in survived}
    assert not completed_before & set(second_run)
    assert len(second_run) == len(set(second_run)) == TOTAL - len(survived)
    assert_complete(out)


@pytest.mark.slow
def test_ctrl_c_finishes_requests_in_flight_so_resume_repeats_nothing(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI(delay=0.08) as fake:
        command = entigraph_command(docs, out, fake, "--concurrency", "3")
        process = subprocess.Popen(
            command, env=key_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while len(read_jsonl(out / "generations.jsonl")) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "stopped: interrupted" in stdout and "rerun the same command" in stdout
        assert len(read_jsonl(out / "generations.jsonl")) == len(
            fake.hits
        )  # nothing in flight was lost
        result = run(command)
        assert result.returncode == 0, result.stderr
        assert sorted(fake.sent().values()) == [1] * TOTAL
    assert_complete(out)


@pytest.mark.slow
def test_requests_failing_for_good_are_recorded_and_retried_next_run(docs, tmp_path):
    out = tmp_path / "out"
    broken = {"entities": True, "pair": True}

    def faults(index: int, messages: list[dict]) -> str | None:
        user = messages[1]["content"]
        if broken["entities"] and is_entity_request(messages) and "Cold Storage" in user:
            return "badjson"  # the second document never yields valid JSON
        if broken["pair"] and user.endswith("- Gull\n    - Rock\n    "):
            return "500"  # one pair of the first document always fails
        return None

    with FakeOpenAI(fault_for=faults) as fake:
        command = entigraph_command(
            docs, out, fake, "--max-attempts", "3", "--json-attempts", "2", "--concurrency", "2"
        )
        first = run(command)
        assert first.returncode == 1, first.stderr
        failures = read_jsonl(out / "failures.jsonl")
        assert sorted(f["step"] for f in failures) == ["entities", "pair"]
        errors = {f["step"]: f["error"] for f in failures}
        assert "HTTP 500" in errors["pair"] and "after 3 attempts" in errors["pair"]
        assert "invalid reply" in errors["entities"] and "after 2 attempts" in errors["entities"]
        done = read_jsonl(out / "generations.jsonl")
        assert len(done) == REQUESTS_PER_DOC - 1 and {r["doc_id"] for r in done} == {"keeper"}
        assert {f["key"] for f in failures}.isdisjoint({r["key"] for r in done})
        manifest = json.loads((out / "manifest.json").read_text())
        assert not manifest["complete"] and manifest["pending"] == 2
        assert manifest["still_failing"] == 2
        assert "2 requests known to be left" in first.stdout
        # The pair was sent 3 times (2 transient retries), the entity request twice (1 re-ask of
        # an invalid reply): the summary counts both kinds, the manifest names them apart.
        assert "3 retries (2 after server errors, 1 for unusable replies)" in first.stdout
        assert f"still failing: 2 requests listed in {out / 'failures.jsonl'}" in first.stdout
        last = manifest["last_run"]
        assert (last["retries"], last["transient_retries"], last["reasks"]) == (3, 2, 1)

        broken["pair"] = False  # the pair recovers, the second document still fails
        second = run(command)
        assert second.returncode == 1, second.stderr
        failures = read_jsonl(out / "failures.jsonl")
        assert [(f["step"], f["failed_runs"]) for f in failures] == [("entities", 2)]

        broken["entities"] = False
        sent_before = len(fake.hits)
        third = run(command)
        assert third.returncode == 0, third.stderr
        assert len(fake.hits) - sent_before == REQUESTS_PER_DOC  # all of doc 2, nothing else
        hits = len(fake.hits)
    assert_complete(out)
    # Nothing is failing any more: no stale list. The history keeps every failure and its cost.
    assert not (out / "failures.jsonl").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["still_failing"] == 0 and "complete: every request is done" in third.stdout
    history = read_jsonl(out / "failure_history.jsonl")
    assert sorted(f["step"] for f in history) == ["entities", "entities", "pair"]
    assert manifest["total"]["usage"]["requests"] == hits  # failed attempts still counted


def test_failures_of_an_older_version_are_adopted_as_history(docs, tmp_path):
    """Before this layout, failures.jsonl was the append-only log of every failure: its entries
    (and their cost) are kept as the history, and the list is rewritten from it."""
    out = tmp_path / "out"
    out.mkdir()
    key = Key("vault", "entities").encode()
    old = {"key": key, "doc_id": "vault", "step": "entities", "entities": []}
    old.update(error="invalid reply", usage={"requests": 2, "prompt_tokens": 7})
    (out / "failures.jsonl").write_text(json.dumps(old) + "\n", encoding="utf-8")
    with FakeOpenAI() as fake:
        result = run(entigraph_command(docs, out, fake))
        assert result.returncode == 0, result.stderr
        hits = len(fake.hits)
    assert not (out / "failures.jsonl").exists()
    assert read_jsonl(out / "failure_history.jsonl") == [old]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["total"]["usage"]["requests"] == hits + 2


@pytest.mark.slow
def test_dry_run_and_budgets(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        estimate = run(
            entigraph_command(docs, out, fake, "--dry-run", "--assumed-entities", "4", "--json"),
            key="",
        )
        assert estimate.returncode == 0, estimate.stderr
        assert json.loads(estimate.stdout)["total"]["requests"] == TOTAL
        assert not fake.hits and not out.exists()  # nothing sent, nothing written, no key needed

        stopped = run(
            entigraph_command(docs, out, fake, "--max-requests", "5", "--concurrency", "3")
        )
        assert stopped.returncode == 0, stopped.stderr
        assert len(fake.hits) == 5 and "stopped: --max-requests 5 reached" in stopped.stdout

        left = run(
            entigraph_command(docs, out, fake, "--dry-run", "--assumed-entities", "4", "--json")
        )
        assert json.loads(left.stdout)["total"]["requests"] == TOTAL - 5  # estimates what is left

        prices = (
            "--price-in",
            "1000",
            "--price-out",
            "1000",
            "--max-tokens",
            "50",
            "--concurrency",
            "1",
        )
        capped = run(entigraph_command(docs, out, fake, *prices, "--max-cost", "1.0"))
        assert capped.returncode == 0, capped.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert "--max-cost 1 reached" in manifest["last_run"]["stop_reason"]
        assert 0 < manifest["last_run"]["cost"] <= 1.0 and manifest["last_run"]["completed"] >= 1


def without_base_url(command: list[str]) -> list[str]:
    at = command.index("--base-url")
    return command[:at] + command[at + 2 :]


def test_with_no_base_url_the_manifest_records_the_server_openai_base_url_chose(docs, tmp_path):
    """The SDK honours OPENAI_BASE_URL; the manifest must name that server, not null (as if the
    requests had gone to api.openai.com), and name what chose it; never the key."""
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        command = without_base_url(entigraph_command(docs, out, fake, "--max-requests", "2"))
        env = {**key_env(), "OPENAI_BASE_URL": fake.url}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert len(fake.hits) == 2  # the requests really went there
        flagged = run(entigraph_command(docs, tmp_path / "flagged", fake, "--max-requests", "1"))
        assert flagged.returncode == 0, flagged.stderr
    backend = json.loads((out / "manifest.json").read_text())["backend"]
    assert (backend["base_url"], backend["base_url_from"]) == (fake.url, "OPENAI_BASE_URL")
    assert backend["api_key_env"] == "SYNTHLM_TEST_KEY"
    flagged_backend = json.loads((tmp_path / "flagged" / "manifest.json").read_text())["backend"]
    assert flagged_backend["base_url_from"] == "--base-url"
    assert_no_key_anywhere(out, result.stdout, result.stderr)


def test_a_bad_openai_base_url_exits_2_before_any_request(docs, tmp_path):
    with FakeOpenAI() as fake:
        command = without_base_url(entigraph_command(docs, tmp_path / "out", fake))
        env = {**key_env(), "OPENAI_BASE_URL": "ftp://files.example"}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "error: OPENAI_BASE_URL 'ftp://files.example': expected an http" in result.stderr
    assert not fake.hits


@pytest.mark.slow
def test_dry_run_prints_the_expected_cost_next_to_the_expected_tokens(docs, tmp_path):
    """Without --max-tokens (the paper's setting) the maximum cost is unbounded: the expected
    cost, from the mean reply length of each step's records so far, is the figure to use."""
    out = tmp_path / "out"
    first_doc = tmp_path / "first.jsonl"
    first_doc.write_text(json.dumps(DOCS[0]) + "\n", encoding="utf-8")
    estimate = ("--dry-run", "--price-in", "10", "--price-out", "30", "--assumed-entities", "4")
    with FakeOpenAI() as fake:
        fresh = run(entigraph_command(docs, out, fake, *estimate))
        assert run(entigraph_command(first_doc, out, fake)).returncode == 0
        as_json = run(entigraph_command(docs, out, fake, *estimate, "--json"))
        table = run(entigraph_command(docs, out, fake, *estimate))
    assert fresh.returncode == as_json.returncode == table.returncode == 0, table.stderr
    # no records yet: the expected cost is unknown, the prompts' share is said
    assert "? (prompts alone $" in row_of(fresh.stdout, "total")

    rows = json.loads(as_json.stdout)
    records = read_jsonl(out / "generations.jsonl")
    for step, left in {"entities": 1, "pair": 6, "triple": 4}.items():  # the second document
        outputs = [r["usage"]["completion_tokens"] for r in records if r["step"] == step]
        row = rows[step]
        assert row["requests"] == left and row["max_cost"] is None  # unbounded
        assert row["expected_completion_tokens"] == round(left * sum(outputs) / len(outputs))
        assert row["expected_cost"] == pytest.approx(
            (row["prompt_tokens"] * 10 + row["expected_completion_tokens"] * 30) / 1e6
        )
    total = rows["total"]["expected_cost"]
    assert total == pytest.approx(
        sum(rows[s]["expected_cost"] for s in ("entities", "pair", "triple"))
    )
    line = row_of(table.stdout, "total")
    assert "unbounded (no --max-tokens)" in line and line.endswith(f"${total:,.4f}")
    assert "cost (expected)" in table.stdout.splitlines()[1]


def row_of(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.split()[:1] == [name])


def test_rejected_key_stops_the_run_with_exit_2_and_no_leak(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI(expected_key="the-right-key") as fake:
        result = run(entigraph_command(docs, out, fake, "--concurrency", "1"))
    assert result.returncode == 2
    assert "error: the server rejected the API key (HTTP 401" in result.stderr
    assert len(fake.hits) == 1 and not read_jsonl(out / "generations.jsonl")
    assert_no_key_anywhere(out, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        (("--max-pairs", "-1"), FAKE_KEY, "--max-pairs: max_pairs: expected int or null"),
        ((), "", "environment variable SYNTHLM_TEST_KEY is not set"),
    ],
)
def test_bad_input_exits_2_before_any_request(docs, tmp_path, extra, key, message):
    with FakeOpenAI() as fake:
        result = run(entigraph_command(docs, tmp_path / "out", fake, *extra), key=key)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not fake.hits


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_cost": 5.0}, "max_cost (--max-cost) needs prices"),
        ({"backend": "carrier-pigeon"}, "unknown backend; choose one of local, openai"),
        ({"prompts": "no/such/dir"}, "--prompts no/such/dir: not a directory"),
    ],
)
def test_bad_settings_are_user_errors_before_any_work(docs, tmp_path, changes, message):
    from synthlm.config import validate
    from synthlm.entigraph import run_entigraph
    from synthlm.entigraph.settings import EntiGraphConfig
    from synthlm.errors import UserError

    tree = {"docs": str(docs), "out": str(tmp_path / "out"), "model": "m", **changes}
    with pytest.raises(UserError, match=re.escape(message)):
        run_entigraph(validate(EntiGraphConfig, tree))
    assert not (tmp_path / "out").exists()


def test_missing_docs_file_and_changed_model_are_user_errors(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        missing = run(entigraph_command(tmp_path / "nope.jsonl", out, fake))
        assert missing.returncode == 2 and "nope.jsonl: documents file not found" in missing.stderr
        first = run(entigraph_command(docs, out, fake, "--max-requests", "1"))
        assert first.returncode == 0, first.stderr
        other = entigraph_command(docs, out, fake, "--max-requests", "1")
        other[other.index("fake-model")] = "another-model"
        mixed = run(other)
        assert mixed.returncode == 2 and "pass --allow-mixed" in mixed.stderr
        assert len(fake.hits) == 1


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        ("\r", "ends with a carriage return (\\r) (a key file with Windows line endings?)"),
        (" ", "ends with a space"),
        ("é", "contains the character U+00E9, which is not ASCII"),
    ],
)
def test_a_key_no_http_header_can_carry_exits_2_at_once_and_never_shows(
    docs, tmp_path, suffix, problem
):
    """Sent anyway, httpx refused the header with the key in its error (as bytes, which the
    scrubber missed), every request failed alike as a 'connection error', and the run retried
    them for half a minute before an exit 1 with the key in stdout and failures.jsonl."""
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        started = time.monotonic()
        result = run(entigraph_command(docs, out, fake), key=FAKE_KEY + suffix)
        took = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "error: --api-key-env SYNTHLM_TEST_KEY: the key in environment variable " in (
        result.stderr
    )
    assert problem in result.stderr and "nothing was sent" in result.stderr
    assert not fake.hits and not out.exists() and took < 30
    assert "LEAKCHECK" not in result.stdout + result.stderr


def run_with_empty_replies(docs, out, fake, *extra) -> subprocess.CompletedProcess:
    prices = ("--price-in", "2", "--price-out", "8")
    return run(entigraph_command(docs, out, fake, "--concurrency", "1", *prices, *extra))


def test_empty_replies_are_re_asked_as_unusable_and_their_billed_usage_counts(docs, tmp_path):
    """An empty reply (no choices, empty or blank content) is an unusable reply: re-asked up to
    --json-attempts times (not --max-attempts, set to 1 here, so a server error would fail at
    once), counted under "unusable replies", and the tokens the server billed for it are in
    the totals and the cost, also when the request fails for good."""
    out = tmp_path / "out"

    def second_doc_always_blank(index: int, messages: list[dict]) -> str | None:
        if is_entity_request(messages) and "Cold Storage" in messages[1]["content"]:
            return "blank"
        return None

    # concurrency 1: requests 0 and 1 are the first document's entity request and its re-ask
    with FakeOpenAI(faults={0: "nochoices", 1: "empty"}, fault_for=second_doc_always_blank) as fake:
        result = run_with_empty_replies(
            docs, out, fake, "--max-attempts", "1", "--json-attempts", "3"
        )
        billed = fake.billed_usage()
        outcomes = [h.outcome for h in fake.hits]
    assert result.returncode == 1, result.stderr  # the second document failed for good
    assert outcomes[:3] == ["nochoices", "empty", "ok"] and outcomes.count("blank") == 3
    # 2 re-asks for the first document, 2 for the second (its 3rd attempt gave up)
    assert "4 retries (0 after server errors, 4 for unusable replies)" in result.stdout
    (failure,) = read_jsonl(out / "failures.jsonl")
    assert failure["step"] == "entities" and failure["doc_id"] == "vault"
    assert "invalid reply: empty reply" in failure["error"]
    assert "after 3 attempts" in failure["error"]
    blank_prompt = fake.billed[outcomes.index("blank")][0]
    assert failure["usage"] == {
        "requests": 3,
        "prompt_tokens": 3 * blank_prompt,
        "completion_tokens": 0,
    }
    records = read_jsonl(out / "generations.jsonl")
    first = next(r for r in records if r["step"] == "entities")
    assert first["usage"]["requests"] == 3 and first["usage"]["completion_tokens"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["last_run"]["usage"] == billed == manifest["total"]["usage"]
    assert (manifest["last_run"]["transient_retries"], manifest["last_run"]["reasks"]) == (0, 4)
    assert manifest["total"]["cost"] == pytest.approx(
        (billed["prompt_tokens"] * 2 + billed["completion_tokens"] * 8) / 1e6
    )


def test_empty_replies_spend_the_max_cost_budget(docs, tmp_path):
    """Counted as free, empty replies never used up --max-cost: a server answering nothing
    would be asked forever (up to --json-attempts per request) whatever the budget."""
    out = tmp_path / "out"
    with FakeOpenAI(fault_for=lambda index, messages: "empty") as fake:
        result = run(
            entigraph_command(
                docs,
                out,
                fake,
                "--concurrency",
                "1",
                "--json-attempts",
                "50",
                "--price-in",
                "1000",
                "--price-out",
                "1000",
                "--max-tokens",
                "10",
                "--max-cost",
                "1",
            )
        )
        billed = fake.billed_usage()
    assert result.returncode == 0, result.stderr  # stopped by the budget, nothing failed
    manifest = json.loads((out / "manifest.json").read_text())
    assert "--max-cost 1 reached" in manifest["last_run"]["stop_reason"]
    assert manifest["last_run"]["usage"] == billed and billed["requests"] < 50
    assert 0 < manifest["last_run"]["cost"] <= 1.0
