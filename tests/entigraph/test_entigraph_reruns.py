"""Reruns in one output directory: what a killed run left behind, and narrower settings.

A rerun must leave the directory as if no run had been killed (no temporaries of the atomic
writes of corpus.jsonl, failures.jsonl or manifest.json), and a rerun with fewer documents or
smaller --max-pairs / --max-triples must say that the corpus, built from the whole log, holds
the texts of the earlier, wider runs too, which the manifest counts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from entigraph_fakes import (
    DOCS,
    REQUESTS_PER_DOC,
    FakeOpenAI,
    entigraph_command,
    read_jsonl,
    run,
)

from kill_runner import dead_pid

TOTAL = REQUESTS_PER_DOC * len(DOCS)


def test_a_rerun_removes_the_temporaries_a_killed_run_left_and_keeps_live_ones(docs, tmp_path):
    out = tmp_path / "out"
    with FakeOpenAI() as fake:
        command = entigraph_command(docs, out, fake, "--max-requests", "3")
        assert run(command).returncode == 0
        dead, live = dead_pid(), os.getpid()
        stale = [
            out / f"{name}.tmp-{dead}-0123abcd"
            for name in ("corpus.jsonl", "manifest.json", "failures.jsonl")
        ]
        kept = [
            out / f"corpus.jsonl.tmp-{live}-89abcdef",  # a writer that still runs
            out / f"notes.txt.tmp-{dead}-0123abcd",  # not a file this command writes
        ]
        for path in stale + kept:
            path.write_text('{"text": "half a line', encoding="utf-8")
        result = run(command)
        assert result.returncode == 0, result.stderr
    assert not [path.name for path in stale if path.exists()]
    assert all(path.exists() for path in kept)
    assert len(read_jsonl(out / "corpus.jsonl")) == 6  # the corpus itself is intact


def counts(out: Path) -> dict[str, int]:
    return json.loads((out / "manifest.json").read_text())["corpus_from_other_settings"]


def test_a_narrower_rerun_keeps_the_earlier_texts_and_says_so(docs, tmp_path):
    """The corpus is built from the whole log (texts already paid for are never dropped); the
    manifest records the narrower settings, so it also counts the texts beyond them, and the
    run says it on stderr."""
    out = tmp_path / "out"
    first_doc = tmp_path / "first.jsonl"
    first_doc.write_text(json.dumps(DOCS[0]) + "\n", encoding="utf-8")
    with FakeOpenAI() as fake:
        wide = run(entigraph_command(docs, out, fake, "--max-pairs", "6", "--max-triples", "5"))
        assert wide.returncode == 0, wide.stderr
        assert counts(out) == {"texts": 0, "summary": 0, "pair": 0, "triple": 0}
        assert "note:" not in wide.stderr
        sent = len(fake.hits)

        narrow = run(entigraph_command(docs, out, fake, "--max-pairs", "2", "--max-triples", "1"))
        fewer = run(
            entigraph_command(first_doc, out, fake, "--max-pairs", "2", "--max-triples", "1")
        )
        as_json = run(
            entigraph_command(
                first_doc, out, fake, "--max-pairs", "2", "--max-triples", "1", "--json"
            )
        )
        assert len(fake.hits) == sent  # everything asked for was done: nothing sent
        manifest = json.loads((out / "manifest.json").read_text())
        again = run(entigraph_command(docs, out, fake))  # the wide settings again: no note
    assert narrow.returncode == fewer.returncode == as_json.returncode == 0, narrow.stderr
    assert len(read_jsonl(out / "corpus.jsonl")) == TOTAL  # every earlier text is still there

    # per document: 6 - 2 pairs and 4 - 1 triples beyond the limits
    assert f"corpus: {out / 'corpus.jsonl'} ({TOTAL} texts)" in narrow.stdout
    assert "holds 14 texts that these settings do not ask for (8 pairs, 6 triples)" in (
        narrow.stderr
    )
    assert "corpus_from_other_settings" in narrow.stderr
    # with the first document only, the second's 11 texts are beyond the settings as well
    assert "holds 18 texts that these settings do not ask for (1 summary, 10 pairs, 7 triples)" in (
        fewer.stderr
    )
    assert json.loads(as_json.stdout)["corpus_from_other_settings"] == {
        "texts": 18,
        "summary": 1,
        "pair": 10,
        "triple": 7,
    }
    assert manifest["corpus_from_other_settings"] == {
        "texts": 18,
        "summary": 1,
        "pair": 10,
        "triple": 7,
    }
    assert manifest["sampling"]["max_pairs"] == 2 and manifest["documents"]["count"] == 1
    assert manifest["corpus_lines"] == TOTAL and manifest["complete"]
    assert again.returncode == 0 and "note:" not in again.stderr
    assert counts(out)["texts"] == 0
