"""Paper-named domains against small re-implementations of each paper's definition, written
here from the original code (never by calling synthlm's ``verify``/``solve``):

* Wu et al. 2022, felixzli/synthetic_pretraining simpler_tasks_data_gen/tasks_with_tokens.py
* TILT, toizzy/tilt-transfer corpora/constructed_corpora/{hierarchical,flat}_parens.py
* Hu et al. 2025, michahu/pre-pretraining src/grammar.py (generate_shuff_dyck)
* Seqthetic, isen-zhang/metalang synthetic_data/seqthetic/domains/*.py

Each test draws sequences for several seeds and checks every one (property tests over seeds).
"""

from __future__ import annotations

import heapq
from collections import Counter, deque

import numpy as np
import pytest

from synthlm.synth.generation_plan import bind_domains
from synthlm.synth.rng import generator
from synthlm.synth.spec import load_spec

SEEDS = (0, 1, 2**40 + 7)
LOW, HIGH = 6, 30


def domain_for(kind: str, **params):
    spec = load_spec(
        {"num_tokens": 1000, "seed": 0, "promoter_length": 1, "domains": [{"type": kind, **params}]}
    )
    return bind_domains(spec, 0)[1][0]


def samples(kind: str, count: int = 150, defaults: bool = True, **params):
    """(domain, body) per generated sequence, the promoter removed."""
    if defaults:
        params.setdefault("length", {"min": LOW, "max": HIGH})
        params.setdefault("vocab", {"num_vocab": 40})
    domain = domain_for(kind, **params)
    out = []
    for seed in SEEDS:
        batch = domain.generate(generator(seed, 5), count)
        offsets = np.r_[0, np.cumsum(batch.sizes)]
        for i in range(len(batch.sizes)):
            out.append(batch.tokens[offsets[i] : offsets[i + 1]][len(domain.promoter) :].tolist())
    return domain, out


def cut(domain, body: list[int]) -> tuple[list[int], list[int] | None, list[int]]:
    """``seq [<sep> query] <ans> output`` -> (seq, query or None, output with <empty> as [])."""
    markers = domain.layout.markers
    at = body.index(markers["answer"])
    prompt, answer = body[:at], body[at + 1 :]
    if answer == [markers.get("empty")]:
        answer = []
    for name in ("sep", "query"):
        if name in markers and markers[name] in prompt:
            k = prompt.index(markers[name])
            return prompt[:k], prompt[k + 1 :], answer
    return prompt, None, answer


def number(domain, tokens: list[int]) -> int:
    text = "".join(
        "-" if t == domain.layout.markers.get("minus") else str(t - domain.layout.digits_start)
        for t in tokens
    )
    return int(text)


# -- Wu et al. 2022: the functions of tasks_with_tokens.py, restated --------------------------
def wu_index(seq, query):
    for i in range(len(seq) - len(query) + 1):
        if seq[i : i + len(query)] == query:
            return i
    return -1


def wu_delete(seq, query):
    i = wu_index(seq, query)
    return seq if i == -1 else seq[:i] + seq[i + len(query) :]


def wu_filter(seq, query):
    once = wu_delete(seq, query)
    return seq if once == seq else wu_filter(once, query)


def wu_replace_many(seq, query):
    table = {query[i]: query[i + 1] for i in range(0, len(query), 2)}
    return [table.get(c, c) for c in seq]


def wu_dedup(seq):
    out = []
    for c in seq:
        if not out or out[-1] != c:
            out.append(c)
    return out


def wu_set(seq):
    out = []
    for c in seq:
        if c not in out:
            out.append(c)
    return out


def wu_rearrange(seq):
    heap = [(-n, c) for c, n in Counter(seq).items()]
    heapq.heapify(heap)
    if -heap[0][0] * 2 > len(seq) + 1:
        return []
    out = []
    while len(heap) >= 2:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        out += [a[1], b[1]]
        for n, c in (a, b):
            if n + 1:
                heapq.heappush(heap, (n + 1, c))
    return out + ([heap[0][1]] if heap else [])


