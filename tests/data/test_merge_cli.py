"""``synthlm data merge`` through the real command: its summary reads like tokenize's."""

from __future__ import annotations

from cli_runner import run_cli
from synthlm.data.store import write_store


def test_merge_prints_counts_with_thousands_separators(tmp_path):
    docs = [[1, 2, 3, 4, 5]] * 300  # 1,500 tokens per store
    write_store(tmp_path / "a", docs, vocab_size=300)
    write_store(tmp_path / "b", docs + [[7]] * 1000, vocab_size=300)
    out = tmp_path / "ab"
    done = run_cli("data", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: 1,600 documents, 4,000 tokens (uint16)" in done.stdout
