"""``synthlm quickstart``: the whole pipeline, end to end, on data synthlm ships or makes.

Stages (each reads the previous stage's files, and each is skipped when its output already
exists, so an interrupted quickstart continues where it stopped; an output that exists but is
not what the stage makes, such as another synthetic dataset or a run of another length, stops
the quickstart with an error instead of being used):

1. corpus      the shipped tinyshakespeare, split into scene-sized documents (jsonl)
2. tokenizer   a byte-level BPE trained on it
3. tokenize    the corpus into a Megatron-compatible token store
4. split       5% of the documents held out (natural loss is measured on text never trained on)
5. synth       a small synthetic meta-language dataset (identity, reverse)
6. train       a tiny Llama on the 50/50 natural/synthetic mixture, evaluated as it trains
7. report      an HTML report of the run: loss curves, held-out loss, synthetic accuracy
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthlm.data.corpus import shipped_corpus, split_documents
from synthlm.data.store import store_exists
from synthlm.fileio import atomic_write_text
from synthlm.synth.manifest import is_synthetic_dataset

if TYPE_CHECKING:
    from synthlm.train import RunConfig

TOKENIZER_VOCAB = 2048
PROMPT = "ROMEO:"
VALID_FRACTION = 0.05


@dataclass
class QuickstartResult:
    out: Path
    paths: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)  # the first evaluation (step, eval/*)
    sample: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def _packaged(name: str) -> Path:
    return Path(str(resources.files("synthlm") / "assets" / "quickstart" / name))


def write_corpus(out: Path) -> Path:
    path = out / "corpus" / "tinyshakespeare.jsonl"
    if not path.is_file():
        docs = split_documents(shipped_corpus().read_text(encoding="utf-8"))
        atomic_write_text(path, "".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


def train_tokenizer_stage(corpus: Path, out: Path, quiet: bool) -> Path:
    from synthlm.tokenizers import train_tokenizer

    directory = out / "tokenizer"
    if not (directory / "tokenizer.json").is_file():
        train_tokenizer([corpus], "bpe", TOKENIZER_VOCAB, directory, quiet=quiet)
    return directory


def tokenize_stage(corpus: Path, tokenizer: Path, out: Path, quiet: bool) -> Path:
    from synthlm.data.tokenization import tokenize

    prefix = out / "data" / "shakespeare"
    store = Path(f"{prefix}_text_document")
    if not store_exists(store):
        tokenize([corpus], tokenizer, prefix, keys=("text",), append_eod=True, quiet=quiet)
    return store


def split_stage(store: Path) -> tuple[Path, Path]:
    """(train, valid) stores: whole documents held out with a fixed seed."""
    from synthlm.data.split import split_store

    train, valid = Path(f"{store}_train"), Path(f"{store}_valid")
    if not (store_exists(train) and store_exists(valid)):
        split_store(store, VALID_FRACTION, seed=0)
    return train, valid


def synth_stage(out: Path, quiet: bool) -> Path:
    from synthlm.synth import build_dataset, load_spec

    directory = out / "data" / "synthetic"
    spec = load_spec(_packaged("synth.yaml"))
    if not is_synthetic_dataset(directory):
        build_dataset(spec, directory, quiet=quiet)
    else:
        _check_same_dataset(directory, spec.model_dump(mode="json"))
    return directory


def _check_same_dataset(directory: Path, spec: dict[str, Any]) -> None:
    """An existing dataset is reused only when it is the quickstart's own (same spec)."""
    from synthlm.errors import UserError
    from synthlm.synth.manifest import read_manifest

    found = read_manifest(directory).get("spec", {})
    if found != spec:
        raise UserError(
            f"{directory} holds another synthetic dataset ('{found.get('name')}') than the "
            f"quickstart makes ('{spec.get('name')}'); remove it, or use another --out"
        )


def train_stage(
    out: Path,
    tokenizer: Path,
    stores: tuple[Path, Path],
    synthetic: Path,
    steps: int | None,
    quiet: bool,
) -> Path:
    from synthlm.train import run

    _check_same_run(out / "run", steps)
    return run(train_config(out, tokenizer, stores, synthetic, steps, quiet))


def train_config(
    out: Path,
    tokenizer: Path,
    stores: tuple[Path, Path],
    synthetic: Path,
    steps: int | None = None,
    quiet: bool = False,
) -> RunConfig:
    """The quickstart's run config: the packaged train.yaml pointed at ``out``'s data."""
    from synthlm.train import load_run_config

    train, valid = stores
    paths = {
        "run_dir": str(out / "run"),
        "data": {
            "tokenizer": str(tokenizer),
            "sources": [
                {"name": "shakespeare", "path": str(train), "weight": 0.5},
                {"name": "synthetic", "path": str(synthetic), "kind": "synthetic", "weight": 0.5},
            ],
            "eval": [  # held-out documents, and the synthetic dataset's own valid split
                {"name": "shakespeare", "path": str(valid), "max_tokens": 16_000},
                {
                    "name": "synthetic",
                    "path": str(synthetic),
                    "kind": "synthetic",
                    "max_examples": 32,
                },
            ],
        },
    }
    overrides = [f"train.max_steps={steps}"] if steps else []
    if quiet:
        overrides.append("logging.progress=false")
    return load_run_config([_packaged("train.yaml"), paths], overrides)


