"""``data.sources[].order: stored``: a store shuffled offline is trained in its own order.

Pythia's pre-shuffled Pile is a Megatron store of 2,049-token samples in the order the Pythia
models saw them (146,432,000 = 143,000 steps x 1,024: step s is samples [1024 s, 1024 (s + 1))).
Here a store written by megatron-core itself, one fixed-length sample per document, is trained
with ``packing: false``: each optimizer step must hold exactly the next global batch of
documents in store order, whatever the split into micro-batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from train_helpers import tiny_config

from synthlm.config import validate
from synthlm.data.mixture import SourceConfig
from synthlm.errors import ConfigError, UserError
from synthlm.train import load_run_config, run
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run

SAMPLE = 17  # tokens per stored sample (Pythia's: 2,049)
GLOBAL = 8


@pytest.fixture(scope="module")
def megatron_store(tmp_path_factory, data):
    """40 samples written by megatron-core's own builder, and the ids read back by its reader."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    root = tmp_path_factory.mktemp("pile")
    rng = np.random.default_rng(5)
    builder = indexed.IndexedDatasetBuilder(str(root / "document.bin"), dtype=np.uint16)
    for _ in range(40):
        builder.add_document(rng.integers(4, 250, size=SAMPLE).astype(np.uint16), [SAMPLE])
    builder.finalize(str(root / "document.idx"))
    reader = indexed.IndexedDataset(str(root / "document"))
    return root / "document", [np.asarray(reader[i], dtype=np.int64) for i in range(len(reader))]


def step_rows(tmp_path, data, store, order: str, batch_size: int, steps: int = 3) -> list:
    config = load_run_config(
        [
            tiny_config(
                tmp_path,
                data,
                data={
                    "sources": [{"name": "pile", "path": str(store), "order": order}],
                    "packing": False,
                    "seq_len": SAMPLE,
                },
                train={"max_steps": steps, "batch_size": batch_size, "global_batch_size": GLOBAL},
            )
        ]
    )
    trainer = Trainer(plan_run(config, 1), progress=False)
    trainer.start(None)
    return [
        np.concatenate([b["input_ids"].numpy() for b in micro_batches])
        for micro_batches in trainer._batches()
    ]


@pytest.mark.parametrize("batch_size", [8, 2])  # one micro-batch, or four accumulated
def test_each_step_trains_the_next_global_batch_in_store_order(
    tmp_path, data, megatron_store, batch_size
):
    store, samples = megatron_store
    steps = step_rows(tmp_path, data, store, "stored", batch_size)
    for s, rows in enumerate(steps):
        np.testing.assert_array_equal(rows, np.stack(samples[s * GLOBAL : (s + 1) * GLOBAL]))
    shuffled = step_rows(tmp_path / "shuffled", data, store, "shuffled", batch_size)
    assert not np.array_equal(shuffled[0], steps[0])  # the default reorders


def test_a_resume_with_another_order_is_refused(tmp_path, data, megatron_store):
    store, _ = megatron_store
    config = tiny_config(
        tmp_path,
        data,
        data={"sources": [{"name": "pile", "path": str(store), "order": "stored"}]},
        train={"max_steps": 2, "checkpoint_every": 1},
    )
    run(load_run_config([config]))
    config["data"]["sources"][0]["order"] = "shuffled"
    config["train"]["max_steps"] = 2
    with pytest.raises(UserError, match="stored_order"):
        run(load_run_config([config]))


def test_a_spec_source_has_no_stored_order():
    with pytest.raises(ConfigError, match="order: stored"):
        validate(
            SourceConfig,
            {"name": "s", "spec": {"domains": []}, "kind": "synthetic", "order": "stored"},
        )
