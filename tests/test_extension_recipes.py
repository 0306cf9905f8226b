"""The recipes of docs/architecture.md, followed literally, work through the real CLI.

The domain and the objective are the doc's own code blocks, copied verbatim into a plugin
distribution (see tests/plugin_helpers.py), so the doc cannot drift from what works: a recipe
that needs one more method than it shows fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plugin_helpers import doc_recipe, install_plugin
from synthlm.config import Section
from synthlm.data.store import write_store
from synthlm.errors import ConfigError
from synthlm.objectives import OBJECTIVES, Objective, register_objective
from synthlm.synth.domain import Domain
from synthlm.synth.ragged import Ragged
from synthlm.synth.registry import DOMAINS, register_domain
from synthlm.synth.role_ids import RoleIds
from synthlm.synth.vocab import VocabParams
from synthlm.tokenizers import load_tokenizer, train_tokenizer

REPO = Path(__file__).resolve().parents[1]
SPEC = "name: twice\nnum_tokens: 4K\nseed: 1\ndomains:\n  - {type: twice, vocab: {num_vocab: 20}}\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A distribution whose plugins are the doc's domain and objective recipes, as written."""
    modules = {
        "doc_domain": doc_recipe("@register_domain("),
        "doc_objective": doc_recipe("@register_objective("),
    }
    entry_points = {"doc_domain": "doc_domain", "doc_objective": "doc_objective"}
    return install_plugin(tmp_path_factory.mktemp("site"), "doc-recipes", modules, entry_points)


def synthlm(*args: str, env: dict[str, str], cwd: Path | None = None):
    result = subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_domain_recipe_previews_generates_and_verifies(env, tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    preview = synthlm("synth", "preview", str(spec), "-n", "2", env=env)
    assert preview.stdout.count("verify ok") == 2 and "<ans>" in preview.stdout
    synthlm("synth", "generate", str(spec), "-o", str(tmp_path / "out"), "-q", env=env)
    report = json.loads(synthlm("synth", "verify", str(tmp_path / "out"), "--json", env=env).stdout)
    assert report["ok"], report
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["domains"]["twice"]["sequences"] > 100


def natural_data(root: Path) -> tuple[Path, Path]:
    """A byte tokenizer and a store of random natural documents."""
    train_tokenizer([], "byte", None, root / "tok", quiet=True)
    vocab = load_tokenizer(root / "tok").vocab_size
    rng = np.random.default_rng(0)
    docs = [rng.integers(4, vocab, size=int(rng.integers(5, 40))) for _ in range(60)]
    write_store(root / "web", docs, vocab_size=vocab)
    return root / "tok", root / "web"


@pytest.mark.slow
def test_objective_recipe_trains_with_synthetic_data_and_evaluates(env, tmp_path: Path):
    """With a synthetic source the run passes document_mask; the eval hook and ``synthlm eval``
    score through the objective's own loss."""
    tok, web = natural_data(tmp_path)
    twice = {"name": "twice", "num_tokens": "2K", "domains": [{"type": "twice"}]}
    config = {
        "run_dir": str(tmp_path / "run"),
        "model": {
            "arch": "llama",
            "preset": "tiny",
            "num_meta_tokens": 128,
            "overrides": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2},
        },
        "data": {
            "tokenizer": str(tok),
            "seq_len": 32,
            "sources": [
                {"name": "web", "path": str(web)},
                {"name": "twice", "kind": "synthetic", "spec": twice},
            ],
            "eval": [{"name": "web", "path": str(web), "max_tokens": 512}],
        },
        "objective": {"name": "smooth", "smoothing": 0.2},
        "train": {"max_steps": 3, "batch_size": 4, "log_every": 1, "eval_every": 3},
        "logging": {"tensorboard": False, "progress": False},
    }
    (tmp_path / "run.json").write_text(json.dumps(config))
    synthlm("train", str(tmp_path / "run.json"), env=env)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert any(np.isfinite(r.get("eval/web/loss", np.nan)) for r in records)
    out = tmp_path / "eval.json"
    args = ["--data", str(web), "--seq-len", "32", "--device", "cpu", "--out", str(out)]
    synthlm("eval", str(tmp_path / "run" / "final"), *args, env=env)
    assert np.isfinite(json.loads(out.read_text())["metrics"]["eval/web/loss"])


@pytest.mark.slow
def test_the_objective_contract_covers_a_plugin_objective(env):
    """The contract test parametrises over the registry, so the doc's objective is checked too."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/t5/test_objective_contract.py", "-k", "smooth"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout  # the counting contract and the document mask


class Tokens(Domain):
    """A task with only Params, body and solve, as the recipe says; not registered."""

    Params = VocabParams

    def body(self, rng: np.random.Generator, n: int) -> list[tuple[Ragged, bool]]:
        x = Ragged(rng.integers(0, self.content, 3 * n), np.full(n, 3))
        return self.answered(x, x)

    def solve(self, prompt: np.ndarray) -> np.ndarray:
        return prompt


def test_a_domain_needs_no_markers_nor_mean_body_length():
    params = VocabParams(vocab={"num_vocab": 7})
    layout = RoleIds.build([Tokens.needs(params, "tokens", 1)], seed=0)
    domain = Tokens(params, layout, name="tokens")
    assert Tokens.layout_markers() == ("answer",) and "answer" in layout.markers
    assert domain.mean_body_length() == 7.0  # measured: 3 + <ans> + 3
    batch = domain.generate(np.random.default_rng(1), 4)
    first = batch.tokens[: batch.sizes[0]]
    assert domain.verify(first) and domain.split(first)[1].tolist() == first[-3:].tolist()


def test_a_domain_without_its_check_is_refused_when_registered():
    class NoCheck(Domain):
        Params = VocabParams

        def body(self, rng, n):
            raise AssertionError("never called")

    with pytest.raises(TypeError, match=r"'no_check' .*must implement solve\(prompt\)"):
        register_domain("no_check", family="t", description="d")(NoCheck)
    NoCheck.is_task = False
    with pytest.raises(TypeError, match=r"must implement check_language\(body\)"):
        register_domain("no_check", family="t", description="d")(NoCheck)
    assert "no_check" not in DOMAINS


class ScaleOptions(Section):
    scale: float = 2.0


class Scaled(Objective):
    """An objective with options and no ``__init__`` (not registered)."""

    Options = ScaleOptions


def test_the_base_objective_takes_its_options_and_document_mask():
    plain = Scaled()
    assert plain.scale == 2.0 and plain.document_mask is False
    given = Scaled(scale=0.5, document_mask=True)  # what the planner passes with synthetic data
    assert given.scale == 0.5 and given.document_mask is True and given.options.scale == 0.5
    with pytest.raises(ConfigError, match="scal"):
        Scaled(scal=1.0)


def test_an_option_named_like_a_method_is_refused():
    class Clash(Section):
        forward: int = 1

    class Shadowing(Objective):
        Options = Clash

    with pytest.raises(TypeError, match="option.s. forward would hide"):
        register_objective("shadowing")(Shadowing)
    assert "shadowing" not in OBJECTIVES
