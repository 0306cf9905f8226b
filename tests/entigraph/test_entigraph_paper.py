"""``synthlm entigraph`` sends the paper's requests (Yang et al. 2024) on the paper's inputs.

The expected request bodies are built by ``paper_reference`` from the original repository's
definitions (prompt strings, f-string layouts, ``gptqa``'s arguments), not from synthlm's code,
and compared with what a real local HTTP server received from a ``synthlm entigraph``
subprocess. The server is strict like a real one: JSON only when JSON mode is asked for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from entigraph_fakes import FakeOpenAI, entigraph_command, read_jsonl, run

import entigraph_paper as paper

ARTICLES = [  # QuALITY format, as train and dev files; "Last, First" authors, as in QuALITY
    {
        "article_id": "101",
        "set_unique_id": "101_a",
        "title": "Gull Rock",
        "author": "Lind, Ann",
        "year": 1961,
        "topic": "sea",
        "article": "Marta kept the Lighthouse while Tomas installed the Beacon near "
        "Vestby Harbour.",
        "questions": [
            {
                "question": "Who kept it?",
                "options": ["Marta", "Tomas", "Ilse", "Bo"],
                "gold_label": 1,
                "difficult": 0,
            }
        ],
    },
    {
        "article_id": "202",
        "set_unique_id": "202_a",
        "title": "Cold Storage",
        "author": "Bo Berg",
        "year": 1974,
        "topic": "data",
        "article": "Ilse guarded the vault after the flood.",
        "questions": [
            {
                "question": "Who guarded it?",
                "options": ["Marta", "Tomas", "Ilse", "Bo"],
                "gold_label": 3,
                "difficult": 1,
            }
        ],
    },
]


@pytest.fixture
def quality_files(tmp_path: Path) -> list[Path]:
    paths = []
    for name, article in zip(("train", "dev"), ARTICLES):
        path = tmp_path / f"QuALITY.v1.0.1.htmlstripped.{name}"
        path.write_text(json.dumps(article) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def entities_of(article: dict, count: int) -> list[str]:
    """The fake server's entity choice: capitalised words of the document content, in order."""
    content = paper.article_content(
        article["title"], article["author"], str(article["year"]), article["article"]
    )
    return list(dict.fromkeys(re.findall(r"\b[A-Z][a-z]{2,}\b", content)))[:count]


def expected_bodies(count: int) -> list[dict]:
    bodies = []
    for article in ARTICLES:
        content = paper.article_content(
            article["title"], article["author"], str(article["year"]), article["article"]
        )
        bodies.append(paper.entity_request("fake-model", content))
        bodies += [
            paper.relation_request("fake-model", content, combo)
            for combo in paper.all_follow_ups(entities_of(article, count))
        ]
    return bodies


def canonical(bodies: list[dict]) -> list[str]:
    return sorted(json.dumps(body, sort_keys=True) for body in bodies)


@pytest.mark.slow
def test_requests_are_the_papers_all_pairs_and_triples_from_train_and_dev(quality_files, tmp_path):
    """Prompts, JSON mode, no max_tokens, every pair and triple (10 entities: 120 > 100 triples),
    and both --docs files: the request bodies equal the original's, one for one."""
    with FakeOpenAI(entities_per_doc=10) as fake:
        docs = [arg for path in quality_files for arg in ("--docs", str(path))]
        command = entigraph_command(quality_files[0], tmp_path / "out", fake, "--concurrency", "16")
        command[command.index("--docs") : command.index("--docs") + 2] = docs
        result = run(command)
        assert result.returncode == 0, result.stderr
        received = fake.bodies
    assert len(received) == (1 + 45 + 120) + (1 + 6 + 4)  # 10 and 4 entities
    assert canonical(received) == canonical(expected_bodies(10))
    corpus = read_jsonl(tmp_path / "out" / "corpus.jsonl")
    assert len(corpus) == len(
        received
    )  # summaries + every relation text, as the original's content[1:]


@pytest.mark.slow
def test_without_json_mode_a_strict_server_answers_prose_and_nothing_is_written(
    quality_files, tmp_path
):
    """Why JSON mode matters: the same server, asked without response_format, yields no entities."""
    with FakeOpenAI() as fake:
        result = run(
            entigraph_command(
                quality_files[0], tmp_path / "out", fake, "--no-json-mode", "--json-attempts", "2"
            )
        )
        assert all("response_format" not in body for body in fake.bodies)
    assert result.returncode == 1
    assert read_jsonl(tmp_path / "out" / "corpus.jsonl") == []


@pytest.mark.slow
def test_replies_cut_off_by_the_length_limit_never_reach_the_corpus(quality_files, tmp_path):
    def cut(index: int, messages: list[dict]) -> str | None:
        return "length" if messages[1]["content"].endswith("- Gull\n    - Rock\n    ") else None

    with FakeOpenAI(fault_for=cut) as fake:
        result = run(
            entigraph_command(quality_files[0], tmp_path / "out", fake, "--json-attempts", "2")
        )
        cut_off = [h for h in fake.hits if h.outcome == "length"]
    assert result.returncode == 1  # failed for good in this run; a rerun asks again
    assert len(cut_off) == 2
    failures = read_jsonl(tmp_path / "out" / "failures.jsonl")
    assert [f["entities"] for f in failures] == [["Gull", "Rock"]]
    assert "finish_reason 'length'" in failures[0]["error"]
    corpus = read_jsonl(tmp_path / "out" / "corpus.jsonl")
    assert ["Gull", "Rock"] not in [line["entities"] for line in corpus]
    assert len(corpus) == 1 + 6 + 4 - 1


def test_a_document_without_the_year_the_prompts_print_is_refused_before_any_request(tmp_path):
    from synthlm.entigraph import EntiGraphConfig, run_entigraph
    from synthlm.errors import UserError

    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        json.dumps({"id": "a", "title": "T", "author": "A", "text": "Some text."}) + "\n"
    )
    cfg = EntiGraphConfig(
        docs=docs, out=tmp_path / "out", model="m", base_url="http://127.0.0.1:9/v1"
    )
    with pytest.raises(UserError, match=r"1 document\(s\) have no year \('a'\).*\$year"):
        run_entigraph(cfg)
    assert not (tmp_path / "out").exists()


def test_cut_off_records_in_an_older_log_are_asked_again_and_kept_out_of_the_corpus(tmp_path):
    from synthlm.entigraph.corpus import corpus_lines
    from synthlm.entigraph.requests import Key
    from synthlm.entigraph.state import RunState

    records = [
        {
            "key": Key("a", "pair", ("X", "Y")).encode(),
            "doc_id": "a",
            "step": "pair",
            "entities": ["X", "Y"],
            "text": "cut off mid-sent",
            "finish_reason": "length",
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "requests": 1},
        },
        {
            "key": Key("a", "pair", ("X", "Z")).encode(),
            "doc_id": "a",
            "step": "pair",
            "entities": ["X", "Z"],
            "text": "whole.",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "requests": 1},
        },
    ]
    (tmp_path / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    state = RunState.load(tmp_path)
    assert not state.done(Key("a", "pair", ("X", "Y"))) and state.done(Key("a", "pair", ("X", "Z")))
    assert state.usage.completion_tokens == 9  # the cut-off reply was paid for
    assert [line["text"] for line in corpus_lines(tmp_path / "generations.jsonl")] == ["whole."]