def wu_remove_fl(seq, c):
    for i in range(len(seq)):
        if seq[i] == c:
            seq = seq[:i] + seq[i + 1 :]
            break
    for i in range(len(seq) - 1, -1, -1):
        if seq[i] == c:
            seq = seq[:i] + seq[i + 1 :]
            break
    return seq


def within(seq, query):
    size = len(seq) + (1 + len(query) if query is not None else 0)
    return LOW <= size <= HIGH


@pytest.mark.parametrize("kind", ["wu_delete", "wu_filter", "wu_get_index", "wu_search"])
def test_wu_query_tasks(kind):
    domain, bodies = samples(kind)
    present = 0
    for body in bodies:
        seq, query, answer = cut(domain, body)
        assert within(seq, query) and query, (
            "Wu's rejection loop keeps len(seq) + 1 + len(query) in length_range"
        )
        found = wu_index(seq, query)
        present += found >= 0
        if kind == "wu_delete":
            assert answer == wu_delete(seq, query)
        elif kind == "wu_filter":
            assert answer == wu_filter(seq, query)
        elif kind == "wu_get_index":
            assert number(domain, answer) == found
        else:
            assert answer == [domain.layout.markers["yes" if found >= 0 else "no"]]
    assert 0.3 < present / len(bodies) < 0.97  # both branches of the sampler occur


def test_wu_sort_orders_by_the_query_permutation():
    domain, bodies = samples("wu_sort")
    for body in bodies:
        seq, order, answer = cut(domain, body)
        rank = {
            c: i for i, c in enumerate(order)
        }  # Wu's char_order_dic: a repeated id keeps its last index
        assert answer == sorted(seq, key=lambda c: rank[c])
        assert LOW // 2 <= len(order) <= (HIGH - 1) // 2 and len(order) <= len(
            seq
        ) <= HIGH - 1 - len(order)


@pytest.mark.parametrize("kind", ["wu_replace", "wu_replace_many"])
def test_wu_replace_takes_keys_from_the_input(kind):
    domain, bodies = samples(kind)
    for body in bodies:
        seq, query, answer = cut(domain, body)
        keys = query[0::2]
        assert set(keys) <= set(seq) and len(set(keys)) == len(keys)
        assert len(keys) == 1 if kind == "wu_replace" else 2 <= len(keys) <= (HIGH - 1) // 3
        assert answer == wu_replace_many(seq, query) and within(seq, query)


def test_wu_count_and_unary_tasks():
    domain, bodies = samples("wu_count")
    for body in bodies:
        seq, query, answer = cut(domain, body)
        assert (
            len(query) == 1 and number(domain, answer) == seq.count(query[0]) and within(seq, query)
        )
    for kind, reference in (
        ("wu_deduplicate", wu_dedup),
        ("wu_set", wu_set),
        ("wu_rearrange_string", wu_rearrange),
    ):
        domain, bodies = samples(kind)
        for body in bodies:
            seq, _, answer = cut(domain, body)
            assert answer == reference(seq) and LOW <= len(seq) <= HIGH


def test_wu_longest_word_set_ops_and_remove_fl_occ():
    domain, bodies = samples("wu_longest_word")
    w = domain.layout.markers["word"]
    for body in bodies:
        seq, _, answer = cut(domain, body)
        words = " ".join(map(str, seq)).split(f" {w} ") if seq else []
        words = [[int(t) for t in word.split()] for word in words]
        assert (
            answer == max(words, key=len) and LOW <= len(seq) <= HIGH
        )  # max keeps the first longest
    for kind, op in (
        ("wu_union", set.union),
        ("wu_intersect", set.intersection),
        ("wu_set_1_minus_2", lambda a, b: a - b),
        ("wu_set_2_minus_1", lambda a, b: b - a),
    ):
        domain, bodies = samples(kind)
        for body in bodies:
            one, two, answer = cut(domain, body)
            assert answer == sorted(op(set(one), set(two))) and within(one, two)
    domain, bodies = samples("wu_remove_fl_occ")
    for body in bodies:
        seq, query, answer = cut(domain, body)
        assert query[0] in seq and answer == wu_remove_fl(seq, query[0])


