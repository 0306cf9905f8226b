"""``data.shared_boundary``: rows cut as Megatron's and GPT-NeoX's ``GPTDataset`` cut them.

The reference is megatron-core itself: its C++ ``build_sample_idx`` (with
``add_extra_token_to_sequence``, GPTDataset's default) over a store its own builder wrote, read
back through its own ``IndexedDataset.get`` the way ``GPTDataset.__getitem__`` joins a sample's
parts. With the store's order kept (``order: stored``, GPTDataset's shuffles left out), window
k must be megatron's sample k token for token, and the loss must be the one GPT-NeoX computes
on it: inputs ``sample[:-1]``, targets ``sample[1:]``, every position a target.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from train_helpers import tiny_config

from synthlm.data.store import TokenStore
from synthlm.errors import ConfigError
from synthlm.evaluate.perplexity import held_out_samples
from synthlm.objectives.clm import CausalLM
from synthlm.tokenizers import load_tokenizer
from synthlm.train import load_run_config
from synthlm.train.planners import plan_run

SEQ = 16


def _megatron():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        helpers = pytest.importorskip("megatron.core.datasets.helpers")
        indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    return helpers, indexed


@pytest.fixture(scope="module")
def neox_store(tmp_path_factory, data):
    """Documents ending with EOD (``preprocess_data.py --append-eod``), written and read back
    by megatron-core; a synthlm reader takes them as they are (no second EOS)."""
    _, indexed = _megatron()
    eos = load_tokenizer(data["tok"]).eos_id
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("neox")
    builder = indexed.IndexedDatasetBuilder(str(root / "document.bin"), dtype=np.uint16)
    for _ in range(23):
        body = rng.integers(4, 250, size=int(rng.integers(3, 40)))
        builder.add_document(np.append(body, eos).astype(np.uint16), [len(body) + 1])
    builder.finalize(str(root / "document.idx"))
    return root / "document", indexed.IndexedDataset(str(root / "document"))


def megatron_samples(reader, seq_len: int, epochs: int) -> list[np.ndarray]:
    """GPTDataset's samples without its shuffles: the documents in store order each epoch."""
    helpers, _ = _megatron()
    sizes = reader.sequence_lengths.astype(np.int32)
    documents = np.concatenate([np.arange(len(sizes), dtype=np.int32)] * epochs)
    index = helpers.build_sample_idx(
        sizes, documents, seq_len, epochs, int(sizes.sum()), True, True
    )
    samples = []
    for (first, begin), (last, end) in itertools.pairwise(index):
        if first == last:
            parts = [reader.get(int(documents[first]), offset=int(begin), length=end - begin + 1)]
        else:
            parts = [reader.get(int(documents[first]), offset=int(begin))]
            parts += [reader.get(int(documents[i])) for i in range(first + 1, last)]
            parts.append(reader.get(int(documents[last]), offset=0, length=int(end) + 1))
        samples.append(np.concatenate(parts).astype(np.int64))
    return samples


def plan(tmp_path, data, store, **data_keys):
    config = tiny_config(
        tmp_path,
        data,
        data={
            "sources": [{"name": "pile", "path": str(store), "order": "stored"}],
            "seq_len": SEQ,
            "shared_boundary": True,
            **data_keys,
        },
        train={"max_steps": 2, "batch_size": 4},
    )
    return plan_run(load_run_config([config]), 1)


def test_windows_are_megatrons_samples_across_documents_and_epochs(tmp_path, data, neox_store):
    store, reader = neox_store
    expected = megatron_samples(reader, SEQ, epochs=2)
    mixture = plan(tmp_path, data, store).mixture
    assert len(expected) > 40  # several samples span documents and the second epoch
    for k, sample in enumerate(expected):
        window = mixture.sample(k)
        assert window.extra_target and len(sample) == SEQ + 1
        np.testing.assert_array_equal(window.input_ids, sample, err_msg=f"sample {k}")


