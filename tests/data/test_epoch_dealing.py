"""Epochs dealt as PyTorch Lightning deals them (``data.epoch_batches: per_epoch``): the rows of
each step's micro-batches are the rows torch's own DistributedSampler gives each rank, batched
by a DataLoader that keeps the short last batch; an epoch ends with its own step."""

from __future__ import annotations

import itertools
import math

import pytest
from torch.utils.data import DistributedSampler

from synthlm.config import validate
from synthlm.data.epoch_dealing import DealtEpochs
from synthlm.data.mixture import DataConfig, PackedSource
from synthlm.data.store import TokenStore, write_store
from synthlm.errors import ConfigError


def lightning_batches(rows: int, ranks: int, micro: int) -> list[list[list[int]]]:
    """[rank][batch] -> positions in the epoch's order, from torch's DistributedSampler (over
    the already shuffled order: shuffle=False) and a drop_last=False batching."""
    dealt = [
        list(DistributedSampler(range(rows), num_replicas=ranks, rank=r, shuffle=False))
        for r in range(ranks)
    ]
    return [[share[i : i + micro] for i in range(0, len(share), micro)] for share in dealt]


@pytest.mark.parametrize(
    ("rows", "slots", "micro"), list(itertools.product([1, 5, 64, 65, 257], [1, 3, 8], [1, 4, 32]))
)
def test_each_micro_batch_holds_what_the_distributed_sampler_deals_its_rank(rows, slots, micro):
    dealing = DealtEpochs(rows, slots, micro)
    expected = lightning_batches(rows, slots, micro)
    assert dealing.steps == len(expected[0]) == math.ceil(math.ceil(rows / slots) / micro)
    for epoch, step, slot in itertools.product(range(2), range(dealing.steps), range(slots)):
        start = epoch * dealing.samples + (step * slots + slot) * micro
        found = [dealing.locate(start + j) for j in range(micro)]
        assert {e for e, _ in found} == {epoch}
        assert [p for _, p in found if p is not None] == expected[slot][step]
        # fillers only at the end of a slot's short last batch
        flags = [p is None for _, p in found]
        assert flags == sorted(flags)


def test_a_dealt_source_reads_the_epochs_order_and_fills_the_short_batch(tmp_path) -> None:
    lengths = [3, 5, 2, 7, 4, 6, 1]
    write_store(tmp_path / "docs", [list(range(10, 10 + n)) for n in lengths], vocab_size=64)
    source = PackedSource(
        TokenStore(tmp_path / "docs"),
        seed=1,
        source_index=0,
        seq_len=8,
        eos_id=0,
        id_offset=0,
        add_eos=True,
        packing=False,
    )
    source.dealing = DealtEpochs(len(lengths), 2, 3)  # 7 rows, 2 slots of 3: 2 steps, 12 places
    assert source.epoch_samples == 12
    for epoch in range(2):
        order = source._epoch(epoch)[0]
        for place in range(12):
            tokens, mask, _ = source.window(epoch * 12 + place)
            _, found = source.dealing.locate(epoch * 12 + place)
            if found is None:
                assert not mask.any() and (tokens == 0).all()
            else:
                doc = int(order[found])
                assert tokens[: lengths[doc]].tolist() == list(range(10, 10 + lengths[doc]))
                assert int(mask.sum()) == lengths[doc] + 1  # the document and its EOS
    # the sampler pads 7 rows to 8 with the epoch's first row: it is read twice
    firsts = [source.dealing.locate(p)[1] for p in range(12)]
    assert sorted(f for f in firsts if f is not None) == [0, 0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"packing": True}, "set data.packing: false"),
        (
            {"sources": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}]},
            "deals the rows of one source",
        ),
    ],
)
def test_per_epoch_batches_need_one_padded_source(change, message) -> None:
    base = {"sources": [{"name": "a", "path": "a"}], "packing": False, "epoch_batches": "per_epoch"}
    with pytest.raises(ConfigError, match=message):
        validate(DataConfig, {**base, **change})
    assert validate(DataConfig, base).epoch_batches == "per_epoch"


def test_per_epoch_batches_are_refused_for_objectives_that_ignore_the_loss_mask(
    tmp_path, t5_like_store
) -> None:
    """T5 span corruption trains sentinels and EOS whatever the mask says: its filler rows
    would be trained on, so the run stops before any work."""
    from synthlm.train import load_run_config
    from synthlm.train.run_plan import plan_pretrain

    config = {
        "run_dir": str(tmp_path / "run"),
        "model": {"arch": "t5", "preset": "tiny"},
        "objective": {"name": "span_corruption"},
        "data": {
            "sources": [{"name": "text", "path": str(t5_like_store["store"])}],
            "tokenizer": str(t5_like_store["tok"]),
            "seq_len": 32,
            "packing": False,
            "epoch_batches": "per_epoch",
        },
        "train": {"epochs": 1, "batch_size": 2},
    }
    with pytest.raises(ConfigError, match="epoch_batches: per_epoch .* 'span_corruption'"):
        plan_pretrain(load_run_config([config]), processes=1)


@pytest.fixture
def t5_like_store(tmp_path):
    from synthlm.tokenizers import load_tokenizer, train_tokenizer

    train_tokenizer([], "byte", None, tmp_path / "tok", quiet=True)
    tok = load_tokenizer(tmp_path / "tok")
    ids = tok.encode_batch([f"Line {i} of the text." for i in range(20)])
    write_store(tmp_path / "store", ids, vocab_size=tok.vocab_size)
    return {"tok": tmp_path / "tok", "store": tmp_path / "store"}
