"""``data.shuffle_windows``: the windows of each pass are read in a keyed permuted order, as
Megatron's and GPT-NeoX's GPTDataset shuffle their samples, without storing the permutation."""

from __future__ import annotations

import itertools

import pytest
from train_helpers import tiny_config

from synthlm.data.window_shuffle import IndexPermutation
from synthlm.errors import ConfigError
from synthlm.train import load_run_config
from synthlm.train.planners import plan_run


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_the_permutation_is_a_bijection_fixed_by_its_key(n):
    order = [IndexPermutation(n, (3, 0, 5))(i) for i in range(n)]
    assert sorted(order) == list(range(n))
    assert order == [IndexPermutation(n, (3, 0, 5))(i) for i in range(n)]
    if n >= 7:
        assert order != list(range(n))
        assert order != [IndexPermutation(n, (3, 0, 6))(i) for i in range(n)]


def test_an_index_outside_the_range_is_an_error():
    with pytest.raises(IndexError):
        IndexPermutation(5, (1,))(5)


def windows(tmp_path, data, shuffle: bool, count: int) -> list[tuple[int, ...]]:
    config = tiny_config(
        tmp_path,
        data,
        data={"sources": [{"name": "web", "path": str(data["web"])}], "shuffle_windows": shuffle},
    )
    mixture = plan_run(load_run_config([config]), 1).mixture
    return [tuple(mixture.sample(k).input_ids.tolist()) for k in range(count)]


def windows_per_pass(tmp_path, data) -> int:
    config = tiny_config(
        tmp_path, data, data={"sources": [{"name": "web", "path": str(data["web"])}]}
    )
    source = plan_run(load_run_config([config]), 1).mixture.sources[0]
    return source.epoch_tokens // source.stride


def test_each_pass_reads_the_same_windows_in_another_order(tmp_path, data):
    per_pass = windows_per_pass(tmp_path / "p", data)
    count = 2 * per_pass + 5  # two whole blocks and the start of a third
    plain = windows(tmp_path / "a", data, False, count)
    shuffled = windows(tmp_path / "b", data, True, count)
    for block in range(2):
        part = slice(block * per_pass, (block + 1) * per_pass)
        assert sorted(shuffled[part]) == sorted(plain[part]), "the same windows, each once"
        assert shuffled[part] != plain[part]
    assert shuffled == windows(tmp_path / "c", data, True, count), "a pure function of the index"


def test_neighbouring_stretches_of_one_document_leave_the_step(tmp_path, data):
    """Unshuffled, window k + 1 continues window k's text; shuffled, almost never."""
    per_pass = windows_per_pass(tmp_path / "p", data)
    plain = windows(tmp_path / "a", data, False, per_pass)
    shuffled = windows(tmp_path / "b", data, True, per_pass)
    position = {w: i for i, w in enumerate(plain)}
    adjacent = sum(position[b] == position[a] + 1 for a, b in itertools.pairwise(shuffled))
    assert adjacent <= 3


def test_with_one_document_per_row_it_is_refused(tmp_path, data):
    config = tiny_config(tmp_path, data, data={"shuffle_windows": True, "packing": False})
    with pytest.raises(ConfigError, match="shuffle_windows"):
        load_run_config([config])