def test_the_loss_is_neox_loss_on_the_sample(tmp_path, data, neox_store):
    """SEQ inputs, SEQ targets: cross-entropy of model(sample[:-1]) against sample[1:]."""
    store, reader = neox_store
    run = plan(tmp_path, data, store)
    samples = [run.mixture.sample(k) for k in range(4)]
    batch = run.objective.collate(samples)
    assert batch["input_ids"].shape == (4, SEQ)
    assert run.objective.num_targets(batch) == 4 * SEQ
    torch.manual_seed(0)
    from synthlm.models import build_model

    model = build_model(run.config.model, vocab_size=run.layout.model_vocab_size)
    loss_sum, targets = run.objective.loss_sum(model, batch)
    rows = torch.from_numpy(np.stack(megatron_samples(reader, SEQ, epochs=1)[:4]))
    logits = model(input_ids=rows[:, :-1]).logits
    expected = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), rows[:, 1:].reshape(-1), reduction="sum"
    )
    assert int(targets) == 4 * SEQ
    torch.testing.assert_close(loss_sum, expected, rtol=1e-5, atol=1e-4)


def test_unpacked_rows_read_a_store_of_seq_len_plus_one_samples_whole(tmp_path, data):
    """Pythia's pre-shuffled Pile: 2,049-token samples, read at seq_len 2,048 with no padding."""
    _, indexed = _megatron()
    rng = np.random.default_rng(2)
    builder = indexed.IndexedDatasetBuilder(str(tmp_path / "pile.bin"), dtype=np.uint16)
    rows = [rng.integers(4, 250, size=SEQ + 1) for _ in range(8)]
    for row in rows:
        builder.add_document(row.astype(np.uint16), [SEQ + 1])
    builder.finalize(str(tmp_path / "pile.idx"))
    run = plan(tmp_path, data, tmp_path / "pile", packing=False)
    batch = run.objective.collate([run.mixture.sample(k) for k in range(4)])
    np.testing.assert_array_equal(batch["input_ids"].numpy(), np.stack(rows[:4])[:, :-1])
    np.testing.assert_array_equal(batch["labels"].numpy()[:, 1:], np.stack(rows[:4])[:, 1:])


def test_document_masking_keeps_the_next_documents_first_token_out(tmp_path, data, neox_store):
    """Under document masking a row's extra token that starts a new document is not a target
    (nothing in this row's document may predict it); positions cover the inputs only."""
    store, _ = neox_store
    run = plan(tmp_path, data, store, document_mask=True)
    objective = run.objective
    assert isinstance(objective, CausalLM) and objective.document_mask
    for k in range(30):
        sample = run.mixture.sample(k)
        batch = objective.collate([sample])
        assert batch["position_ids"].shape == (1, SEQ) == batch["segment_ids"].shape
        starts_doc = sample.segment_ids[-1] != sample.segment_ids[-2]
        assert (int(batch["labels"][0, -1]) == -100) == bool(starts_doc)


def test_held_out_windows_predict_every_token_but_the_first(data, neox_store):
    store, reader = neox_store
    total = 150
    eos = load_tokenizer(data["tok"]).eos_id
    rows = list(
        held_out_samples(
            TokenStore(store),
            seq_len=SEQ,
            eos_id=eos,
            max_tokens=total,
            packing=True,
            shared_boundary=True,
        )
    )
    objective = CausalLM()
    batch = objective.collate(rows)
    assert objective.num_targets(batch) == total - 1
    stream = np.concatenate([reader[i] for i in range(len(reader))]).astype(np.int64)[:total]
    for k, row in enumerate(rows):
        real = row.segment_ids >= 0
        np.testing.assert_array_equal(row.input_ids[real], stream[k * SEQ : k * SEQ + SEQ + 1])


@pytest.mark.parametrize(
    ("objective", "arch"),
    [({"name": "sft", "train_on": "all"}, "llama"), ({"name": "span_corruption"}, "t5")],
)
def test_objectives_that_cannot_read_the_rows_are_refused(
    tmp_path, data, neox_store, objective, arch
):
    store, _ = neox_store
    config = tiny_config(
        tmp_path,
        data,
        data={
            "sources": [{"name": "pile", "path": str(store)}],
            "shared_boundary": True,
        },
        objective=objective,
        model={"arch": arch, "preset": "tiny", "overrides": {}},
    )
    with pytest.raises(ConfigError, match="data.shared_boundary"):
        plan_run(load_run_config([config]), 1)
