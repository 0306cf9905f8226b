"""Every known failure is one clear ``error:`` line naming the file, exit 2, no traceback, nothing
left behind; ``--debug`` keeps the traceback.

Table-driven: each case builds its tiny inputs in a fresh directory, runs the real command in a
subprocess, and checks the exit status, that stderr has exactly one ``error:`` line containing
the expected text (which names the file), no ``Traceback``, and that the run left no temporary
or partial file anywhere under the directory.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli_runner import run_cli
from synthlm.data.store import write_store

UNWRITABLE = Path("/sys/synthlm-test")  # sysfs: never writable, even for root
BAD_UTF8 = b"model:\n  preset: \xff\xfe tiny\n"
SPEC = {
    "name": "t",
    "seed": 0,
    "domains": [{"type": "copy", "vocab": {"num_vocab": 20}, "length": {"min": 4, "max": 8}}],
}
TRAIN_YAML = """\
run_dir: {run}
model: {{arch: llama, preset: tiny}}
data:
  tokenizer: byte
  seq_len: 16
  sources:
    - {{name: s, path: {store}, weight: 1}}
train: {{max_steps: 2, batch_size: 2}}
"""


@dataclass
class Case:
    """One bad input: ``setup(d)`` makes files in ``d`` and returns the command's arguments."""

    name: str
    setup: Callable[[Path], list[str]]
    expect: str  # text the one error line must contain (with {d} for the case's directory)
    code: int = 2
    keep: set[str] = field(default_factory=set)  # files setup made that may stay


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _jsonl(d: Path, n: int = 20) -> Path:
    return _write(
        d / "in.jsonl", "".join(json.dumps({"text": f"doc {i} hello"}) + "\n" for i in range(n))
    )


def _spec(d: Path) -> Path:
    return _write(d / "spec.json", json.dumps(SPEC))


def _store(d: Path, name: str = "s", docs=((1, 2, 3) * 20, (4, 5) * 30), vocab: int = 260) -> Path:
    write_store(d / name, [list(x) for x in docs], vocab)
    return d / name