def _check_same_run(run_dir: Path, steps: int | None) -> None:
    """A run of another length in ``OUT/run`` would be resumed (or refused with advice about
    settings quickstart does not take): say what to do instead."""
    import yaml

    from synthlm.errors import UserError

    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    trained = (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}).get("train", {})
    wanted = steps or yaml.safe_load(_packaged("train.yaml").read_text())["train"]["max_steps"]
    if trained.get("max_steps") != wanted:
        raise UserError(
            f"{run_dir} is a run of {trained.get('max_steps')} steps, not {wanted}; use another "
            f"--out, or remove {run_dir} (the data stages are kept and reused)"
        )


def report_stage(run_dir: Path, out: Path) -> Path:
    from synthlm.report import build_report

    return build_report([run_dir], out / "report").page


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The last value of every metric in RUN/metrics.jsonl."""
    latest: dict[str, float] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            latest.update({k: v for k, v in record.items() if isinstance(v, (int, float))})
    return latest


def first_eval(run_dir: Path) -> dict[str, float]:
    """The first evaluation's metrics: the start of the learning curve the summary shows."""
    path = run_dir / "metrics.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        record = json.loads(line)
        if any(k.startswith("eval/") for k in record):
            return {k: v for k, v in record.items() if k.startswith("eval/") or k == "step"}
    return {}


def sample_text(final: Path) -> str:
    """A short continuation of ``PROMPT`` from the final model (natural ids only)."""
    from synthlm.evaluate.checkpoint import load_checkpoint
    from synthlm.inference.sampling import SamplingConfig, generate_texts

    ckpt = load_checkpoint(final, device="cpu", quiet=True)
    rows = ckpt.model.get_input_embeddings().num_embeddings
    sampling = SamplingConfig(max_new_tokens=60, temperature=0.8, seed=0)
    completions = generate_texts(
        ckpt.model,
        ckpt.tokenizer,
        [PROMPT],
        sampling,
        suppress_ids=range(ckpt.layout.natural_size, rows),
    )
    return next(iter(completions)).text


def quickstart(
    out: str | Path = "quickstart",
    *,
    steps: int | None = None,
    quiet: bool = False,
    echo: Callable[[str], Any] = print,
) -> QuickstartResult:
    """Run every stage into ``out``; returns where everything is and the final metrics."""
    out = Path(out)
    result = QuickstartResult(out)

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        echo(f"[{len(result.seconds) + 1}/7] {name} ...")
        start = time.perf_counter()
        value = fn()
        result.seconds[name] = time.perf_counter() - start
        return value

    corpus = stage("corpus: tinyshakespeare split into documents", lambda: write_corpus(out))
    tokenizer = stage(
        f"tokenizer: byte-level BPE, {TOKENIZER_VOCAB} ids",
        lambda: train_tokenizer_stage(corpus, out, quiet),
    )
    store = stage(
        "tokenize: corpus -> token store", lambda: tokenize_stage(corpus, tokenizer, out, quiet)
    )
    stores = stage(
        f"split: {VALID_FRACTION:.0%} of the documents held out", lambda: split_stage(store)
    )
    synthetic = stage(
        "synth: meta-language dataset (identity, reverse)", lambda: synth_stage(out, quiet)
    )
    run_dir = stage(
        "train: tiny Llama on 50% natural + 50% synthetic",
        lambda: train_stage(out, tokenizer, stores, synthetic, steps, quiet),
    )
    report = stage("report: HTML with loss curves", lambda: report_stage(run_dir, out))
    result.paths = {
        "corpus": corpus,
        "tokenizer": tokenizer,
        "store": store,
        "train store": stores[0],
        "valid store": stores[1],
        "synthetic": synthetic,
        "run": run_dir,
        "final model": run_dir / "final",
        "metrics": run_dir / "metrics.jsonl",
        "report": report,
    }
    result.metrics = final_metrics(run_dir)
    result.first = first_eval(run_dir)
    result.sample = sample_text(run_dir / "final")
    return result


def summary(result: QuickstartResult) -> str:
    lines = ["", "quickstart finished:"]
    lines += [f"  {name:12s} {path}" for name, path in result.paths.items()]
    shown = {k: v for k, v in result.metrics.items() if k == "loss" or k.startswith("eval/")}
    if shown:
        start = f"step {result.first.get('step', 0):.0f}"
        lines.append(
            f"metrics (eval/shakespeare: held-out documents, scored as the model trained; "
            f"eval/synthetic: its valid split), {start} -> last:"
        )
        lines += [f"  {k:36s} {_start(result.first, k)}{v:.4g}" for k, v in sorted(shown.items())]
    lines.append(f"sample ({PROMPT!r} ...): {result.sample[:200]!r}")
    lines.append(
        "time: " + ", ".join(f"{k.split(':')[0]} {v:.1f}s" for k, v in result.seconds.items())
    )
    lines.append(
        f"next: open {result.paths['report']} ; synthlm generate "
        f"{result.paths['final model']} -p {PROMPT!r}"
    )
    return "\n".join(lines)


def _start(first: dict[str, float], key: str) -> str:
    return f"{first[key]:.4g} -> " if key in first else ""
