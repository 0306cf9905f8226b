"""The report of two tiny runs: files exist, PNGs are real, the page lists both runs and what differs.

The page is checked structurally (parsed, every image decoded, no outside resources) always,
and additionally through headless Chromium when the machine has one: a browser's DOM must
carry the same structure.
"""

from __future__ import annotations

import base64
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import chromium, synthlm, write_run

from synthlm.errors import UserError
from synthlm.report import build_report, watch_report
from synthlm.report.html import direction, final_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class PageStructure(HTMLParser):
    """Tables (by class) as rows of cell texts, images, links, section ids, outside references."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self.sections: list[str] = []
        self.external: list[str] = []
        self.bold: list[str] = []
        self._table = ""
        self._cell: list[str] | None = None
        self._cell_class = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if value.startswith(("http:", "https:", "//", "/")) or (
                tag in ("script", "link") and value
            ):
                self.external.append(value)
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        elif tag == "table":
            self._table = attrs.get("class", "")
            self.tables[self._table] = []
        elif tag == "tr":
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell, self._cell_class = [], attrs.get("class") or ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            self.tables[self._table][-1].append(text)
            if "best" in self._cell_class.split():
                self.bold.append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> PageStructure:
    structure = PageStructure()
    structure.feed(page)
    return structure


@pytest.fixture
def two_runs(tmp_path):
    """A finished run and one still training (torn last line), differing in one source weight."""
    finished = write_run(
        tmp_path / "runs" / "base", weight=0.1, finished=True, qa={"acc": 0.25, "n": 40}
    )
    live = write_run(
        tmp_path / "runs" / "dyck20", weight=0.2, steps=30, torn=True, qa={"acc": 0.5, "n": 40}
    )
    return [finished, live]


def check_structure(page: PageStructure, out: Path) -> None:
    labels = ["data.sources.1.weight=0.1", "data.sources.1.weight=0.2"]
    assert page.sections == [
        "summary",
        "runs",
        "comparability",  # the live run is at step 30, the finished one stopped at 20
        "differing-config-keys",
        "curves",
        "final-metrics",
        "resolved-configs",
    ]
    assert [row[0] for row in page.tables["runs"][1:]] == labels
    summary = page.tables["summary"]
    assert summary[0] == ["run", "model", "parameters", "data mixture", "tokens", "objective"]
    assert summary[1][:2] == [labels[0], "gpt2 tiny"]
    assert summary[1][3] == "shakespeare (natural) 91%, dyck (synthetic) 9%; seq_len 64"
    assert summary[2][3] == "shakespeare (natural) 83%, dyck (synthetic) 17%; seq_len 64"
    assert [summary[1][4], summary[2][4]] == ["5.12K", "7.68K"]
    assert page.tables["runs"][1][2] == "finished" and page.tables["runs"][2][2].startswith(
        "in progress"
    )
    assert page.tables["runs"][2][3] == "30 / 40 (75%)"
    assert page.tables["differences"] == [["key", *labels], ["data.sources.1.weight", "0.1", "0.2"]]
    assert page.tables["configs"][0] == ["key", *labels]
    final = {row[0]: row[1:] for row in page.tables["final"][1:]}
    assert final["qa/acc"] == ["0.25", "0.5"] and "mystery_metric" in final
    assert "0.5" in page.bold  # the higher QA accuracy is marked best
    # logged at different steps: the live run's loss is lower only for having trained longer
    assert "loss (not comparable: last values at different steps)" in final
    assert not page.external, page.external
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert sorted(page.links) == pngs and len(pngs) >= 9
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert len(page.images) == len(pngs)


def test_report_of_two_runs(two_runs, tmp_path):
    out = tmp_path / "report"
    report = build_report(two_runs, out)
    assert report.differing == ["data.sources.1.weight"]
    assert report.page == out / "index.html"
    for figure in report.figures:
        assert figure.stat().st_size > 5000 and figure.read_bytes().startswith(PNG_MAGIC)
    page = report.page.read_text(encoding="utf-8")
    check_structure(parse(page), out)
    browser = chromium()
    if browser:  # the same structure, as a real browser parses it
        dom = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--dump-dom",
                report.page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        check_structure(parse(dom), out)
        shot = tmp_path / "shot.png"
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--screenshot={shot}",
                "--window-size=1200,3000",
                report.page.as_uri(),
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
        assert shot.read_bytes().startswith(PNG_MAGIC)


def test_rebuild_drops_figures_that_no_longer_apply_but_nothing_else(two_runs, tmp_path):
    out = tmp_path / "report"
    build_report(two_runs, out)
    assert (out / "results_qa.png").is_file()
    (out / "notes.png").write_bytes(b"mine")
    for run in two_runs:
        (run / "eval" / "qa.json").unlink()
    build_report(two_runs, out)
    assert not (out / "results_qa.png").exists()
    assert (out / "notes.png").read_bytes() == b"mine"


def test_watch_rebuilds_with_new_records_and_auto_reload(two_runs, tmp_path):
    out = tmp_path / "report"
    seen = []
    watch_report(
        two_runs[:1], out, 0.01, on_build=lambda r: seen.append(r.runs[0].last("loss")), rounds=1
    )
    with (two_runs[0] / "metrics.jsonl").open("a") as f:
        f.write('{"step": 99, "tokens": 9999, "loss": 0.125}\n')
    watch_report(
        two_runs[:1], out, 0.01, on_build=lambda r: seen.append(r.runs[0].last("loss")), rounds=1
    )
    assert seen[-1] == 0.125 and seen[0] != 0.125


REFRESH_TAG = '<meta http-equiv="refresh" content="1">'


def test_watched_page_reloads_while_watched_and_stops_when_watching_ends(two_runs, tmp_path):
    out = tmp_path / "report"
    pages = []
    watch_report(
        two_runs[:1],
        out,
        0.01,
        on_build=lambda r: pages.append(r.page.read_text()),
        rounds=2,
    )
    assert all(REFRESH_TAG in page for page in pages), "reloads while --watch rebuilds it"
    final = (out / "index.html").read_text()
    assert REFRESH_TAG not in final, "nothing rebuilds it any more"
    assert final == pages[-1].replace(REFRESH_TAG, "")


def test_watch_interrupted_leaves_a_page_that_does_not_reload(two_runs, tmp_path):
    """Ctrl-C (and SIGTERM, which the CLI turns into the same) ends a watch mid-sleep."""
    out = tmp_path / "report"

    def interrupt(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch_report(two_runs[:1], out, 0.01, on_build=interrupt)
    page = (out / "index.html").read_text()
    assert REFRESH_TAG not in page and "</html>" in page


def test_out_must_not_be_a_run_dir(two_runs):
    with pytest.raises(UserError, match="one of the run directories"):
        build_report(two_runs, two_runs[0])


def test_metric_directions():
    assert (
        direction("eval/wiki/loss") == -1
        and direction("loss/dyck") == -1
        and direction("eval/wiki/ppl") == -1
    )
    assert direction("eval/dyck/acc/copy") == 1 and direction("hellaswag/acc,none") == 1
    assert direction("hellaswag/acc_stderr,none") == 0 and direction("tokens_per_s") == 0
    assert direction("eval/valid/rouge_l_stemmed_max") == 1
    assert direction("eval/sni/exact_match_max/category/textual_entailment") == 1
    assert direction("eval/sni/rouge_l_stemmed/task/task039_qasc_find_overlapping_words") == 1
    assert direction("eval/sni/loss") == -1 and direction("eval/stsb/spearman") == 1
    assert direction("eval/c4/sentence_accuracy") == 1
    assert direction("eval/c4/reconstruction_loss") == -1


def test_final_metrics_include_every_numeric_result(two_runs):
    from synthlm.report import load_runs

    table = final_metrics(load_runs(two_runs))
    assert table["qa/n"] == [40.0, 40.0]
    assert table["eval/dyck/acc"][0] is not None
    assert next(iter(table)) == "loss"


def test_cli_report_and_bad_input(two_runs, tmp_path):
    out = tmp_path / "cli_report"
    start = time.perf_counter()
    done = synthlm("report", str(tmp_path / "runs"), "--out", str(out))  # a folder of runs
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert "2 runs; differing keys: data.sources.1.weight" in done.stdout
    assert (out / "index.html").is_file() and (out / "loss.png").is_file()
    assert elapsed < 30
    bad = synthlm("report", str(tmp_path / "nope"), "--out", str(out))
    assert bad.returncode == 2 and "error:" in bad.stderr and "nope" in bad.stderr


LAYOUT_PROBE = """<script>
document.body.dataset.layout = JSON.stringify([...document.querySelectorAll("figure")].map(
  f => { const r = f.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top), Math.round(r.width)]; }));