def _truncated_gz(d: Path) -> list[str]:
    raw = gzip.compress(
        "".join(json.dumps({"text": f"{i} " * 50}) + "\n" for i in range(2000)).encode()
    )
    _write(d / "in.jsonl.gz", raw[: len(raw) // 2])
    return ["tokenize", str(d / "in.jsonl.gz"), "-t", "byte", "-o", str(d / "out" / "x"), "-q"]


def _tokenize(d: Path, *flags: str, source: Path | None = None) -> list[str]:
    """``synthlm tokenize`` of ``source`` (default: a small .jsonl) with the byte tokenizer."""
    return ["tokenize", str(source or _jsonl(d)), "-t", "byte", "-o", f"{d}/o", *flags]


def _train_bpe(d: Path, kind: str = "bpe") -> list[str]:
    return [
        "tokenizer", "train", "--input", str(_jsonl(d)), "--kind", kind, "--vocab-size", "300",
        "--out", str(d / "tok"),
    ]  # fmt: skip


def _saved_train_split(d: Path) -> list[str]:
    import datasets

    data = datasets.load_dataset("json", data_files=str(_jsonl(d)), split="train")
    data.save_to_disk(str(d / "saved"))  # a single Dataset that records its split: train
    return ["tokenize", str(d / "saved"), "--split", "validation", "-t", "byte", "-o", f"{d}/o"]


def _truncated_zst(d: Path) -> list[str]:
    """Random digits: a 2,000-line file compresses to far more than one read's worth, so the
    cut falls inside the frame (zstandard's stream reader ended there without a word)."""
    import random

    import zstandard

    rng = random.Random(0)
    lines = [
        json.dumps({"text": " ".join(str(rng.random()) for _ in range(8))}) for _ in range(2000)
    ]
    raw = zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode())
    _write(d / "in.jsonl.zst", raw[: len(raw) // 2])
    return ["tokenize", str(d / "in.jsonl.zst"), "-t", "byte", "-o", str(d / "out" / "x"), "-q"]


def _not_zst(d: Path) -> list[str]:
    _write(d / "in.jsonl.zst", b"not zstd at all")
    return ["tokenize", str(d / "in.jsonl.zst"), "-t", "byte", "-o", str(d / "out" / "x"), "-q"]


def _corrupt_parquet(d: Path) -> list[str]:
    _write(d / "in.parquet", b"PAR1" + b"\x00garbage" * 20)
    return ["tokenize", str(d / "in.parquet"), "-t", "byte", "-o", str(d / "out" / "x"), "-q"]


def _train_with(d: Path, run: Path | None = None) -> list[str]:
    store = _store(d)
    return [
        "train",
        str(_write(d / "train.yaml", TRAIN_YAML.format(run=run or d / "run", store=store))),
    ]


def _bad_prefix_json(d: Path) -> list[str]:
    _store(d)
    _write(d / "s.json", b'{"tokenizer": "\xff"}')
    return ["data", "inspect", str(d / "s")]


def _corrupt_trainer_state(d: Path) -> list[str]:
    args = _train_with(d, run=d / "run")
    step = d / "run" / "checkpoints" / "step-5"
    _write(step / "trainer_state.json", '{"step": 5, "samp')
    _write(d / "run" / "config.yaml", "original: true\n")
    return args


def _corrupt_manifest(d: Path) -> list[str]:
    ds = d / "syn"
    _write(ds / "manifest.json", '{"format": "synthlm-synthetic", "spl')
    return ["synth", "verify", str(ds), "-q"]


def _truncated_safetensors(d: Path) -> list[str]:
    """A model dir whose weights were cut short (as an interrupted copy leaves them)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}}).encode()
    _write(d / "ckpt" / "config.json", "{}")
    _write(d / "ckpt" / "model.safetensors", struct.pack("<Q", len(header)) + header + bytes(100))
    return ["generate", str(d / "ckpt"), "-p", "a", "-n", "2", "--device", "cpu", "-q"]


def _inspect_bad_ids(d: Path) -> list[str]:
    prefix = _store(d, docs=((1, 2, 900),), vocab=1000)
    meta = json.loads(Path(f"{prefix}.json").read_text())
    Path(f"{prefix}.json").write_text(json.dumps({**meta, "vocab_size": 100}))
    return ["data", "inspect", str(prefix)]


def _llama_dir(d: Path) -> Path:
    """A local HF model dir (its config.json is all the plan reads) of a tiny Llama."""
    from transformers import LlamaConfig

    config = LlamaConfig(
        vocab_size=260, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    config.save_pretrained(d / "ckpt")
    return d / "ckpt"


CASES = [
    # -- text that is not UTF-8 ---------------------------------------------------------------
    Case(
        "train: non-UTF-8 YAML",
        lambda d: ["train", str(_write(d / "c.yaml", BAD_UTF8))],
        "{d}/c.yaml: not UTF-8",
    ),
    Case(
        "train: binary YAML",
        lambda d: ["train", str(_write(d / "c.yaml", bytes(range(256))))],
        "{d}/c.yaml: not UTF-8",
    ),
    Case(
        "synth generate: non-UTF-8 spec",
        lambda d: ["synth", "generate", str(_write(d / "s.yaml", BAD_UTF8)), "-o", str(d / "o")],
        "{d}/s.yaml: not UTF-8",
    ),
    Case(
        "synth preview: non-UTF-8 spec",
        lambda d: ["synth", "preview", str(_write(d / "s.yaml", BAD_UTF8))],
        "{d}/s.yaml: not UTF-8",
    ),
    Case(
        "entigraph: non-UTF-8 docs",
        lambda d: [
            "entigraph",
            "--docs",
            str(_write(d / "docs.jsonl", b'{"id": "a", "text": "\xff"}\n')),
            "-o",
            str(d / "eg"),
            "-m",
            "m",
            "--dry-run",
        ],
        "{d}/docs.jsonl",
    ),
    Case(
        "data inspect: non-UTF-8 PREFIX.json of a store",
        _bad_prefix_json,
        "{d}/s.json: provenance file is not valid UTF-8",
    ),
    # -- outputs that can never be written ----------------------------------------------------
    Case(
        "tokenize: --out is a directory",
        lambda d: [
            "tokenize",
            str(_jsonl(d)),
            "-t",
            "byte",
            "-o",
            str((d / "o_text_document").mkdir() or d / "o"),
        ],
        "{d}/o_text_document: is a directory",
    ),
    Case(
        "tokenize: --out under a file",
        lambda d: ["tokenize", str(_jsonl(d)), "-t", "byte", "-o", str(_write(d / "f", "x") / "o")],
        "{d}/f is a file",
    ),
    Case(
        "tokenize: --out read-only",
        lambda d: ["tokenize", str(_jsonl(d)), "-t", "byte", "-o", str(UNWRITABLE / "o")],
        "not writable",
    ),
    Case(
        "tokenizer train: --out is a file",
        lambda d: [
            "tokenizer",
            "train",
            "-i",
            str(_jsonl(d)),
            "--vocab-size",
            "300",
            "-o",
            str(_write(d / "tok", "x")),
        ],
        "--out {d}/tok: exists and is a file",
    ),
    Case(
        "tokenizer train: --out read-only",
        lambda d: [
            "tokenizer",
            "train",
            "-i",
            str(_jsonl(d)),
            "--vocab-size",
            "300",
            "-o",
            str(UNWRITABLE / "tok"),
        ],
        "not writable",
    ),
    Case(
        "data merge: --out is a directory",
        lambda d: ["data", "merge", str(_store(d)), "-o", str((d / "m").mkdir() or d / "m")],
        "{d}/m: is a directory",
    ),
    Case(
        "data merge: --out read-only",
        lambda d: ["data", "merge", str(_store(d)), "-o", str(UNWRITABLE / "m")],
        "not writable",
    ),
    Case(
        "synth generate: --out is a file",
        lambda d: [
            "synth",
            "generate",
            str(_spec(d)),
            "--tokens",
            "2K",
            "-o",
            str(_write(d / "o", "x")),
        ],
        "{d}/o: exists and is a file",
    ),
    Case(
        "synth generate: --out read-only",
        lambda d: [
            "synth",
            "generate",
            str(_spec(d)),
            "--tokens",
            "2K",
            "-o",
            str(UNWRITABLE / "o"),
        ],
        "not writable",
    ),
    Case(
        "train: run_dir is a file",
        lambda d: _train_with(d, run=_write(d / "runfile", "x")),
        "run_dir {d}/runfile: exists and is a file",
    ),
    Case(
        "train: run_dir read-only", lambda d: _train_with(d, run=UNWRITABLE / "run"), "not writable"
    ),
    Case(
        "generate: --output is a directory",
        lambda d: ["generate", str(d / "ckpt"), "-p", "a", "-o", str((d / "o").mkdir() or d / "o")],
        "--output {d}/o: is a directory",
    ),
    Case(
        "eval: --out read-only",
        lambda d: ["eval", str(d / "ckpt"), "-o", str(UNWRITABLE / "e.json")],
        "not writable",
    ),
    Case(
        "entigraph: --out is a file",
        lambda d: [
            "entigraph",
            "--docs",
            str(_jsonl(d)),
            "-o",
            str(_write(d / "eg", "x")),
            "-m",
            "m",
        ],
        "--out {d}/eg: exists and is a file",
    ),
    Case(
        "quickstart: --out read-only",
        lambda d: ["quickstart", "-o", str(UNWRITABLE / "q")],
        "not writable",
    ),
    # -- corrupt or truncated files -----------------------------------------------------------
    Case("tokenize: truncated .jsonl.gz", _truncated_gz, "{d}/in.jsonl.gz: ends early"),
    Case("tokenize: truncated .jsonl.zst", _truncated_zst, "{d}/in.jsonl.zst: ends early"),
    Case("tokenize: not zstd", _not_zst, "{d}/in.jsonl.zst: not a valid zstd"),
    Case(
        "tokenize: not gzip",  # BadGzipFile is an OSError: it once kept a useless partial dir
        lambda d: _tokenize(d, source=_write(d / "in.jsonl.gz", b"not gzip")),
        "Not a gzipped file",
    ),
    # -- options nothing would read, and inputs named twice ----------------------------------
    Case(
        "tokenize: one input twice",
        lambda d: ["tokenize", str(_jsonl(d)), f"{d}/./in.jsonl", "-t", "byte", "-o", f"{d}/o"],
        "is given twice (also matched by {d}/in.jsonl)",
    ),
    Case(
        "tokenize: --split for a file",
        lambda d: _tokenize(d, "--split", "validation"),
        "--split: only for a saved datasets dir or a hub dataset",
    ),
    Case(
        "tokenize: --split another than the saved one",
        _saved_train_split,
        "a single dataset holding the split 'train', not 'validation'",
        keep={"saved"},
    ),
    Case(
        "tokenize: --skip-existing with --overwrite",
        lambda d: _tokenize(d, "--skip-existing", "--overwrite"),
        "--skip-existing keeps existing stores, --overwrite replaces them: choose one",
    ),
    Case(
        "tokenizer info: a synthlm tokenizer dir missing its tokenizer.json",
        lambda d: [
            "tokenizer",
            "info",
            str(_write(d / "tok" / "synthlm_tokenizer.json", '{"kind": "bpe"}').parent),
        ],
        "holds synthlm_tokenizer.json but not the tokenizer it describes",
    ),
    Case(
        "tokenizer info: an empty dir",
        lambda d: ["tokenizer", "info", str(d)],
        "the directory is empty",
    ),
    Case(
        "data inspect: sample flags with --json",
        lambda d: ["data", "inspect", str(_store(d)), "--json", "-n", "3"],
        "--sample: --json prints statistics only, no samples",
    ),
    Case(
        "tokenize: --keys ''",
        lambda d: _tokenize(d, "--keys", ""),
        "--keys '': a key names an output file, so it cannot be empty",
    ),
    Case(
        "tokenize: -o a directory",
        lambda d: ["tokenize", str(_jsonl(d)), "-t", "byte", "-o", f"{d}/stores/"],
        "/stores/: give a store prefix, not a directory",
    ),
    Case(
        "tokenizer train: --sp-model-type with bpe",
        lambda d: [*_train_bpe(d), "--sp-model-type", "unigram"],
        "--sp-model-type (--kind sentencepiece only): not read by --kind bpe",
    ),
    Case(
        "tokenizer train: --min-frequency with sentencepiece",
        lambda d: [*_train_bpe(d, "sentencepiece"), "--min-frequency", "5"],
        "--min-frequency (--kind bpe only): not read by --kind sentencepiece",
    ),
    Case(
        "train: YAML that does not parse is one located line",
        lambda d: ["train", str(_write(d / "c.yaml", "model:\n  tabs:\n\t- x\n"))],
        "{d}/c.yaml:3:1: not valid YAML: found character '\\t' that cannot start any token",
    ),
    Case(
        "tokenize: --txt-mode line without a .txt input",
        lambda d: _tokenize(d, "--txt-mode", "line"),
        "--txt-mode line: only .txt inputs are read by line or by file, and the inputs are .jsonl",
    ),
    Case(
        "tokenizer train: --txt-mode line without a .txt input",
        lambda d: [*_train_bpe(d), "--txt-mode", "line"],
        "--txt-mode line: only .txt inputs are read by line or by file",
    ),
    Case(
        "tokenizer train: byte with --input",
        lambda d: [*_train_bpe(d, "byte")],
        "--kind byte learns nothing from text",
    ),
    Case("tokenize: corrupt parquet", _corrupt_parquet, "{d}/in.parquet: not a valid parquet"),
    Case(
        "train: corrupt trainer_state.json",
        _corrupt_trainer_state,
        "{d}/run/checkpoints/step-5/trainer_state.json: not a valid trainer state",
    ),
    Case(
        "synth verify: corrupt manifest.json",
        _corrupt_manifest,
        "{d}/syn/manifest.json: not valid JSON",
    ),
    Case(
        "generate: truncated model.safetensors",
        _truncated_safetensors,
        "{d}/ckpt/model.safetensors: truncated safetensors",
    ),
    Case(
        "eval: truncated model.safetensors",
        lambda d: ["eval", *_truncated_safetensors(d)[1:2]],
        "{d}/ckpt/model.safetensors: truncated safetensors",
    ),
    # -- accepted silently before -------------------------------------------------------------
    Case(
        "data merge: replaces an existing store",
        lambda d: ["data", "merge", str(_store(d)), "-o", str(_store(d, "m"))],
        "{d}/m: a token store already exists",
    ),
    Case(
        "synth generate: --tokens 1",
        lambda d: ["synth", "generate", str(_spec(d)), "--tokens", "1", "-o", str(d / "o"), "-q"],
        "too small for even one training sequence",
    ),
    Case("data inspect: ids beyond the vocabulary", _inspect_bad_ids, "token id 900"),
    # -- unclear before -----------------------------------------------------------------------
    Case(
        "tokenize: mistyped local tokenizer path",
        lambda d: ["tokenize", str(_jsonl(d)), "-t", str(d / "tokz"), "-o", str(d / "o")],
        "tokenizer {d}/tokz: no such file or directory",
    ),
    Case(
        "tokenize: a local folder typed with its trailing slash",
        lambda d: ["tokenize", str(_jsonl(d)), "-t", "tokz/", "-o", str(d / "o")],
        "tokenizer tokz/: no such file or directory",
    ),
    Case(
        "synth generate: a bad --tokens is blamed on the flag",
        lambda d: ["synth", "generate", str(_spec(d)), "--tokens", "5X", "-o", str(d / "o")],
        "error: --tokens 5X: num_tokens: expected a count such as 5000, '10K', '5M' or '1.5B', "
        "got '5X'",
    ),
    Case(
        "generate: a sampling flag out of range is named as typed",
        lambda d: ["generate", str(d / "ckpt"), "-p", "x", "--top-p", "2"],
        "--top-p 2.0: top_p:",
    ),
    Case(
        "train: an override written without =",
        lambda d: [*_train_with(d), "train.max_steps"],
        "train.max_steps: config file not found (an override is written KEY=VALUE",
    ),
    Case(
        "train: two budgets from two sources say how to keep one",
        lambda d: [*_train_with(d), "train.max_tokens=10K"],
        "keep one by unsetting the others, e.g. train.max_steps=null keeps max_tokens",
    ),
    Case(
        "train: fp16 weights (AdamW's eps is 0 in fp16; the run diverged)",
        lambda d: [*_train_with(d), "model.dtype=fp16"],
        "fp16 weights train with no fp32 copy",
    ),
    Case(
        "train: an unknown compile backend (a torch traceback at step 1)",
        lambda d: [*_train_with(d), "model.compile=true", "model.compile_backend=foo"],
        "unknown torch.compile backend 'foo'",
    ),
    Case(
        "train: model.arch that is not init_from's (the checkpoint trained, the config said "
        "another arch)",
        lambda d: [
            *_train_with(d),
            f"model.init_from={_llama_dir(d)}",
            "model.arch=gpt_neox",
            "model.preset=null",
        ],
        "is a llama model; set model.arch: llama",
    ),
    Case(
        "train: a preset that is not init_from's shape",
        lambda d: [*_train_with(d), f"model.init_from={_llama_dir(d)}"],
        "model.preset=tiny: model.init_from {d}/ckpt has another shape (hidden_size 64 vs 32",
    ),
    Case(
        "train: two eval sets of one name (the run stopped only after writing its dir)",
        lambda d: [
            *_train_with(d),
            f"data.eval=[{{name: a, path: {_store(d)}}}, {{name: a, path: {d}/s}}]",
        ],
        "data.eval: eval set names must be unique; repeated: a",
    ),
    Case(
        "train: an override blamed, not the base file",
        lambda d: [*_train_with(d), "optim.foo.bar=1"],
        "override 'optim.foo.bar=1': optim.foo: unknown key",
    ),
]


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clear_error(tmp_path, case):
    d = tmp_path / "case"
    d.mkdir()
    args = case.setup(d)
    before = _files(d)
    result = run_cli(*args, env={"OMP_NUM_THREADS": "1"}, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == case.code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(errors) == 1, result.stderr[-3000:]
    assert case.expect.format(d=d) in errors[0], errors[0]
    left = _files(d) - before
    assert not [p for p in left if ".tmp-" in p or "partial" in p], left
    if case.name.startswith("train: corrupt trainer_state"):
        assert (d / "run" / "config.yaml").read_text() == "original: true\n"  # nothing rewritten


def test_debug_shows_the_traceback(tmp_path):
    bad = _write(tmp_path / "c.yaml", BAD_UTF8)
    result = run_cli("--debug", "train", str(bad))
    assert result.returncode != 0 and "Traceback" in result.stderr
    result = run_cli("train", str(bad), env={"SYNTHLM_DEBUG": "1"})
    assert "Traceback" in result.stderr


def _can_mount_tmpfs(target: Path) -> bool:
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)], capture_output=True
    )
    return done.returncode == 0


@pytest.mark.parametrize("command", ["tokenize", "synth", "merge", "tokenizer"])
def test_disk_full_is_a_clear_error_and_leaves_nothing_at_the_final_name(tmp_path, command):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("mounting a small tmpfs is not permitted here (needs root and CAP_SYS_ADMIN)")
    try:
        if command == "tokenize":
            big = _write(
                tmp_path / "in.jsonl",
                "".join(json.dumps({"text": "x" * 1000}) + "\n" for _ in range(3000)),
            )
            args, final = (
                ["tokenize", str(big), "-t", "byte", "-o", str(disk / "x"), "-q", "--workers", "1"],
                "x_text_document.idx",
            )
        elif command == "synth":
            args, final = (
                [
                    "synth",
                    "generate",
                    str(_spec(tmp_path)),
                    "--tokens",
                    "2M",
                    "-o",
                    str(disk / "d"),
                    "-q",
                ],
                "d",
            )
        elif command == "merge":
            store = _store(tmp_path, docs=(list(range(250)) * 2400,))  # 1.2 MB of tokens
            args, final = ["data", "merge", str(store), "-o", str(disk / "m")], "m.idx"
        else:
            (disk / "filler").write_bytes(
                bytes(1_040_000)
            )  # leave ~8 KB: the tokenizer files do not fit
            args, final = (
                [
                    "tokenizer",
                    "train",
                    "-i",
                    str(_jsonl(tmp_path, 300)),
                    "--vocab-size",
                    "300",
                    "-o",
                    str(disk / "tok"),
                    "-q",
                ],
                "tok/",
            )
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "no space left on device" in errors[0], result.stderr[-2000:]
        assert str(disk) in errors[0] and "Traceback" not in result.stderr
        if (
            command != "tokenizer"
        ):  # tokenizer dirs are complete only with synthlm_tokenizer.json (written last)
            assert not (disk / final).exists()
            assert not [p for p in disk.rglob("*") if p.is_file() and ".tmp-" in p.name]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["trian"], "error: synthlm: No such command 'trian'; did you mean 'train'?"),
        (["train"], "error: synthlm train: Missing argument 'CONFIG... [KEY=VALUE...]'"),
        (["synth", "preview", "x.yaml", "-n", "0"], "error: synthlm synth preview: Invalid value"),
    ],
)
def test_usage_errors_are_one_error_line_too(args, expect):
    """Usage errors (click's) read like every other bad input: one line, exit 2, no panel."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(expect) and "--help')" in result.stderr


def test_help_lists_every_command_and_each_has_its_own_help():
    """``synthlm --help`` lists one command per public module of synthlm.commands, so a helper
    module there must be private (``_name.py``): one without ``register`` broke the listing."""
    import pkgutil

    from synthlm import commands

    modules = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if m.name[0] != "_")
    listing = run_cli("--help")
    assert listing.returncode == 0, listing.stderr
    for name in modules:
        assert f" {name} " in listing.stdout, name
        own = run_cli(name, "--help")
        assert own.returncode == 0 and "Usage:" in own.stdout, (name, own.stderr)
