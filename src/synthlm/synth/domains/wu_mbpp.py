"""Wu et al. 2022's two MBPP tasks whose outputs are printed Python dicts (felixzli/
synthetic_pretraining, ``simpler_tasks_data_gen/tasks_with_tokens.py``: ``count_common`` and
``merge_dictionaries_three`` with their samplers ``gen_mbpp_arg_words`` / ``gen_mbpp_arg_3dic``).

The original prints the Python objects and turns the text into tokens by string replacement:
``(`` becomes WORD_START, ``):`` COLON, the separator between the three dicts DIC_SEP, the ``, ``
between the words of count_common WORD_DIVIDER. synthlm writes the same token sequences with its
markers ``[`` (WORD_START: it is the tuple's opening parenthesis), ``:``, ``<sep>`` and ``<w>``:

    count_common              w1 <w> w2 <w> ...  <ans>  [ key : count  [ key : count ...
    merge_dictionaries_three  [ k : [ v [ k : [ v <sep> ... <sep> ...  <ans>  [ k : [ v ...

A count is written in decimal digit ids (the original writes the integer itself as a token id,
so a count of 1 becomes T5's end-of-sequence id; see docs/papers/wu2022.md).
"""

from __future__ import annotations

from collections import ChainMap, Counter
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import model_validator

from synthlm.synth.domain import Malformed
from synthlm.synth.domains.sampling import partition, randint, random_order_within
from synthlm.synth.domains.wu2022 import WuParams, WuTask, ref
from synthlm.synth.ragged import Ragged, concat, digits, group
from synthlm.synth.registry import register_domain


class CountCommonParams(WuParams):
    @model_validator(mode="after")
    def _reachable(self) -> CountCommonParams:
        top = self.length.max - self.length.max // 5  # Wu's max_non_comma_chars
        if self.length.min > top:
            raise ValueError(
                f"length: this task needs length.min <= length.max - length.max // 5 = {top} "
                f"(longer inputs are never drawn by Wu et al.'s sampler)"
            )
        return self