def test_wu_filter_and_rearrange_on_small_alphabets():
    """Deletions that create new occurrences (``a a b b`` less ``a b``) and heaps full of ties:
    the batched outputs against the restated functions, on inputs drawn here."""
    from synthlm.synth.ragged import Ragged

    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 3, rng.integers(1, 25)).tolist() for _ in range(400)]
    queries = [rng.integers(0, 2, rng.integers(1, 4)).tolist() for _ in range(400)]
    got = domain_for("wu_filter").outputs(Ragged.from_list(seqs), Ragged.from_list(queries))
    assert got.tolist() == [wu_filter(s, q) for s, q in zip(seqs, queries)]
    got = domain_for("wu_rearrange_string").outputs(Ragged.from_list(seqs), None)
    assert got.tolist() == [wu_rearrange(s) for s in seqs]


# Wu's MBPP dict tasks: the original prints Python objects and replaces text (dict order kept,
# including its duplicate '(' key, whose value is the later one at the earlier position).
WU_DICT_TEXT = {
    "{": "",
    "}": "",
    "(": "WORD_START ",
    ",):": " COLON ",
    "):": " COLON ",
    ")": "",
    ",": "",
    "  ": " ",
    "   ": " ",
}
WU_WORDS_TEXT = {
    "(": "",
    "),": " WORD_DIVIDER",
    ")": "",
    "  ": " ",
    "   ": " ",
    ",": "",
    "[": "",
    "]": "",
}


def split_list(tokens, marker):
    out = [[]]
    for t in tokens:
        out.append([]) if t == marker else out[-1].append(t)
    return out


def wu_text_tokens(text, table, names):
    for old, new in table.items():
        text = text.replace(old, new)
    return [names.get(t, t) for t in text.split(" ")]


