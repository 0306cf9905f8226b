"""Synthetic sources generated in the loader: a budgeted spec source trains on exactly what
`synth generate` writes for the same spec; an infinite one is a pure function of the index."""

from __future__ import annotations

import numpy as np
import pytest

from synthlm.data.mixture import DataConfig, Mixture, build_layout
from synthlm.data.store import write_store
from synthlm.errors import ConfigError
from synthlm.synth import build_dataset, load_spec, load_synthetic

SPEC = {
    "name": "fly",
    "num_tokens": 6000,
    "seed": 5,
    "splits": {"train": 0.8, "valid": 0.1, "test": 0.1},
    "domains": [
        {"type": "copy", "weight": 2, "vocab": {"num_vocab": 16}, "length": {"min": 2, "max": 9}},
        {"type": "reverse", "vocab": {"num_vocab": 16}, "length": {"min": 2, "max": 9}},
    ],
}
EOS, NATURAL = 0, 100


def mixture(tmp_path, synthetic: dict, seq_len=24):
    write_store(tmp_path / "web", [np.arange(1, 30) % 90 + 1] * 20, vocab_size=NATURAL)
    data = DataConfig(
        sources=[
            {"name": "web", "path": str(tmp_path / "web")},
            {"name": "syn", "kind": "synthetic", **synthetic},
        ],
        seq_len=seq_len,
    )
    layout = build_layout(data, natural_vocab_size=NATURAL, num_meta_tokens=64, seed=1)
    return Mixture(data, seed=1, layout=layout, eos_id=EOS)


def test_budgeted_spec_source_equals_the_spec_written_to_disk(tmp_path):
    build_dataset(load_spec(SPEC), tmp_path / "disk", quiet=True)
    on_disk = mixture(tmp_path, {"path": str(tmp_path / "disk")})
    on_the_fly = mixture(tmp_path, {"spec": SPEC})
    stored = load_synthetic(tmp_path / "disk").split("train")
    memory = on_the_fly.sources[1].store
    assert len(memory) == len(stored) and memory.num_tokens == stored.num_tokens
    for i in range(len(stored)):
        assert np.array_equal(memory.document(i), stored.document(i))
        assert np.array_equal(memory.mask(i), stored.mask(i))
    for i in range(600):  # several epochs of the synthetic source
        a, b = on_disk.sample(i), on_the_fly.sample(i)
        assert a.source == b.source and np.array_equal(a.input_ids, b.input_ids)
        assert np.array_equal(a.loss_mask, b.loss_mask) and np.array_equal(
            a.segment_ids, b.segment_ids
        )


def test_infinite_spec_source_is_a_pure_function_of_the_index(tmp_path):
    first = mixture(tmp_path, {"spec": SPEC, "stream": "infinite"})
    again = mixture(tmp_path, {"spec": SPEC, "stream": "infinite"})
    windows = [first.sources[1].window(k) for k in range(50)]
    for k in (49, 0, 17):  # any order, another instance: the same window
        assert all(np.array_equal(x, y) for x, y in zip(windows[k], again.sources[1].window(k)))
    tokens = np.stack([w[0] for w in windows])
    assert tokens.shape == (50, 24) and len({t.tobytes() for t in tokens}) == 50, "never repeats"
    meta = tokens[tokens != EOS]
    assert meta.min() >= NATURAL and meta.max() < NATURAL + 64, "shifted into the meta range"
    assert first.check_budget(10**6)["syn"] == 0.0


def test_unpacked_infinite_source_holds_one_document_per_row(tmp_path):
    """data.packing: false means one document per row for a stream too (it packed 3-4)."""
    unpacked = mixture(tmp_path, {"spec": SPEC, "stream": "infinite"}, seq_len=24)
    unpacked.data.packing = False
    unpacked.sources[1] = unpacked._open_spec(1, unpacked.data.sources[1])
    for k in range(40):
        tokens, mask, segments = unpacked.sources[1].window(k)
        eos = np.flatnonzero(tokens == EOS)
        end = int(eos[0]) + 1  # the document and its EOS; meta ids never equal EOS
        assert end >= 4, "a copy/reverse document has a body"
        assert (segments[:end] == 0).all() and (mask[end - 1] == 1), "the EOS is a target"
        assert (tokens[end:] == EOS).all() and (mask[end:] == 0).all()
        assert (segments[end:] == -1).all(), "padding: no segment, no target"
        again = unpacked.sources[1].window(k)
        assert np.array_equal(tokens, again[0]), "still a pure function of the index"


def test_spec_source_needs_kind_synthetic_and_not_both_path_and_spec(tmp_path):
    with pytest.raises(ValueError, match="kind: synthetic"):
        DataConfig(sources=[{"name": "s", "spec": SPEC}])
    with pytest.raises(ValueError, match="exactly one"):
        DataConfig(
            sources=[{"name": "s", "kind": "synthetic", "spec": SPEC, "path": str(tmp_path)}]
        )


def test_spec_source_needing_more_meta_ids_fails_before_work(tmp_path):
    write_store(tmp_path / "web", [[1, 2, 3]], vocab_size=NATURAL)
    data = DataConfig(
        sources=[
            {"name": "web", "path": str(tmp_path / "web")},
            {"name": "syn", "kind": "synthetic", "spec": SPEC},
        ]
    )
    with pytest.raises(ConfigError, match="needs .* meta-language ids"):
        build_layout(data, natural_vocab_size=NATURAL, num_meta_tokens=4)
