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


def make_run(
    path: Path,
    *,
    objective="clm",
    train=None,
    valid=None,
    max_tokens=1000,
    evals=None,
    data_extra=None,
    train_section=None,
):
    """A run with eval/web/{loss,bpb} logged at equal steps (unless ``evals`` says otherwise):
    ``evals`` are (step, tokens of web, loss, bpb); ``data_extra`` are more data.* keys
    (seq_len, packing), ``train_section`` the train: section."""
    path.mkdir(parents=True)
    data = {"sources": [{"name": "web", "path": str(train or "stores/web"), "weight": 1.0}]}
    if valid is not None:
        data["eval"] = [{"name": "web", "path": str(valid), "max_tokens": max_tokens}]
    config = {"data": {**data, **(data_extra or {})}, "objective": {"name": objective}}
    if train_section is not None:
        config["train"] = train_section
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


# ---------------------------------------------------------------------------------------------
# how an eval set was scored


def test_an_eval_set_scored_at_another_seq_len_is_not_ranked(tmp_path):
    """One eval store, but windows of 64 and 128 tokens: the longer context lowers the loss,
    so neither the loss nor bits per byte compare; --equal-tokens refuses."""
    valid = store(tmp_path, "web_valid", "a")
    runs = [
        make_run(tmp_path / "short", valid=valid, data_extra={"seq_len": 64}),
        make_run(tmp_path / "long", valid=valid, data_extra={"seq_len": 128}),
    ]
    out = tmp_path / "out"
    build_report(runs, out)
    table = final_table(out / "index.html")
    why = "not comparable: eval set web scored with different seq_len"
    assert table[f"eval/web/loss ({why})"] == (["4", "4"], [])
    assert table[f"eval/web/bpb ({why})"][1] == []
    listed = not_comparable(out)
    assert set(listed) == {"eval_scoring.web"}, "same store and limits: not another eval set"
    assert listed["eval_scoring.web"]["values"]["short"].startswith("seq_len 64, windows packed")
    assert listed["eval_scoring.web"]["values"]["long"].startswith("seq_len 128,")
    page = (out / "index.html").read_text()
    assert "eval_scoring.web differs (short: seq_len 64" in page
    args = ["--equal-tokens", "web", "--at", "1500", "-q"]
    refused = run_cli("report", *map(str, runs), "--out", str(tmp_path / "r"), *args)
    assert refused.returncode == 2 and "how the eval set web was scored" in refused.stderr
    assert "seq_len 64" in refused.stderr and not (tmp_path / "r").exists()


def test_the_eval_batch_counts_only_where_the_loss_is_a_mean_of_batch_means(tmp_path):
    valid = store(tmp_path, "web_valid", "a")
    seq = {"seq_len": 64}

    def run(name, **train):
        return make_run(tmp_path / name, valid=valid, data_extra=seq, train_section=train)

    per_token = [run("a", batch_size=8), run("b", batch_size=16)]
    build_report(per_token, tmp_path / "out")
    assert not_comparable(tmp_path / "out") == {}, "a per-token mean does not see the batch"
    per_batch = [
        run("c", batch_size=8, loss_average="micro_batch"),
        run("d", batch_size=32, eval_batch_size=16, loss_average="micro_batch"),
    ]
    build_report(per_batch, tmp_path / "out2")
    assert not_comparable(tmp_path / "out2")["eval_scoring.web"]["values"] == {
        "c": "seq_len 64, windows packed, document masking off, loss averaging per batch of 8",
        "d": "seq_len 64, windows packed, document masking off, loss averaging per batch of 16",
    }
    table = final_table(tmp_path / "out2" / "index.html")
    assert "eval/web/loss (not comparable: eval set web scored with different loss averaging)" in (
        table
    )


def test_synthetic_exact_match_still_ranks_across_seq_len(tmp_path):
    """Exact match is decoded from each prompt, whatever the windows; the loss is not."""
    runs = []
    for name, seq_len, acc in (("a", 64, 0.5), ("b", 128, 0.75)):
        path = tmp_path / name
        path.mkdir()
        data = {
            "sources": [{"name": "dyck", "path": "synth/dyck", "kind": "synthetic"}],
            "eval": [{"name": "dyck", "path": "synth/dyck", "kind": "synthetic"}],
            "seq_len": seq_len,
        }
        (path / "config.yaml").write_text(yaml.safe_dump({"data": data}))
        lines = [{"step": s, "eval/dyck/loss": 1.0 / s, "eval/dyck/acc": acc} for s in (1, 2)]
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        runs.append(path)
    build_report(runs, tmp_path / "out")
    table = final_table(tmp_path / "out" / "index.html")
    assert table["eval/dyck/acc"] == (["0.5", "0.75"], ["0.75"])
    assert "eval/dyck/loss (not comparable: eval set dyck scored with different seq_len)" in table


def test_a_synthetic_sets_loss_ignores_per_batch_averaging(tmp_path):
    """train.loss_average: micro_batch changes how natural sets are scored, never synthetic ones
    (a token mean always), so it alone does not make a synthetic metric incomparable."""
    runs = []
    for name, train in (("a", {}), ("b", {"loss_average": "micro_batch", "eval_batch_size": 4})):
        path = tmp_path / name
        path.mkdir()
        data = {
            "sources": [{"name": "dyck", "path": "synth/dyck", "kind": "synthetic"}],
            "eval": [{"name": "dyck", "path": "synth/dyck", "kind": "synthetic"}],
            "seq_len": 64,
        }
        (path / "config.yaml").write_text(yaml.safe_dump({"data": data, "train": train}))
        lines = [{"step": s, "eval/dyck/loss": 1.0 / s, "eval/dyck/acc": 0.5} for s in (1, 2)]
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        runs.append(path)
    build_report(runs, tmp_path / "out")
    assert not_comparable(tmp_path / "out") == {}


def test_rows_sharing_their_boundary_token_are_scored_otherwise(tmp_path):
    """data.shared_boundary scores seq_len targets a row instead of seq_len - 1: another loss."""
    valid = store(tmp_path, "web_valid", "a")
    runs = [
        make_run(tmp_path / "own", valid=valid, data_extra={"seq_len": 64}),
        make_run(
            tmp_path / "shared", valid=valid, data_extra={"seq_len": 64, "shared_boundary": True}
        ),
    ]
    build_report(runs, tmp_path / "out")
    values = not_comparable(tmp_path / "out")["eval_scoring.web"]["values"]
    assert "boundary token" not in values["own"]
    assert "boundary token shared with the next row" in values["shared"]
    table = final_table(tmp_path / "out" / "index.html")
    assert "eval/web/loss (not comparable: eval set web scored with different boundary token)" in (
        table
    )