def wu_sample_words(vocab, most, rng, chars_low, chars_high, unique_low):
    """``random`` draws as in the original; the multinomial from numpy, as there."""
    chars = rng.randint(chars_low, chars_high)
    unique = rng.randint(unique_low, max(chars // 3, unique_low))
    parts = np.random.default_rng(rng.getrandbits(32)).multinomial(
        chars - unique, [1 / unique] * unique
    )
    words = []
    for part in (parts + 1).tolist():
        occ = rng.randint(1, most(part))
        words += [tuple(rng.choices(range(vocab), k=part // occ))] * occ
    return words


def test_wu_count_common_and_merge_dictionaries_three():
    import random
    from collections import ChainMap

    domain, bodies = samples("wu_count_common")
    m = domain.layout.markers
    names = {"WORD_START": m["lbracket"], "COLON": m["colon"], "WORD_DIVIDER": m["word"]}
    ours = []
    for body in bodies:
        seq, _, answer = cut(domain, body)
        words = [tuple(w) for w in split_list(seq, m["word"])]
        assert [int(t) for t in wu_text_tokens(str(words), WU_WORDS_TEXT, names)] == seq
        top = dict(Counter(words).most_common(4))  # counts are written as decimal digits
        expected = wu_text_tokens(str({k: f"N{v}" for k, v in top.items()}), WU_DICT_TEXT, names)
        expected = [
            d
            for t in expected
            for d in (
                [domain.layout.digits_start + int(c) for c in t[2:-1]]
                if isinstance(t, str) and t.startswith("'N")
                else [int(t)]
            )
        ]
        assert answer == expected and LOW <= len(seq) <= HIGH
        ours.append((len(seq), len(words), len(top)))
    rng, theirs = random.Random(0), []
    while len(theirs) < 3000:  # gen_mbpp_arg_words with its rejection loop
        words = wu_sample_words(40, lambda p: max(p // 5, 1), rng, 1, HIGH - HIGH // 5, 1)
        size = sum(map(len, words)) + len(words) - 1
        if LOW <= size <= HIGH:
            theirs.append((size, len(words), len(Counter(words).most_common(4))))
    for a, b in zip(np.mean(ours, axis=0), np.mean(theirs, axis=0)):
        assert abs(a - b) < 0.06 * b + 0.05

    domain, bodies = samples("wu_merge_dictionaries_three")
    m = domain.layout.markers
    names = {"WORD_START": m["lbracket"], "COLON": m["colon"], "DIC_SEP": m["sep"]}
    ours = []
    for body in bodies:
        first, rest, answer = cut(domain, body)
        seq = [*first, m["sep"], *rest]  # cut() splits at the first <sep>
        dicts = []
        for part in split_list(seq, m["sep"]):
            items = split_list(part, m["lbracket"])[1:]
            dicts.append({tuple(k[:-1]): tuple(v) for k, v in zip(items[0::2], items[1::2])})
        text = " DIC_SEP ".join(map(str, dicts))
        assert [int(t) for t in wu_text_tokens(text, WU_DICT_TEXT, names)] == seq
        merged = dict(ChainMap({}, *dicts))
        assert answer == [int(t) for t in wu_text_tokens(str(merged), WU_DICT_TEXT, names)]
        assert len(dicts) == 3 and all(dicts) and LOW <= len(seq) <= HIGH
        ours.append((len(seq), len(merged), sum(map(len, dicts))))
    rng, theirs = random.Random(1), []
    while len(theirs) < 3000:  # gen_mbpp_arg_3dic with its rejection loop
        words = wu_sample_words(40, lambda p: p, rng, 6, max(HIGH * 3 // 4, 6), 6)
        words = words[: len(words) - len(words) % 2]
        keys, values = words[: len(words) // 2], words[len(words) // 2 :]
        rng.shuffle(values)
        dicts = [{keys[j]: values[-1 - j]} for j in range(3)]
        for k, v in zip(keys, values):
            dicts[rng.randint(0, 2)][k] = v
        rng.shuffle(dicts)
        size = len(wu_text_tokens(" DIC_SEP ".join(map(str, dicts)), WU_DICT_TEXT, names))
        if LOW <= size <= HIGH:
            merged = dict(ChainMap({}, *dicts))
            theirs.append((size, len(merged), sum(map(len, dicts))))
    for a, b in zip(np.mean(ours, axis=0), np.mean(theirs, axis=0)):
        assert abs(a - b) < 0.06 * b + 0.05


# -- TILT ----------------------------------------------------------------------------------------
def tilt_hierarchical(opens, samples_):
    """hierarchical_parens.py's loop on given draws."""
    stack, data = deque(), []
    for decision, sample in zip(opens, samples_):
        if decision or not stack:
            data.append(sample)
            stack.append(sample)
        else:
            data.append(stack.pop())
    return data


def tilt_flat(words, distance):
    """flat_parens.py's loop on given draws."""
    data = [-1] * len(words)
    for i in range(len(data)):
        if data[i] >= 0:
            continue
        data[i] = words[i]
        close = i + distance[i]
        if close >= len(data):
            continue
        if data[close] < 0:
            data[close] = words[i]
            continue
        step = 1
        while True:
            if data[close - step] < 0:
                data[close - step] = words[i]
                break
            if close + step < len(data) and data[close + step] < 0:
                data[close + step] = words[i]
                break
            step += 1
    return data


@pytest.mark.parametrize("seed", SEEDS)
def test_tilt_streams_match_the_original_loops_on_the_same_draws(seed):
    nested = domain_for("tilt_nested_parens", vocab={"num_vocab": 50}, length=64)
    total = 4000
    got = nested.stream(generator(seed, 1), total).tolist()
    rng = generator(seed, 1)
    opens, words = rng.random(total) < 0.5, rng.integers(0, 50, size=total)
    assert got == tilt_hierarchical(opens.tolist(), words.tolist())
    table = {1: 6.0, 2: 3.0, 3: 2.0, 5: 1.0, 9: 1.0}
    flat = domain_for("tilt_flat_parens", vocab={"num_vocab": 50}, length=64, dep_lengths=table)
    got = flat.stream(generator(seed, 2), total).tolist()
    rng = generator(seed, 2)
    words = rng.integers(0, 50, size=total)
    p = np.array(list(table.values())) / sum(table.values())
    distance = np.array(list(table))[np.searchsorted(np.cumsum(p), rng.random(total), side="right")]
    assert got == tilt_flat(words.tolist(), distance.tolist())


def test_tilt_documents_are_consecutive_chunks_and_budget_is_exact(tmp_path):
    from synthlm.synth.build import build_dataset

    spec = load_spec(
        {
            "num_tokens": 5003,
            "seed": 1,
            "splits": {"train": 1.0, "valid": 0.0, "test": 0.0},
            "domains": [{"type": "tilt_nested_parens", "length": 100}],
        }
    )
    manifest = build_dataset(spec, tmp_path / "d", quiet=True)
    assert manifest["num_tokens"] == 5003  # streams may cut their last document
    assert manifest["splits"]["valid"]["absent"] and not (tmp_path / "d" / "valid.bin").exists()


# -- Hu et al. 2025 --------------------------------------------------------------------------------
def test_hu_shuffle_dyck_follows_the_rules_and_closes_a_uniform_open_type():
    k, depth_cap = 4, 6
    _domain, bodies = samples(
        "hu_shuffle_dyck",
        count=40,
        defaults=False,
        k=k,
        length=300,
        max_depth=depth_cap,
        p_open=0.5,
    )
    hits, expected = 0.0, 0.0
    for body in bodies:
        assert len(body) == 300
        counts = [0] * k
        for token in body:
            depth = sum(counts)
            if depth == 0:
                assert token < k, "must open at depth 0"
            if depth >= depth_cap:
                assert token >= k, "must close at max_depth"
            if token >= k:
                assert counts[token - k] > 0
                open_types = [t for t in range(k) if counts[t]]
                top = max(counts)
                if (
                    len(set(counts[t] for t in open_types)) > 1
                ):  # counts differ: the two rules disagree
                    hits += counts[token - k] == top
                    expected += sum(counts[t] == top for t in open_types) / len(open_types)
                counts[token - k] -= 1
            else:
                counts[token] += 1
    events = expected  # compare the empirical share with Hu's rule (uniform over open types)
    assert events > 200 and abs(hits - expected) / events < 0.12


# -- LIME ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["deduct", "abduct", "induct"])
def test_lime_roles_are_drawn_per_example_and_announced(mode):
    domain, bodies = samples(
        f"lime_{mode}",
        count=60,
        defaults=False,
        num_vocab=300,
        num_upper=6,
        num_lower=5,
        num_math=4,
        num_chars={"min": 2, "max": 4},
        pattern_length={"min": 3, "max": 8},
    )
    m = domain.layout.markers
    headers = set()
    for body in bodies:
        at = body.index(m["answer"])
        prompt, answer = body[:at], body[at + 1 :]
        upper = prompt[1 : prompt.index(m["lower"])]
        lower = prompt[prompt.index(m["lower"]) + 1 : prompt.index(m["math"])]
        math = prompt[prompt.index(m["math"]) + 1 : prompt.index(m["sep"])]
        assert (
            len(lower) == 5 and len(math) == 4 and 1 <= len(upper) <= 4 and upper == sorted(upper)
        )
        assert len(set(upper + lower + math)) == len(upper + lower + math)
        headers.add(tuple(lower))
        rest = prompt[prompt.index(m["sep"]) + 1 :]
        first, second = rest[: rest.index(m["sep"])], rest[rest.index(m["sep"]) + 1 :]
        pattern, subst, result = {
            "deduct": (first, second, answer),
            "abduct": (first, answer, second),
            "induct": (answer, second, first),
        }[mode]
        table, i = {}, 0  # "V : [ s1 .. sk ]" entries, the original's commas removed
        while i < len(subst):
            assert subst[i + 1] == m["colon"] and subst[i + 2] == m["lbracket"]
            end = subst.index(m["rbracket"], i)
            table[subst[i]] = subst[i + 3 : end]
            assert 2 <= len(table[subst[i]]) <= 8 and set(table[subst[i]]) <= set(lower + math)
            i = end + 1
        assert list(table) == upper and set(upper) <= set(pattern) <= set(upper + math)
        assert (
            2 * len(upper) <= sum(c in upper for c in pattern) <= 8
            and 3 <= sum(c in math for c in pattern) <= 8
        )
        assert result == [t for c in pattern for t in table.get(c, [c])]  # SubstRule.subst
    assert len(headers) > len(bodies) // 2  # roles change from example to example


def lime_reference(r, upper, lower, math, chars_range, pattern_range):
    """One example as LIME's ``gen_one_lime_data`` draws it (random.Random, one at a time):
    the rule, the used variables and the substitution table."""
    chars = upper[: r.randint(*chars_range)]
    drawn = r.choices(chars, k=2 * len(chars))
    pattern = drawn + r.choices(math, k=r.randint(*pattern_range))
    r.shuffle(pattern)
    table = {v: r.choices(lower + math, k=r.randint(2, 8)) for v in set(drawn)}
    return pattern, table


@pytest.mark.parametrize("mode", ["deduct", "induct"])
def test_lime_draws_match_the_original_distribution(mode):
    """Summary statistics of the vectorised draw against the original one-example-at-a-time
    draw: variables used, rule length, variables in the rule, substitution lengths and where
    the variables sit in the shuffled rule."""
    import random

    params = dict(num_upper=6, num_lower=5, num_math=4)
    ranges = ((2, 4), (3, 8))
    domain, bodies = samples(
        f"lime_{mode}",
        count=400,
        defaults=False,
        num_vocab=300,
        num_chars={"min": 2, "max": 4},
        pattern_length={"min": 3, "max": 8},
        **params,
    )
    m = domain.layout.markers

    def stats(pattern, table, variables):
        return (
            len(table),
            len(pattern),
            sum(c in variables for c in pattern),
            sum(len(v) for v in table.values()) / len(table),
            pattern[0] in variables,
            pattern[-1] in variables,
        )

    ours = []
    for body in bodies:
        at = body.index(m["answer"])
        prompt, answer = body[:at], body[at + 1 :]
        upper = prompt[1 : prompt.index(m["lower"])]
        rest = prompt[prompt.index(m["sep"]) + 1 :]
        first, second = rest[: rest.index(m["sep"])], rest[rest.index(m["sep"]) + 1 :]
        pattern, subst = (first, second) if mode == "deduct" else (answer, second)
        table, i = {}, 0
        while i < len(subst):
            end = subst.index(m["rbracket"], i)
            table[subst[i]] = subst[i + 3 : end]
            i = end + 1
        ours.append(stats(pattern, table, set(upper)))
    r, ref = random.Random(3), []
    for _ in range(20_000):
        ids = r.sample(range(300), 15)
        upper, lower, math = ids[:6], ids[6:11], ids[11:]
        pattern, table = lime_reference(r, upper, lower, math, *ranges)
        ref.append(stats(pattern, table, set(upper)))
    ours_mean, ref_mean = np.mean(ours, axis=0), np.mean(ref, axis=0)
    ref_sd = np.std(ref, axis=0)
    assert np.all(np.abs(ours_mean - ref_mean) < 4 * ref_sd / np.sqrt(len(ours)) + 1e-9), (
        ours_mean,
        ref_mean,
    )


# -- Seqthetic ---------------------------------------------------------------------------------------
SEQ = {"vocab": {"num_vocab": 500}, "length": {"min": 20, "max": 80}}


def test_seqthetic_identity_duplicate_deduplicate():
    for reverse in (False, True):
        domain, bodies = samples("seqthetic_identity", reverse=reverse, **SEQ)
        for body in bodies:
            seq, _, answer = cut(domain, body)
            assert len(set(seq)) == len(seq) and 20 <= len(seq) <= 80  # without replacement
            assert answer == (seq[::-1] if reverse else seq)
    domain, bodies = samples("seqthetic_duplicate", num_duplicate=3, **SEQ)
    for body in bodies:
        seq, _, answer = cut(domain, body)
        assert answer == [c for c in seq for _ in range(3)] and len(set(seq)) == len(seq)
        assert any(len(seq) == (n - 1) // 4 for n in range(20, 81))  # int((L - 1) / (k + 1))
    domain, bodies = samples(
        "seqthetic_deduplicate",
        unique_token_ratio={"min": 0.3, "max": 0.4},
        repeat_token_ratio={"min": 0.5, "max": 0.5},
        **SEQ,
    )
    for body in bodies:
        seq, _, answer = cut(domain, body)
        assert answer == list(dict.fromkeys(seq)) and len(set(answer)) == len(
            answer
        )  # first occurrences
        doubled = len(seq) - len(answer)
        assert doubled == int(0.5 * (len(seq) - doubled) + 1e-9) or doubled == int(
            0.5 * len(answer)
        )
        assert all(seq.count(c) <= 2 for c in answer)


def test_seqthetic_delete():
    domain, bodies = samples(
        "seqthetic_delete",
        should_delete_ratio=0.5,
        seq_to_delete_length={"min": 2, "max": 5},
        **SEQ,
    )
    deleted = 0
    for body in bodies:
        seq, query, answer = cut(domain, body)
        assert len(set(seq)) == len(seq) and 2 <= len(query) <= 5
        at = wu_index(seq, query)
        if at >= 0:
            deleted += 1
            assert answer == seq[:at] + seq[at + len(query) :] and any(
                len(seq) == n // 2 - 1 for n in range(20, 81)
            )
        else:
            assert not set(query) & set(seq) and answer == seq
            assert any(
                len(seq) + len(query) == int((n + len(query)) / 2 - 1) for n in range(20, 81)
            )
    assert 0.4 < deleted / len(bodies) < 0.6


def test_paper_variants_are_byte_identical_for_any_worker_count(tmp_path):
    from synthlm.synth.build import build_dataset

    spec = load_spec(
        {
            "num_tokens": 30_000,
            "seed": 5,
            "domains": [
                {"type": "wu_filter"},
                {"type": "wu_sort"},
                {"type": "wu_merge_dictionaries_three"},
                {"type": "wu_rearrange_string"},
                {
                    "type": "seqthetic_delete",
                    "length": {"min": 40, "max": 90},
                    "seq_to_delete_length": {"min": 2, "max": 9},
                },
                {"type": "tilt_flat_parens", "length": 300, "dep_lengths": {1: 3, 2: 2, 4: 1}},
                {"type": "seqthetic_ngram", "num_vocab": 20, "length": {"min": 20, "max": 60}},
                {"type": "lime_deduct", "num_vocab": 500},
            ],
        }
    )
    one = build_dataset(spec, tmp_path / "one", workers=1, quiet=True)
    two = build_dataset(spec, tmp_path / "two", workers=2, quiet=True)
    assert one["splits"] == two["splits"]  # sha256 of every store file included


def test_seqthetic_sort_numbers_one_token_per_number():
    """SortNumbers: ``rng.choice(np.arange(min, max), L, replace=False)``, the delimiter, then
    ``np.sort``; a number is its own token id (nums 1-39 as Range(1, 40) in Seqthetic)."""
    domain, bodies = samples(
        "seqthetic_sort_numbers",
        count=400,
        defaults=False,
        nums={"min": 1, "max": 39},
        length={"min": 8, "max": 12},
    )
    seen, first_is_min, total = Counter(), 0, 0
    for body in bodies:
        seq, _, answer = cut(domain, body)
        assert 8 <= len(seq) <= 12 and len(set(seq)) == len(seq)
        assert all(1 <= x <= 39 for x in seq) and answer == sorted(seq)
        seen.update(seq)
        first_is_min += seq[0] == min(seq)
        total += 1 / len(seq)
    assert set(seen) == set(range(1, 40))  # every number can be drawn ...
    mean = sum(seen.values()) / 39
    assert max(abs(c - mean) for c in seen.values()) < 0.25 * mean  # ... equally often
    assert abs(first_is_min - total) < 4 * np.sqrt(total)  # input order: uniform permutation


def test_seqthetic_ngram_draws_from_one_dense_table():
    """NGram: ``gram_count`` uniform tokens, then each token from the row of the previous
    ``gram_count - 1`` in one dense ``np.random.random`` matrix shared by every sequence."""
    v, g = 3, 3
    _domain, bodies = samples(
        "seqthetic_ngram",
        count=300,
        defaults=False,
        num_vocab=v,
        gram_count=g,
        length={"min": 2, "max": 60},
    )
    starts, counts = Counter(), {}
    for i, body in enumerate(bodies):
        assert g <= len(body) <= 60 and set(body) <= set(range(v))  # at least gram_count
        starts.update(body[:g])
        for t in range(g, len(body)):
            key = (i % 2, body[t - 3], body[t - 2], body[t - 1])  # two halves, one older token
            counts.setdefault(key, Counter())[body[t]] += 1

    def rows(keep):
        table = {}
        for (half, older, a, b), c in counts.items():
            if keep(half, older):
                table.setdefault((a, b), Counter()).update(c)
        return {k: np.array([c[x] for x in range(v)]) / sum(c.values()) for k, c in table.items()}

    both = rows(lambda half, older: True)
    assert len(both) == v ** (g - 1) and all((p > 0).all() for p in both.values())  # dense
    assert max(abs(c / sum(starts.values()) - 1 / v) for c in starts.values()) < 0.03
    spread = np.std([p for p in both.values()])
    assert spread > 0.08  # random rows, not uniform ones
    assert max(np.abs(both[(0, b)] - both[(1, b)]).max() for b in range(v)) > 0.1  # both tokens
    for keep in (
        lambda half, older: half == 0,  # the same table in every sequence
        lambda half, older: half == 1,
        lambda half, older: older == 0,  # the token before the context does not matter
        lambda half, older: older == 1,
    ):
        for key, p in rows(keep).items():
            assert np.abs(p - both[key]).max() < 0.08
    spec = {"type": "seqthetic_ngram", "num_vocab": v, "gram_count": g, "length": 200}
    other = bind_domains(
        load_spec({"num_tokens": 1000, "seed": 1, "promoter_length": 1, "domains": [spec]}), 1
    )[1][0]
    tokens = other.generate(generator(0, 5), 300).tokens.reshape(300, -1)[:, 1:]
    follow = Counter(zip(tokens[:, 1:-2].ravel(), tokens[:, 2:-1].ravel(), tokens[:, 3:].ravel()))
    moved = [
        abs(follow[(a, b, x)] / sum(follow[(a, b, y)] for y in range(v)) - both[(a, b)][x])
        for a in range(v)
        for b in range(v)
        for x in range(v)
    ]
    assert max(moved) > 0.1  # another dataset seed draws another table


@pytest.mark.parametrize("mode", ["deduct", "abduct", "induct"])
def test_lime_length_no_example_can_meet_is_refused_before_work(mode):
    """The original redraws forever when ``length`` excludes every example; synthlm refuses it.
    With the default roles the header alone is 5 + 24 + 20 tokens, so no input fits in 40."""
    from synthlm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"domains\.0: length: .*input is \d+-\d+ tokens"):
        domain_for(f"lime_{mode}", length={"min": 1, "max": 40})
    # shortest input by hand (deduct): 5 + 24 + 20 header, 1 variable listed, a rule of
    # 2 * 3 + 5 and a one-variable substitution '<V> : [ a b ]' of 6
    if mode == "deduct":
        domain_for("lime_deduct", length={"min": 1, "max": 5 + 24 + 20 + 1 + 11 + 6})
        with pytest.raises(ConfigError):
            domain_for("lime_deduct", length={"min": 1, "max": 5 + 24 + 20 + 1 + 11 + 6 - 1})


def test_the_lime_example_spec_writes_examples_as_the_original_does(tmp_path):
    """tasks_with_tokens.py gives every task a `name :` prefix except LIME, whose sequences
    start with <UPPER>: examples/synth/lime.yaml writes no promoter id before them."""
    import json
    from pathlib import Path

    from synthlm.synth import build_dataset, load_synthetic

    spec = Path(__file__).parents[2] / "examples" / "synth" / "lime.yaml"
    build_dataset(load_spec(spec, num_tokens=20_000), tmp_path / "lime", quiet=True)
    manifest = json.loads((tmp_path / "lime" / "manifest.json").read_text())
    assert [d["promoter"] for d in manifest["domains"]] == [[], [], []]
    upper = manifest["layout"]["markers"]["upper"]
    train = load_synthetic(tmp_path / "lime").split("train")
    assert len(train) > 30
    assert all(int(train.document(i)[0]) == upper for i in range(len(train)))