class MergeParams(WuParams):
    least_max: ClassVar[int] = 17  # three one-token entries and two separators

    @model_validator(mode="after")
    def _reachable(self) -> MergeParams:
        top = max(self.length.max * 3 // 4, 6)  # Wu's non_punctuation_chars bound
        if self.length.min > top:
            raise ValueError(
                f"length: this task needs length.min <= {top} (3/4 of length.max: longer inputs "
                f"are rarely or never drawn by Wu et al.'s sampler)"
            )
        return self


@dataclass
class Words:
    """Unique words of a batch of examples: ``tokens`` has one row per word, ``owner`` its example,
    ``occ`` how often it is repeated in the word list."""

    tokens: Ragged
    owner: np.ndarray
    occ: np.ndarray


def draw_words(task: WuTask, rng, chars: np.ndarray, count: np.ndarray, most) -> Words:
    """Wu's word lists: ``chars`` split into ``count`` nonzero parts (``_random_partition_no_zeros``);
    word ``i`` is repeated ``occ_i = randint(1, most(part_i))`` times and has ``part_i // occ_i``
    tokens drawn with replacement."""
    parts = partition(rng, chars, count, nonzero=True).values
    occ = randint(rng, np.ones(len(parts), np.int64), most(parts))
    return Words(task.tokens(rng, parts // occ), np.repeat(np.arange(len(count)), count), occ)


def word_ids(words: Ragged, owner: np.ndarray) -> np.ndarray:
    """Per word, an id shared exactly by the words of the same example with the same tokens (Python
    compares the tuples by value, so equal random words are one key). Words are grouped by a 64-bit
    polynomial hash and every grouped word is then compared token by token with its group's
    first word; should two different words ever share a hash, an exact row sort decides instead."""
    if not len(words) or not words.lengths.min():
        return _word_ids_exact(words, owner)
    powers = np.cumprod(np.full(int(words.lengths.max()) + 2, 0x9E3779B97F4A7C15, np.uint64))
    terms = (words.values.astype(np.uint64) + np.uint64(1)) * powers[words.positions + 2]
    hashes = np.add.reduceat(terms, words.starts)
    hashes += owner.astype(np.uint64) * powers[0] + words.lengths.astype(np.uint64) * powers[1]
    order = np.argsort(hashes)
    ranked = hashes[order]
    new = np.r_[True, ranked[1:] != ranked[:-1]]
    group_of = np.cumsum(new) - 1
    ids = np.empty(len(words), np.int64)
    ids[order] = group_of
    first = order[np.flatnonzero(new)][group_of]  # each word's group representative
    dup = np.flatnonzero(first != order)
    a, b = order[dup], first[dup]
    if len(dup) and not (
        np.array_equal(owner[a], owner[b])
        and np.array_equal(words.lengths[a], words.lengths[b])
        and np.array_equal(words.take(a).values, words.take(b).values)
    ):
        return _word_ids_exact(words, owner)
    return ids


def _word_ids_exact(words: Ragged, owner: np.ndarray) -> np.ndarray:
    if not len(words):
        return np.zeros(0, np.int64)
    table = np.full((len(words), int(words.lengths.max()) + 2), -1, np.int64)
    table[:, 0], table[:, 1] = owner, words.lengths
    table[words.seq_ids, words.positions + 2] = words.values
    return np.unique(table, axis=0, return_inverse=True)[1].reshape(-1)


def entries(task: WuTask, lead: np.ndarray, keys: Ragged, values: Ragged, wrap: bool) -> Ragged:
    """``[ key : [ value`` per entry (``[ key : value`` when ``wrap`` is false), after an optional
    ``<sep>`` where ``lead`` is true."""
    ones = np.ones(len(keys), dtype=bool)
    parts = [Ragged.constant(task.mark("sep"), lead)] if lead.any() else []
    parts += [Ragged.constant(task.mark("lbracket"), ones), keys]
    parts += [Ragged.constant(task.mark("colon"), ones)]
    parts += [Ragged.constant(task.mark("lbracket"), ones)] if wrap else []
    return concat([*parts, values])


def accept(rng, n: int, candidates, low: int, high: int) -> tuple[Ragged, Ragged]:
    """Wu's rejection loop on whole examples: candidates are drawn in batches and the first ``n``
    whose input length lies in ``[low, high]`` are kept, in order. Each batch is sized by the
    acceptance rate seen so far, so little is drawn in vain; ``candidates`` returns the input
    lengths and a function that writes the inputs and outputs of the kept ones only."""
    xs, ys, have, drawn = [], [], 0, 0
    while have < n:
        rate = max(have / drawn, 0.02) if drawn else 1.0
        count = int((n - have) / rate * 1.1) + 16
        sizes, build = candidates(rng, count)
        index = np.flatnonzero((sizes >= low) & (sizes <= high))[: n - have]
        drawn += count
        if len(index):
            x, y = build(index)
            xs.append(x)
            ys.append(y)
            have += len(index)
    return _cat(xs), _cat(ys)


def _cat(parts: list[Ragged]) -> Ragged:
    if not parts:
        return Ragged(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Ragged(
        np.concatenate([p.values for p in parts]), np.concatenate([p.lengths for p in parts])
    )


def _subset(owner: np.ndarray, index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Items of the examples ``index`` (sorted) of ``n``: their mask and their new example ids."""
    keep = np.zeros(n, dtype=bool)
    keep[index] = True
    mask = keep[owner]
    return mask, (np.cumsum(keep) - 1)[owner[mask]]


def _sort(keys: np.ndarray) -> np.ndarray:
    """``np.lexsort`` of several small int keys, packed into one int64 key (one sort)."""
    return np.argsort(keys, kind="stable")


def _rank(owner: np.ndarray) -> np.ndarray:
    """Position of each item among the items of its example (``owner`` sorted)."""
    return np.arange(len(owner)) - np.searchsorted(owner, owner)


@register_domain(
    "wu_count_common",
    family="wu2022",
    reference=ref("gen_mbpp_arg_words, count_common"),
    description="MBPP task: the four most common words and their counts, as the printed dict.",
)
class WuCountCommon(WuTask):
    Params = CountCommonParams
    binary = False
    markers = ("answer", "word", "colon", "lbracket")
    uses_digits = True

    def examples(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        x, y = accept(rng, n, self._candidates, low, high)
        return x, None, y

    def _candidates(self, rng, count):
        high = self.params.length.max
        chars = randint(rng, np.ones(count, np.int64), np.full(count, high - high // 5))
        unique = randint(rng, np.ones(count, np.int64), np.maximum(chars // 3, 1))
        words = draw_words(self, rng, chars, unique, lambda p: np.maximum(p // 5, 1))
        every = np.repeat(np.arange(len(words.occ)), words.occ)  # the word list, unshuffled
        owner = words.owner[every]
        every = every[random_order_within(owner, rng.random(len(every)))]  # random.shuffle
        sizes = np.bincount(owner, weights=words.tokens.lengths[every] + 1, minlength=count) - 1

        def build(index):
            mask, kept = _subset(owner, index, count)
            return (
                self._input(words, every[mask], kept, len(index)),
                self._output(words, every[mask], kept, len(index)),
            )

        return sizes.astype(np.int64), build

    def _input(self, words: Words, every: np.ndarray, owner: np.ndarray, n: int) -> Ragged:
        last = np.r_[owner[1:] != owner[:-1], True]
        joined = concat([words.tokens.take(every), Ragged.constant(self.mark("word"), ~last)])
        return group(joined, np.bincount(owner, minlength=n))

    def _output(self, words: Words, every: np.ndarray, owner: np.ndarray, n: int) -> Ragged:
        """``dict(Counter(words).most_common(4))``: counts by value, ties in first-seen order."""
        key = word_ids(words.tokens, words.owner)[every]
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        example = owner[first]
        order = np.lexsort((first, -counts, example))
        order = order[_rank(example[order]) < 4]
        rows = entries(
            self,
            np.zeros(len(order), bool),
            words.tokens.take(every[first[order]]),
            digits(counts[order], self.layout.digit(0)),
            wrap=False,
        )
        return group(rows, np.bincount(example[order], minlength=n))

    def solve(self, prompt):
        x = np.asarray(prompt, dtype=np.int64)
        words = [tuple(self.as_content(w, "word").tolist()) for w in self.split_on(x, "word")]
        if not self.params.length.contains(len(x)):
            raise Malformed(f"input of {len(x)} tokens outside length {self.params.length}")
        out = []
        for word, count in Counter(words).most_common(4):
            out += [self.mark("lbracket"), *word, self.mark("colon")]
            out += self.number_tokens(count).tolist()
        return np.asarray(out, dtype=np.int64)


@register_domain(
    "wu_merge_dictionaries_three",
    family="wu2022",
    reference=ref("gen_mbpp_arg_3dic, merge_dictionaries_three"),
    description="MBPP task: dict(ChainMap({}, d1, d2, d3)) of three printed word-to-word dicts.",
)
class WuMergeDictionariesThree(WuTask):
    Params = MergeParams
    binary = False
    markers = ("answer", "sep", "colon", "lbracket")

    def examples(self, rng, n):
        low, high = self.params.length.min, self.params.length.max
        x, y = accept(rng, n, self._candidates, low, high)
        return x, None, y

    def _candidates(self, rng, count):
        """``gen_mbpp_arg_3dic``: the word list (unshuffled) is cut in half into keys and shuffled
        values; dict ``j`` first gets ``keys[j] -> values[-1 - j]``, then every ``keys[t] ->
        values[t]`` goes to a random dict; the three dicts are shuffled."""
        top = max(self.params.length.max * 3 // 4, 6)
        chars = randint(rng, np.full(count, 6), np.full(count, top))
        unique = randint(rng, np.full(count, 6), np.maximum(chars // 3, 6))
        words = draw_words(self, rng, chars, unique, lambda p: p)
        every = np.repeat(np.arange(len(words.occ)), words.occ)
        owner = words.owner[every]
        half = np.bincount(owner, minlength=count) // 2  # an odd last word is dropped
        rank = _rank(owner)
        keys = every[rank < half[owner]]
        in_values = (rank >= half[owner]) & (rank < 2 * half[owner])
        value_owner = owner[in_values]
        values = every[in_values][random_order_within(value_owner, rng.random(len(value_owner)))]
        # assignments in order: the three seeds, then one per key
        k_start = np.r_[0, np.cumsum(half)[:-1]]
        seed_owner = np.repeat(np.arange(count), 3)
        seed_slot = np.tile(np.arange(3), count)
        a_owner = np.r_[seed_owner, np.repeat(np.arange(count), half)]
        a_time = np.r_[seed_slot, 3 + _rank(np.repeat(np.arange(count), half))]
        a_dict = np.r_[seed_slot, randint(rng, np.zeros(len(keys), np.int64), 2)]
        a_key = np.r_[keys[k_start[seed_owner] + seed_slot], keys]
        a_value = np.r_[values[k_start[seed_owner] + half[seed_owner] - 1 - seed_slot], values]
        perm = random_order_within(seed_owner, rng.random(3 * count)) - 3 * seed_owner
        position = np.empty(3 * count, np.int64)  # position[3 e + j]: where dict j lands
        position[3 * seed_owner + perm] = seed_slot
        gid = word_ids(words.tokens, words.owner)
        table, span_t = _entries(gid, a_owner, a_time, a_dict, a_key, a_value, position)
        size = 3 + words.tokens.lengths[table["key"]] + words.tokens.lengths[table["value"]]
        sizes = np.bincount(table["owner"], weights=size, minlength=count) + 2  # two <sep>

        def build(index):
            mask, kept = _subset(table["owner"], index, count)
            chosen = {name: column[mask] for name, column in table.items()}
            return self._dicts(words, {**chosen, "owner": kept}, len(index), span_t)

        return sizes.astype(np.int64), build

    def _dicts(self, words: Words, table: dict, n: int, span_t: int) -> tuple[Ragged, Ragged]:
        """The printed dicts (d1, d2, d3, each in insertion order) and their ChainMap merge."""
        e_owner, e_g, e_first = table["owner"], table["g"], table["first"]
        e_key, e_value, e_pos = table["key"], table["value"], table["pos"]
        span_g = int(e_g.max()) + 1 if len(e_g) else 1
        shown = _sort((e_owner * 3 + e_pos) * span_t + e_first)  # d1, d2, d3, insertion order
        head = np.r_[True, (e_owner[shown][1:] != e_owner[shown][:-1])]
        head |= np.r_[True, e_pos[shown][1:] != e_pos[shown][:-1]]
        x = entries(
            self,
            head & (e_pos[shown] > 0),
            words.tokens.take(e_key[shown]),
            words.tokens.take(e_value[shown]),
            wrap=True,
        )
        x = group(x, np.bincount(e_owner, minlength=n))
        # merge: the value of the first dict (d1, d2, d3) holding the key; keys in the order met
        # when reading d3, then d2, then d1 (ChainMap's iteration)
        by_key = _sort((e_owner * span_g + e_g) * 3 + e_pos)
        k_start = np.flatnonzero(np.r_[True, np.diff(e_g[by_key]) != 0])
        met = (2 - e_pos[by_key]) * span_t + e_first[by_key]
        first_met = np.minimum.reduceat(met, k_start)
        pick = by_key[k_start]
        merged = _sort(e_owner[pick] * (3 * span_t) + first_met)
        pick = pick[merged]
        y = entries(
            self,
            np.zeros(len(pick), bool),
            words.tokens.take(e_key[pick]),
            words.tokens.take(e_value[pick]),
            wrap=True,
        )
        return x, group(y, np.bincount(e_owner[pick], minlength=n))

    def solve(self, prompt):
        x = np.asarray(prompt, dtype=np.int64)
        if not self.params.length.contains(len(x)):
            raise Malformed(f"input of {len(x)} tokens outside length {self.params.length}")
        dicts = [self._parse(part) for part in self.split_on(x, "sep")]
        if len(dicts) != 3:
            raise Malformed("expected three dicts separated by <sep>")
        out = []
        for k, v in dict(ChainMap({}, *dicts)).items():
            out += [self.mark("lbracket"), *k, self.mark("colon"), self.mark("lbracket"), *v]
        return np.asarray(out, dtype=np.int64)

    def _parse(self, tokens: np.ndarray) -> dict[tuple[int, ...], tuple[int, ...]]:
        """``[ k : [ v [ k : [ v ...`` back into a dict (keys unique, as printed by Python)."""
        items = self.split_on(tokens, "lbracket")
        if len(items) < 3 or len(items[0]) or len(items) % 2 == 0:
            raise Malformed("a dict is [ key : [ value entries")
        table = {}
        for k, v in zip(items[1::2], items[2::2]):
            if len(k) < 2 or k[-1] != self.mark("colon"):
                raise Malformed("a key is word tokens followed by ':'")
            key = tuple(self.as_content(k[:-1], "key").tolist())
            if key in table:
                raise Malformed("a printed dict repeats a key")
            table[key] = tuple(self.as_content(v, "value").tolist())
        return table


def _entries(gid, owner, time, slot, key, value, position) -> tuple[dict, int]:
    """The dict entries left by the assignments ``dicts[slot][key] = value`` in ``time`` order: a
    key keeps the place where it was first set in its dict and its last value. Columns: owner, g
    (key id), first (time of the first set), key and value (word rows), pos (the dict's place
    after the shuffle); and the bound on times."""
    g = gid[key]
    span_g, span_t = int(g.max()) + 1, int(time.max()) + 1
    order = _sort(((owner * 3 + slot) * span_g + g) * span_t + time)
    owner, time, slot, g, key, value = (a[order] for a in (owner, time, slot, g, key, value))
    start = np.r_[True, (owner[1:] != owner[:-1]) | (slot[1:] != slot[:-1]) | (g[1:] != g[:-1])]
    end = np.r_[start[1:], True]
    table = {
        "owner": owner[start],
        "g": g[start],
        "first": time[start],
        "key": key[start],
        "value": value[end],
        "pos": position[3 * owner[start] + slot[start]],
    }
    return table, span_t
