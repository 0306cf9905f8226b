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


def test_shards_tokenized_with_copies_of_one_tokenizer_merge(tmp_path):
    """SLURM shards tokenized on nodes that read the same tokenizer files from different
    paths used to be refused as "different tokenizers" (the recorded path differed)."""
    import shutil

    from synthlm.tokenizers import train_tokenizer

    train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)
    shutil.copytree(tmp_path / "tok", tmp_path / "tok_copy")
    for shard, tok in ((0, "tok"), (1, "tok_copy")):
        text = tmp_path / f"in{shard}.txt"
        text.write_text("".join(f"line {i}\n" for i in range(20)))
        done = run_cli(
            "tokenize", str(text), "-t", str(tmp_path / tok), "-o", str(tmp_path / f"p{shard}"),
            "-q",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    merged = run_cli(
        "data", "merge", str(tmp_path / "p0_text_document"), str(tmp_path / "p1_text_document"),
        "--out", str(tmp_path / "all"),
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert "2 documents" in merged.stdout  # one per file (a .txt is one document)


def test_synthetic_stores_with_different_id_layouts_are_not_merged(tmp_path):
    """Id 16 is <ans> in one dataset and a content token in the other: refused, naming both."""
    for name, vocab in (("small", 16), ("large", 40)):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(
            "num_tokens: 4K\nseed: 0\ndomains:\n"
            f"  - {{type: copy, vocab: {{num_vocab: {vocab}}}, length: {{min: 2, max: 8}}}}\n"
        )
        done = run_cli("synth", "generate", str(spec), "--out", str(tmp_path / name), "-q")
        assert done.returncode == 0, done.stderr
    out = tmp_path / "mix"
    refused = run_cli(
        "data", "merge", str(tmp_path / "small" / "train"), str(tmp_path / "large" / "train"),
        "--out", str(out),
    )  # fmt: skip
    assert refused.returncode == 2
    assert "the stores' ids mean different tokens (a synthetic id layout of" in refused.stderr
    assert "18 ids" in refused.stderr and "(promoters copy [41])" in refused.stderr
    assert not list(tmp_path.glob("mix*"))


def test_an_input_with_an_id_outside_its_vocabulary_is_named_and_nothing_is_written(tmp_path):
    write_store(tmp_path / "good", [[1, 2, 3]] * 10, vocab_size=300)
    write_store(tmp_path / "bad", [[1, 2, 3]] * 10, vocab_size=300)
    data = bytearray((tmp_path / "bad.bin").read_bytes())
    data[0:2] = (60000).to_bytes(2, "little")  # uint16 ids: the first becomes 60000
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    refused = run_cli(
        "data", "merge", str(tmp_path / "good"), str(tmp_path / "bad"), "--out", str(tmp_path / "m")
    )
    assert refused.returncode == 2
    assert f"{tmp_path / 'bad.bin'}: token id 60000" in refused.stderr
    assert not list(tmp_path.glob("m.*")) and not list(tmp_path.glob(".m*"))
