"""SFT objective: which tokens carry loss, in packed and padded batches."""

from __future__ import annotations

import numpy as np

from synthlm.data.mixture import DataConfig, Mixture, build_layout
from synthlm.data.store import write_store
from synthlm.objectives import IGNORE_INDEX, get_objective

EOS = 0


def conversations_store(path):
    docs = [np.array([5, 6, 7, 8, 9]), np.array([11, 12, 13])]
    masks = [np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1])]
    write_store(path, docs, vocab_size=50, masks=masks)


def mixture(path, packing: bool, seq_len: int = 8):
    data = DataConfig(
        sources=[{"name": "chat", "path": str(path)}], seq_len=seq_len, packing=packing
    )
    return Mixture(data, seed=0, layout=build_layout(data, 50, 0), eos_id=EOS)


def test_padded_samples_hold_one_conversation_and_pads_never_count(tmp_path):
    conversations_store(tmp_path / "c")
    m = mixture(tmp_path / "c", packing=False)
    samples = [m.sample(i) for i in range(2)]
    batch = get_objective("sft").collate(samples)
    for row, sample in enumerate(samples):
        real = sample.segment_ids >= 0
        assert (sample.input_ids[~real] == EOS).all()
        labels = batch["labels"][row].numpy()
        assert (labels[~real] == IGNORE_INDEX).all(), "padding is never a target"
        body = sample.input_ids[real][:-1]  # without the document's EOS
        expected = {5: [0, 0, 1, 1, 1], 11: [0, 1, 1]}[int(body[0])]
        assert ((labels[: len(body)] != IGNORE_INDEX).astype(int) == expected).all()


def test_train_on_all_targets_every_real_token(tmp_path):
    conversations_store(tmp_path / "c")
    samples = [mixture(tmp_path / "c", packing=False).sample(i) for i in range(2)]
    labels = get_objective("sft", train_on="all").collate(samples)["labels"].numpy()
    real = np.stack([s.segment_ids for s in samples]) >= 0
    assert ((labels != IGNORE_INDEX) == real).all()


def test_packed_sft_keeps_the_store_masks(tmp_path):
    conversations_store(tmp_path / "c")
    sample = mixture(tmp_path / "c", packing=True, seq_len=10).sample(0)
    labels = get_objective("sft").collate([sample])["labels"].numpy()[0]
    assert ((labels != IGNORE_INDEX) == sample.loss_mask.astype(bool)).all()


def test_an_epoch_of_padded_samples_is_one_pass_over_the_documents(tmp_path):
    conversations_store(tmp_path / "c")
    padded, packed = (
        mixture(tmp_path / "c", packing=False),
        mixture(tmp_path / "c", packing=True, seq_len=4),
    )
    assert padded.sources[0].epoch_samples == 2  # two conversations
    assert packed.sources[0].epoch_samples == (5 + 1 + 3 + 1) / 4  # EOS-joined tokens / window
    assert padded.check_budget(4)["chat"] == 2.0
