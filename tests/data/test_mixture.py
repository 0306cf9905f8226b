"""Mixtures: exact ratios, pure-function sampling, packing with EOS, budgets and fail-fast checks."""

from __future__ import annotations

import numpy as np
import pytest

from synthlm.data.mixture import (
    BLEND_CHUNK,
    DataConfig,
    Mixture,
    MixtureDataset,
    blend,
    build_layout,
    samples_per_source,
)
from synthlm.data.store import write_store
from synthlm.errors import ConfigError, StoreError
from synthlm.objectives import IGNORE_INDEX, get_objective

EOS = 0


def make_store(path, n_docs=30, vocab=200, seed=0, masks=False):
    rng = np.random.default_rng(seed)
    docs = [rng.integers(1, vocab, size=int(rng.integers(3, 25))) for _ in range(n_docs)]
    mask_list = [rng.integers(0, 2, size=len(d)) for d in docs] if masks else None
    write_store(path, docs, vocab_size=vocab, masks=mask_list)
    return docs, mask_list


def data_config(sources, seq_len=16, **extra):
    return DataConfig(sources=sources, seq_len=seq_len, **extra)


def mixture_for(tmp_path, weights=(1.0,), seq_len=16, seed=0, **extra):
    sources = []
    for i, w in enumerate(weights):
        make_store(tmp_path / f"s{i}", seed=i)
        sources.append({"name": f"s{i}", "path": str(tmp_path / f"s{i}"), "weight": w})
    data = data_config(sources, seq_len=seq_len, **extra)
    layout = build_layout(data, natural_vocab_size=200, num_meta_tokens=0)
    return Mixture(data, seed=seed, layout=layout, eos_id=EOS)


@pytest.mark.parametrize(
    "weights", [(0.7, 0.2, 0.1), (3.0, 1.0), (0.5, 0.25, 0.125, 0.125), (1 / 3, 1 / 3, 1 / 3)]
)
def test_source_shares_match_weights_over_10k_samples(weights):
    total = sum(weights)
    sources = np.array([blend(tuple(w / total for w in weights), i)[0] for i in range(10_000)])
    shares = np.bincount(sources, minlength=len(weights)) / len(sources)
    np.testing.assert_allclose(shares, np.array(weights) / total, atol=0.01)


def test_blend_is_a_bijection_across_chunk_boundaries():
    weights = (0.61, 0.3, 0.09)
    n = 3 * BLEND_CHUNK + 17
    seen = {s: [] for s in range(3)}
    for i in range(n):
        s, k = blend(weights, i)
        seen[s].append(k)
    for s, ks in seen.items():
        assert ks == list(range(len(ks))), (
            f"source {s} windows must be consumed in order, none skipped or repeated"
        )
    assert [len(seen[s]) for s in range(3)] == samples_per_source(weights, n)


def test_samples_are_a_pure_function_of_the_index(tmp_path):
    first = mixture_for(tmp_path, weights=(2, 1))
    second = mixture_for(tmp_path, weights=(2, 1))
    indices = [5000, 3, 17, 4096, 0, 4095]
    for i in indices:  # random access order in one, sequential in the other
        a, b = first.sample(i), second.sample(i)
        np.testing.assert_array_equal(a.input_ids, b.input_ids)
        assert a.source == b.source


