"""Numbers that cannot be compared are not: runs of different objectives, tokenizers or eval
sets, or at different steps. ``--equal-tokens`` refuses where its table would mean nothing; the
page says what differs, and marks no best for a metric whose values do not compare (bits per
byte still compare across tokenizers)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.report import build_report
from synthlm.report.equal_tokens import compare
from synthlm.report.load import load_runs


def store(root: Path, name: str, sha: str, kind: str = "bpe", part: str = "valid") -> Path:
    """A token store's PREFIX.json as ``synthlm tokenize`` records it (no .bin needed here)."""
    prefix = root / "stores" / name
    prefix.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": "synthlm-token-store",
        "tokenizer": {"kind": kind, "path": f"/tok/{sha}", "vocab_size": 300, "sha256": sha * 8},
        "source_files": ["/corpus/web.jsonl"],
        "key": "text",
        "split_from": {"store": str(root / "stores" / "whole"), "part": part, "seed": 0},
        "num_documents": 10,
    }
    prefix.with_name(f"{name}.json").write_text(json.dumps(metadata))
    return prefix


def make_run(path: Path, *, objective="clm", train=None, valid=None, max_tokens=1000, evals=None):
    """A run with eval/web/{loss,bpb} logged at equal steps (unless ``evals`` says otherwise):
    ``evals`` are (step, tokens of web, loss, bpb)."""
    path.mkdir(parents=True)
    data = {"sources": [{"name": "web", "path": str(train or "stores/web"), "weight": 1.0}]}
    if valid is not None:
        data["eval"] = [{"name": "web", "path": str(valid), "max_tokens": max_tokens}]
    config = {"data": data, "objective": {"name": objective}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    evals = evals or [(10, 1000, 5.0, 1.5), (20, 2000, 4.0, 1.2)]
    lines = [
        {"step": s, "tokens": w, "tokens/web": w, "eval/web/loss": v, "eval/web/bpb": b}
        for s, w, v, b in evals
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def equal_tokens(paths, metric="eval/web/loss", source="web"):
    return compare(load_runs(paths), [p.name for p in paths], metric, source, [1500])


class FinalTable(HTMLParser):
    """The final-metrics table: metric -> (cell texts, bold cells)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, tuple[list[str], list[str]]] = {}
        self._in, self._row, self._bold, self._cell, self._best = False, [], [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._in = attrs.get("class") == "final"
        elif self._in and tag == "tr":
            self._row, self._bold = [], []
        elif self._in and tag == "td":
            self._cell, self._best = [], "best" in (attrs.get("class") or "").split()

    def handle_endtag(self, tag):
        if self._in and tag == "td":
            text = "".join(self._cell).strip()
            self._row.append(text)
            if self._best:
                self._bold.append(text)
            self._cell = None
        elif self._in and tag == "tr" and self._row:
            self.rows[self._row[0]] = (self._row[1:], self._bold)
        elif tag == "table":
            self._in = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def final_table(page: Path) -> dict[str, tuple[list[str], list[str]]]:
    parser = FinalTable()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.rows


def not_comparable(out: Path) -> dict[str, dict]:
    listed = json.loads((out / "report.json").read_text())["not_comparable"]
    return {entry["key"]: entry for entry in listed}


# ---------------------------------------------------------------------------------------------
# --equal-tokens refuses


def test_equal_tokens_across_objectives_is_refused_naming_the_runs(tmp_path):
    runs = [make_run(tmp_path / "dec"), make_run(tmp_path / "t5", objective="span_corruption")]
    out = tmp_path / "r"
    args = ["--equal-tokens", "web", "--at", "1500", "-q"]
    done = run_cli("report", *map(str, runs), "--out", str(out), *args)
    assert done.returncode == 2, done.stderr
    assert "objective.name" in done.stderr
    assert f"{runs[0]} (clm)" in done.stderr and f"{runs[1]} (span_corruption)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_equal_tokens_across_tokenizers_is_refused(tmp_path):
    runs = [
        make_run(tmp_path / "bpe", train=store(tmp_path, "bpe_train", "a", part="train")),
        make_run(tmp_path / "byte", train=store(tmp_path, "byte_train", "b", "byte", "train")),
    ]
    with pytest.raises(UserError, match=r"differ in data\.tokenizer: .*bpe \(bpe, 300 ids"):
        equal_tokens(runs)
    with pytest.raises(UserError, match="data.tokenizer"):
        equal_tokens(runs, metric="eval/web/bpb")  # the budgets are tokens all the same


def test_one_tokenizer_in_stores_at_different_paths_is_compared(tmp_path):
    runs = [
        make_run(tmp_path / "a", train=store(tmp_path, "web_train", "a", part="train")),
        make_run(tmp_path / "b", train=store(tmp_path, "web_copy", "a", part="train")),
    ]
    assert equal_tokens(runs).values == [[4.5], [4.5]]


def test_equal_tokens_on_an_eval_set_of_other_settings_is_refused(tmp_path):
    valid = store(tmp_path, "web_valid", "a")
    runs = [
        make_run(tmp_path / "short", valid=valid, max_tokens=1000),
        make_run(tmp_path / "long", valid=valid, max_tokens=5000),
    ]
    with pytest.raises(UserError, match="differ in the eval set web: .*max_tokens=1000"):
        equal_tokens(runs)


# ---------------------------------------------------------------------------------------------
# the page and report.json say so, and mark no best


def test_objectives_differ_no_best_for_what_the_objective_computes(tmp_path):
    runs = [make_run(tmp_path / "dec"), make_run(tmp_path / "t5", objective="span_corruption")]
    out = tmp_path / "out"
    build_report(runs, out)
    table = final_table(out / "index.html")
    assert table["eval/web/loss (not comparable: objectives differ)"] == (["4", "4"], [])
    assert table["eval/web/bpb (not comparable: objectives differ)"][1] == []
    assert not_comparable(out)["objective"]["values"] == {"dec": "clm", "t5": "span_corruption"}
    page = (out / "index.html").read_text()
    assert (
        'id="comparability"' in page and "objective differs (dec: clm; t5: span_corruption)" in page
    )


def test_tokenizers_differ_bits_per_byte_still_rank(tmp_path):
    """Stores of one text split under two tokenizers: loss per token does not compare, bpb
    does (the eval stores are other files, necessarily, but hold the same text)."""
    bpe = make_run(
        tmp_path / "bpe",
        train=store(tmp_path, "bpe_train", "a", part="train"),
        valid=store(tmp_path, "bpe_valid", "a"),
        evals=[(10, 1000, 5.0, 1.5), (20, 2000, 4.0, 1.2)],
    )
    byte = make_run(
        tmp_path / "byte",
        train=store(tmp_path, "byte_train", "b", "byte", "train"),
        valid=store(tmp_path, "byte_valid", "b", "byte"),
        evals=[(10, 1000, 2.0, 1.9), (20, 2000, 1.5, 1.4)],
    )
    out = tmp_path / "out"
    build_report([bpe, byte], out)
    table = final_table(out / "index.html")
    assert table["eval/web/loss (not comparable: tokenizers differ)"] == (["4", "1.5"], [])
    assert table["eval/web/bpb"] == (["1.2", "1.4"], ["1.2"]), "bpb compares"
    listed = not_comparable(out)
    assert set(listed) == {"tokenizer"}, "same text in both eval stores: not another eval set"
    assert listed["tokenizer"]["values"]["byte"].startswith("byte, 300 ids, sha256 bbbbbbbb")


def test_an_eval_set_of_other_settings_is_not_ranked(tmp_path):
    valid = store(tmp_path, "web_valid", "a")
    runs = [
        make_run(tmp_path / "short", valid=valid, max_tokens=1000),
        make_run(tmp_path / "other", valid=store(tmp_path, "other_valid", "a", part="other")),
    ]
    out = tmp_path / "out"
    build_report(runs, out)
    table = final_table(out / "index.html")
    assert table["eval/web/loss (not comparable: eval set web differs)"][1] == []
    assert "path=" in not_comparable(out)["data.eval.web"]["values"]["other"]


def test_runs_at_different_steps_are_not_ranked_and_alike_runs_are(tmp_path):
    done = make_run(tmp_path / "done", evals=[(10, 1000, 5.0, 1.5), (20, 2000, 4.0, 1.2)])
    live = make_run(tmp_path / "live", evals=[(10, 1000, 4.5, 1.4)])
    out = tmp_path / "out"
    build_report([done, live], out)
    assert final_table(out / "index.html")[
        "eval/web/loss (not comparable: last values at different steps)"
    ] == (["4", "4.5"], [])
    assert not_comparable(out)["step"]["values"] == {"done": "20", "live": "10"}
    alike = make_run(tmp_path / "alike", evals=[(10, 1000, 4.5, 1.4), (20, 2000, 3.5, 1.1)])
    build_report([done, alike], tmp_path / "out2")
    assert final_table(tmp_path / "out2" / "index.html")["eval/web/loss"] == (["4", "3.5"], ["3.5"])
    assert not_comparable(tmp_path / "out2") == {}
