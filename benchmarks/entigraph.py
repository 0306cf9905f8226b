"""EntiGraph generation throughput: synthlm's async engine vs the reference design, same server.

A local OpenAI-compatible server (the test suite's fake, in a thread of this process) answers
every request after a fixed latency, standing in for an LLM endpoint. Both sides generate the
same EntiGraph requests for the same documents (tinyshakespeare chunks; the server names E
entities per document, so each document needs 1 + C(E,2) + min(C(E,3), --max-triples)
requests):

  (a) ``synthlm.entigraph.run_entigraph`` with ``--concurrency`` C: async requests, one durable
      (fsynced) record per generation, resume bookkeeping, progress accounting.
  (b) the same engine with ``--concurrency 1``: our overhead per request at equal parallelism.
  (c) the reference design (Synthetic Continued Pretraining's ``entigraph.py``), rewritten here:
      within a document, one blocking request after another with the sync client, results
      appended to a file. (The reference runs one such process per document; per document it
      is sequential, which is what (a) vs (c) compares.)

    python benchmarks/entigraph.py [--docs 3] [--entities 8] [--latency 0.05] [--concurrency 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
sys.path.insert(0, str(ROOT / "tests" / "entigraph"))  # the fake server lives with the tests

from entigraph_fakes import FakeOpenAI  # noqa: E402

KEY_ENV = "SYNTHLM_BENCH_KEY"


def write_docs(directory: Path, count: int) -> Path:
    text = SHAKESPEARE.read_text(encoding="utf-8")
    path = directory / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(count):
            chunk = text[index * 3000 : (index + 1) * 3000]
            handle.write(
                json.dumps(
                    {
                        "id": f"doc{index}",
                        "title": f"Part {index}",
                        "author": "Shakespeare",
                        "text": chunk,
                    }
                )
                + "\n"
            )
    return path


def run_ours(
    docs: Path, out: Path, url: str, concurrency: int, max_triples: int
) -> tuple[float, int]:
    from synthlm.entigraph import EntiGraphConfig, run_entigraph

    cfg = EntiGraphConfig(
        docs=docs,
        out=out,
        model="bench",
        base_url=url,
        api_key_env=KEY_ENV,
        concurrency=concurrency,
        max_triples=max_triples,
        quiet=True,
    )
    start = time.perf_counter()
    report = run_entigraph(cfg)
    return time.perf_counter() - start, report.completed


def run_reference(docs: Path, out: Path, url: str, max_triples: int) -> tuple[float, int]:
    """One blocking request after another, per document, like the reference script."""
    import openai

    from synthlm.entigraph.documents import read_documents
    from synthlm.entigraph.requests import Key, entity_values, follow_up_keys, parse_entity_reply
    from synthlm.entigraph.templates import PromptSet

    client = openai.OpenAI(api_key=os.environ[KEY_ENV], base_url=url, max_retries=0)
    prompts = PromptSet.load()

    def ask(key: Key, values: dict[str, str]) -> str:
        messages = prompts.messages(key.step, {**values, **entity_values(key)})
        reply = client.chat.completions.create(
            model="bench", messages=messages, max_tokens=1024, temperature=1.0
        )
        return reply.choices[0].message.content

    done = 0
    start = time.perf_counter()
    with open(out, "w", encoding="utf-8") as sink:
        for doc in read_documents(docs):
            values = {"title": doc.title, "author": doc.author, "text": doc.text}
            _, entities = parse_entity_reply(ask(Key(doc.id, "entities"), values))
            sink.write(json.dumps({"doc": doc.id, "entities": entities}) + "\n")
            done += 1
            for key in follow_up_keys(doc.id, entities, 0, {"pair": None, "triple": max_triples}):
                sink.write(json.dumps({"doc": doc.id, "text": ask(key, values)}) + "\n")
                done += 1
    client.close()
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=3)
    parser.add_argument("--entities", type=int, default=8)
    parser.add_argument("--max-triples", type=int, default=20)
    parser.add_argument(
        "--latency", type=float, default=0.05, help="Seconds the server takes per request."
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    import openai  # noqa: F401  (imported before timing: both sides use it, only one would pay)

    times: dict[str, list[float]] = {"ours": [], "ours_c1": [], "reference": []}
    counts: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOpenAI(
            delay=args.latency, entities_per_doc=args.entities, expected_key="bench-key"
        ) as fake,
    ):
        docs = write_docs(Path(tmp), args.docs)
        for repeat in range(
            args.repeats
        ):  # interleaved, so load on a shared machine hits all alike
            runs = {
                "ours": lambda r=repeat: run_ours(
                    docs, Path(tmp) / f"ours{r}", fake.url, args.concurrency, args.max_triples
                ),
                "ours_c1": lambda r=repeat: run_ours(
                    docs, Path(tmp) / f"c1-{r}", fake.url, 1, args.max_triples
                ),
                "reference": lambda r=repeat: run_reference(
                    docs, Path(tmp) / f"ref{r}.jsonl", fake.url, args.max_triples
                ),
            }
            for name, call in runs.items():
                seconds, done = call()
                times[name].append(seconds)
                counts[name] = done
    if len(set(counts.values())) != 1:
        raise SystemExit(f"the runs disagree on the number of generations: {counts}")
    requests = counts["ours"]
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{requests} requests ({args.docs} docs x {args.entities} entities), server "
        f"latency {args.latency * 1000:.0f} ms, {args.repeats} repeats"
    )
    for name, label in (
        ("ours", f"synthlm --concurrency {args.concurrency}"),
        ("ours_c1", "synthlm --concurrency 1"),
        ("reference", "reference (sequential)"),
    ):
        print(f"  {label:<28} median {medians[name]:7.3f} s  {requests / medians[name]:8.1f} req/s")
    print(
        f"  speed-up vs reference: {medians['reference'] / medians['ours']:.1f}x at "
        f"--concurrency {args.concurrency}; "
        f"{medians['reference'] / medians['ours_c1']:.2f}x at --concurrency 1"
    )
    overhead = (medians["ours_c1"] - medians["reference"]) / requests * 1000
    print(f"  our per-request overhead at equal parallelism: {overhead:+.2f} ms")


if __name__ == "__main__":
    main()