def test_single_source_windows_concatenate_to_eos_joined_shuffled_epoch(tmp_path):
    docs, _ = make_store(tmp_path / "s0", n_docs=10)
    data = data_config([{"name": "s0", "path": str(tmp_path / "s0")}], seq_len=7)
    mixture = Mixture(data, seed=3, layout=build_layout(data, 200, 0), eos_id=EOS)
    epoch_len = sum(len(d) + 1 for d in docs)
    stream = np.concatenate([mixture.sample(i).input_ids for i in range(epoch_len // 7 + 1)])[
        :epoch_len
    ]
    pieces = np.split(stream, np.flatnonzero(stream == EOS) + 1)[:-1]
    assert sorted(tuple(p[:-1]) for p in pieces) == sorted(tuple(d) for d in docs), (
        "each document exactly once per epoch"
    )
    assert [tuple(p[:-1]) for p in pieces] != [tuple(d) for d in docs], "documents are shuffled"


def test_different_seeds_shuffle_differently(tmp_path):
    a = mixture_for(tmp_path, seed=1).sample(0).input_ids
    b = mixture_for(tmp_path, seed=2).sample(0).input_ids
    assert not np.array_equal(a, b)


def test_store_loss_masks_are_respected(tmp_path):
    docs, masks = make_store(tmp_path / "m", n_docs=5, masks=True)
    data = data_config([{"name": "m", "path": str(tmp_path / "m")}], seq_len=8)
    mixture = Mixture(data, seed=0, layout=build_layout(data, 200, 0), eos_id=EOS)
    epoch = sum(len(d) + 1 for d in docs)
    samples = [mixture.sample(i) for i in range(epoch // 8)]
    tokens = np.concatenate([s.input_ids for s in samples])
    loss_mask = np.concatenate([s.loss_mask for s in samples])
    lookup = {tuple(d): m for d, m in zip(docs, masks)}
    start = 0
    for end in np.flatnonzero(tokens == EOS):
        doc = tuple(tokens[start:end])
        np.testing.assert_array_equal(loss_mask[start:end], lookup[doc])
        assert loss_mask[end] == 1, "the EOS after a document is a target"
        start = end + 1


@pytest.mark.parametrize("packing", [True, False])
def test_loss_all_makes_every_document_token_a_target(tmp_path, packing):
    """``loss: all`` (Seqthetic's metalang pretraining trains on raw ids, whatever the task's
    mask) makes every token of the source's documents a target; the tokens themselves, and a
    padded row's padding (never a target), are unchanged."""
    make_store(tmp_path / "m", n_docs=6, masks=True)
    sources = [{"name": "m", "path": str(tmp_path / "m")}]
    stored = data_config(sources, seq_len=8, packing=packing)
    everything = data_config([{**sources[0], "loss": "all"}], seq_len=8, packing=packing)
    as_stored, as_all = (
        Mixture(d, seed=0, layout=build_layout(d, 200, 0), eos_id=EOS) for d in (stored, everything)
    )
    assert any(not as_stored.sample(i).loss_mask.all() for i in range(6))  # masks hold zeros
    for i in range(6):
        kept, trained = as_stored.sample(i), as_all.sample(i)
        np.testing.assert_array_equal(kept.input_ids, trained.input_ids)
        np.testing.assert_array_equal(trained.loss_mask, (kept.segment_ids >= 0).astype(np.uint8))


def test_document_mask_never_lets_a_document_predict_the_next(tmp_path):
    mixture = mixture_for(tmp_path, seq_len=32, document_mask=True)
    objective = get_objective("clm", document_mask=True)
    samples = [mixture.sample(i) for i in range(4)]
    batch = objective.collate(samples)
    for row, sample in enumerate(samples):
        starts = np.flatnonzero(np.diff(sample.segment_ids)) + 1
        assert len(starts) > 0
        assert (batch["labels"][row, starts] == IGNORE_INDEX).all()
        assert (batch["position_ids"][row, starts] == 0).all()
        assert batch["position_ids"][row, 0] == 0


@pytest.mark.parametrize("document_mask", [None, True, False])
def test_document_mask_default_masks_synthetic_examples_not_natural_text(tmp_path, document_mask):
    """null (the default): synthetic windows get one segment per example, natural windows one
    segment each (GPT-style packing, as in a natural-only run); true: both per document."""
    from synthlm.synth import build_dataset, load_spec

    make_store(tmp_path / "web")
    spec = {
        "name": "copy",
        "num_tokens": 3000,
        "seed": 0,
        "domains": [
            {"type": "identity", "vocab": {"num_vocab": 8}, "length": {"min": 2, "max": 5}}
        ],
    }
    build_dataset(load_spec(spec), tmp_path / "syn", quiet=True)
    sources = [
        {"name": "web", "path": str(tmp_path / "web")},
        {"name": "syn", "path": str(tmp_path / "syn"), "kind": "synthetic"},
    ]
    data = data_config(sources, seq_len=32, document_mask=document_mask)
    mixture = Mixture(data, seed=0, layout=build_layout(data, 200, 32), eos_id=EOS)
    expected = {None: ("synthetic",), True: ("natural", "synthetic"), False: ()}[document_mask]
    assert mixture.masked_kinds == frozenset(expected)
    objective = get_objective("clm", document_mask=True)
    for i in range(40):
        sample = mixture.sample(i)
        kind = ("natural", "synthetic")[sample.source]
        assert len(np.unique(sample.segment_ids)) > 1, "segment ids always mark documents"
        positions = objective.collate([sample])["position_ids"][0].numpy()
        restarts = bool((positions[1:] == 0).any())
        assert restarts == (kind in expected), (kind, positions)


def test_max_repetition_fails_before_training(tmp_path):
    make_store(tmp_path / "tiny", n_docs=3)
    data = data_config(
        [{"name": "tiny", "path": str(tmp_path / "tiny"), "max_repetition": 2}], seq_len=16
    )
    mixture = Mixture(data, seed=0, layout=build_layout(data, 200, 0), eos_id=EOS)
    assert mixture.check_budget(2)["tiny"] < 2
    with pytest.raises(ConfigError, match=r"'tiny' would be repeated .*max_repetition=2\.0"):
        mixture.check_budget(1000)


def test_missing_paths_fail_fast(tmp_path):
    data = data_config([{"name": "gone", "path": str(tmp_path / "gone")}])
    with pytest.raises(ConfigError, match=r"data\.sources\.0\.path: .*gone is not a token store"):
        build_layout(data, 200, 0)


def test_ids_beyond_the_natural_vocab_fail_fast(tmp_path):
    make_store(tmp_path / "big", vocab=500)
    data = data_config([{"name": "big", "path": str(tmp_path / "big")}])
    with pytest.raises(StoreError, match="outside the vocabulary of 100"):
        build_layout(data, natural_vocab_size=100, num_meta_tokens=0)


def test_duplicate_source_names_are_rejected(tmp_path):
    with pytest.raises(Exception, match="unique"):
        data_config([{"name": "a", "path": "x"}, {"name": "a", "path": "y"}])


def test_dataset_view_and_layout_rounding(tmp_path):
    mixture = mixture_for(tmp_path, weights=(1, 1))
    view = MixtureDataset(mixture, range(10, 20))
    assert len(view) == 10
    np.testing.assert_array_equal(view[0].input_ids, mixture.sample(10).input_ids)
    assert mixture.layout.model_vocab_size % 64 == 0 and mixture.layout.model_vocab_size >= 200


def test_synthetic_ids_live_only_in_the_reserved_meta_range(tmp_path):
    from synthlm.synth import build_dataset, load_spec

    spec = load_spec(
        {
            "name": "iso",
            "num_tokens": 4000,
            "seed": 0,
            "domains": [
                {"type": "identity", "vocab": {"num_vocab": 150}, "length": {"min": 4, "max": 12}},
                {"type": "dyck", "k": 3, "max_depth": 4, "length": {"min": 8, "max": 16}},
            ],
        }
    )
    build_dataset(spec, tmp_path / "syn", quiet=True)
    make_store(tmp_path / "nat", vocab=200)
    data = data_config(
        [
            {"name": "nat", "path": str(tmp_path / "nat"), "weight": 1},
            {"name": "syn", "path": str(tmp_path / "syn"), "kind": "synthetic", "weight": 1},
        ],
        seq_len=32,
    )
    layout = build_layout(data, natural_vocab_size=200, num_meta_tokens=256)
    assert layout.meta_offset == 200 and layout.model_vocab_size >= 200 + 256
    mixture = Mixture(data, seed=0, layout=layout, eos_id=EOS)
    seen_synthetic = False
    for i in range(400):
        sample = mixture.sample(i)
        ids = sample.input_ids[sample.input_ids != EOS]
        if sample.source == 1:
            seen_synthetic = True
            assert ids.min() >= layout.meta_offset, (
                "a synthetic id fell into the natural vocabulary"
            )
            assert ids.max() < layout.meta_offset + layout.meta_size
        else:
            assert ids.max() < layout.natural_size
    assert seen_synthetic


def test_each_source_keeps_its_own_epoch_cache(tmp_path):
    """Five sources once shared one 4-entry cache and re-shuffled on every window."""
    mixture = mixture_for(tmp_path, weights=(1, 1, 1, 1, 1))
    for i in range(50):
        mixture.sample(i)
    assert all(source._epoch_cache.cache_info().misses == 1 for source in mixture.sources)


def test_a_very_rare_source_is_counted_without_deep_recursion():
    counts = samples_per_source((1 - 1e-7, 1e-7), 5_000_000)
    assert sum(counts) == 5_000_000 and counts[1] in (0, 1)
