"""``load_synthetic``: the interface training and evaluation rely on."""

from __future__ import annotations

import numpy as np
import pytest

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