document.body.dataset.page = document.documentElement.scrollWidth;
</script></body>"""


def browser_layout(browser: str, page: Path, width: int) -> tuple[list[list[int]], int]:
    """Figure boxes as a real browser lays the page out at ``width`` px (a probe script is added
    to a copy of the page; the report itself has no JavaScript)."""
    import json
    import re

    probe = page.with_name(f"probe-{width}.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE), encoding="utf-8"
    )
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--window-size={width},1200",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    layout = json.loads(re.search(r'data-layout="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    return layout, int(re.search(r'data-page="(\d+)"', dom).group(1))


def test_report_is_a_responsive_grid_in_a_real_browser(two_runs, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs it)")
    report = build_report(two_runs, tmp_path / "report")
    wide, page_width = browser_layout(browser, report.page, 1600)
    assert page_width <= 1600, "the page scrolls sideways"
    rows: dict[int, list[int]] = {}
    for left, top, _ in wide:
        rows.setdefault(top, []).append(left)
    assert max(len(lefts) for lefts in rows.values()) >= 2, f"one figure per row at 1600 px: {wide}"
    assert max(left + width for left, _, width in wide) > 1200, "figures use the page's width"
    narrow, page_width = browser_layout(browser, report.page, 600)
    assert page_width <= 600 and len({left for left, _, _ in narrow}) == 1, narrow
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1600,1600",
            report.page.as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    right = pixels[:, 800:]
    # about 5% of an even page's pixels are ink (axes, curves, text); an empty half has none
    assert (right < 0.9).any(axis=2).mean() > 0.02, "the right half of the screenshot is empty"


@pytest.mark.parametrize("inside", ["final", "final/sub", "checkpoints", "checkpoints/step-10"])
def test_out_must_not_be_inside_a_run_dirs_saved_models(two_runs, inside):
    """index.html and PNGs in RUN/final/ would travel with the model (copied, uploaded)."""
    (two_runs[0] / "final").mkdir(exist_ok=True)
    out = two_runs[0] / inside
    with pytest.raises(UserError, match=r"inside .*(final|checkpoints), where the run saves"):
        build_report(two_runs, out)
    assert not (out / "index.html").exists()


def test_out_may_be_another_folder_of_a_run_dir(two_runs):
    assert build_report(two_runs, two_runs[0] / "report").page.is_file()
