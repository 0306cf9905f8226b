"""``load_synthetic``: the interface training and evaluation rely on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cli_runner import run_cli
from synthlm.errors import UserError
from synthlm.synth import Example, build_dataset, load_spec, load_synthetic, score
from synthlm.synth import dataset as synth_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "d"
    spec = load_spec(
        {
            "num_tokens": "12K",
            "seed": 4,
            "domains": [
                {"type": "reverse", "vocab": {"num_vocab": 30}},
                {"type": "dyck"},
                {"type": "union", "vocab": {"num_vocab": 30}},
                {"type": "abduct"},
            ],
        }
    )
    build_dataset(spec, out, quiet=True)
    return load_synthetic(out)


def test_stores_domains_and_vocab(dataset):
    assert dataset.vocab_size == dataset.manifest["layout"]["vocab_size"]
    assert dataset.domain_names() == ["reverse", "dyck", "union", "abduct"]
    for split in ("train", "valid", "test"):
        store = dataset.split(split)
        owners = dataset.domain_of(split)
        assert len(owners) == len(store) and store.vocab_size == dataset.vocab_size
        assert np.all(np.diff(owners) >= 0), "documents are grouped by domain in spec order"
        store.check_ids(dataset.vocab_size)
    with pytest.raises(UserError, match="unknown split 'dev'"):
        dataset.split("dev")


def test_examples_split_documents_into_prompt_and_answer(dataset):
    examples = list(dataset.examples("train", limit=9))
    assert [e.domain for e in examples[:3]] == ["reverse", "union", "abduct"], (
        "round robin over task domains"
    )
    assert all(isinstance(e, Example) for e in examples) and "dyck" not in {
        e.domain for e in examples
    }
    store = dataset.split("train")
    for e in examples:
        document = store.document(e.index)
        assert np.array_equal(np.concatenate([e.prompt, e.answer]), document)
        mask = store.mask(e.index)
        assert mask[len(e.prompt) :].all() and not mask[: len(e.prompt)].any()
        domain = dataset.domain(e.domain)
        assert e.prompt[-1] == domain.mark(domain.output_marker)
    everything = list(dataset.examples("train"))
    owners = np.asarray(dataset.domain_of("train"))
    assert len(everything) == int(np.isin(owners, [0, 2, 3]).sum())


def test_score_by_name_and_by_domain(dataset, monkeypatch):
    # a name is looked up in the datasets loaded in this process: only this one here (other
    # tests in the same process load datasets whose 'reverse' is defined differently)
    monkeypatch.setattr(synth_dataset, "_LOADED", {dataset.directory.resolve(): dataset})
    reverse = next(e for e in dataset.examples("valid") if e.domain == "reverse")
    assert score("reverse", reverse.prompt, reverse.answer) == 1.0
    assert score(dataset.domain("reverse"), reverse.prompt, reverse.answer[::-1]) == float(
        np.array_equal(reverse.answer, reverse.answer[::-1])
    )
    assert score("reverse", reverse.prompt, reverse.answer[:-1]) == 0.0
    assert dataset.score("reverse", reverse.prompt, np.r_[reverse.answer, reverse.answer[0]]) == 0.0
    abduct = next(e for e in dataset.examples("train") if e.domain == "abduct")
    assert score("abduct", abduct.prompt, abduct.answer, dataset=dataset) == 1.0
    with pytest.raises(UserError, match="no loaded synthetic dataset has a domain named 'nope'"):
        score("nope", reverse.prompt, reverse.answer)


def with_manifest_edit(dataset, tmp_path, edit) -> object:
    """A copy of the dataset whose manifest.json's spec was changed by ``edit(spec)``."""
    copy = tmp_path / "copy"
    shutil.copytree(dataset.directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest["spec"])
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_a_domain_unknown_to_this_synthlm_is_named_with_a_hint(dataset, tmp_path):
    """A dataset made with a plugin domain that is not loaded now: one clear line naming the
    manifest and the type, for the library, ``synth verify`` and ``eval --data`` alike."""
    copy = with_manifest_edit(dataset, tmp_path, lambda s: s["domains"][2].update(type="myplug"))
    with pytest.raises(UserError, match="domains.2.type 'myplug'"):
        load_synthetic(copy)
    done = run_cli("synth", "verify", str(copy), "-q")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert str(copy / "manifest.json") in done.stderr and "'myplug'" in done.stderr
    assert "plugin" in done.stderr and "newer synthlm" in done.stderr
    assert "union_tag_invalid" not in done.stderr and "'dyck'" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_spec_key_this_synthlm_does_not_know_names_the_manifest(dataset, tmp_path):
    copy = with_manifest_edit(dataset, tmp_path, lambda s: s["domains"][0].update(newer=1))
    with pytest.raises(UserError, match="newer: unknown key") as info:
        load_synthetic(copy)
    message = str(info.value)
    assert str(copy / "manifest.json") in message and "newer synthlm" in message
    assert len(message.splitlines()) == 1
