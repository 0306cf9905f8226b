"""Which numbers of different runs can be put side by side, and why not where they cannot.

A report lines runs up metric by metric, but a number is only comparable to another of the same
quantity on the same data. Three things in a run's config change what its numbers mean:

* the objective: a CLM loss and a T5 span-corruption loss are losses of different predictions;
  every metric the objective computes (train and eval losses, perplexities, accuracies of its
  token groups) stays within one objective. Downstream scores (lm-eval, eval result files)
  do not depend on it.
* the natural tokenizer: a token is another unit under another tokenizer, so loss and
  perplexity per token, and token counts, do not compare; bits per byte (bpb) do.
* an eval set's settings under one name: another store, or another number of tokens, examples
  or documents, is another measurement.
* how an eval set was scored during training: the window length (``data.seq_len``: a longer
  window gives later tokens more context, so a lower loss), for natural text the windows'
  packing and document masking, and under ``train.loss_average: micro_batch`` the eval batch
  (the loss is then a mean of per-batch means). Synthetic exact match is decoded from each
  prompt, whatever the windows, so it still compares.

A fourth is not in the config: runs last logged at different steps give final values from
different points of training.

The page states each such difference and marks no "best" where it applies; ``--equal-tokens``,
a table that only means something across one objective and one token unit, refuses instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthlm.errors import UserError
from synthlm.report.load import Run

OBJECTIVE = "objective"
TOKENIZER = "tokenizer"
STEP = "step"
EVAL_PREFIX = "data.eval."  # + the set's name
SCORING_PREFIX = "eval_scoring."  # + the set's name
UNKNOWN = "unknown"
# an eval set's settings that change what its numbers measure, per kind of set
EVAL_SETTINGS = {
    "natural": ("path", "max_tokens", "max_documents"),
    "synthetic": ("path", "max_examples"),
}
# PREFIX.json keys that say which text a store holds (not how it was tokenized)
TEXT_KEYS = ("source_files", "key", "max_docs", "shard", "num_shards", "num_documents")
PER_TOKEN = ("loss", "ppl", "perplexity")  # metric name parts whose unit is a token
DOWNSTREAM = ("lm_eval/",)  # logged metrics that neither objective nor tokenizer defines


@dataclass(frozen=True)
class Difference:
    """One thing that makes some of the runs' numbers incomparable, with each run's value."""

    key: str  # OBJECTIVE, TOKENIZER, STEP, data.eval.<set name> or eval_scoring.<set name>
    values: list[str]  # per run, in the runs' order
    affects: str  # which numbers, in words
    # per run, what is compared (None: unknown); two texts may show one identity (an eval store
    # of the same text at two paths), so figures group runs by these, not by the texts
    identities: list[Any] = field(default_factory=list, compare=False)

    def note(self, names: Sequence[str]) -> str:
        listed = "; ".join(f"{name}: {value}" for name, value in zip(names, self.values))
        return f"{self.key} differs ({listed}): {self.affects}"

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        return {"key": self.key, "values": dict(zip(names, self.values)), "affects": self.affects}


def differences(runs: Sequence[Run]) -> list[Difference]:
    """Every difference between the runs that makes some of their numbers incomparable."""
    if len(runs) < 2:
        return []
    found = [
        _difference(
            OBJECTIVE,
            [_same(objective_of(r)) for r in runs],
            "losses and every other metric the objective computes (train and eval/...) are "
            "of different quantities; no best is marked for them",
        ),
        _difference(
            TOKENIZER,
            _comparable_tokenizers(runs),
            "tokens are different units: loss and perplexity per token and token counts do "
            "not compare, bits per byte (bpb) do; no best is marked for per-token metrics",
        ),
    ]
    for name in _eval_set_names(runs):
        found.append(
            _difference(
                f"{EVAL_PREFIX}{name}",
                [eval_set_of(r, name) for r in runs],
                f"eval/{name}/... measure different data; no best is marked for them",
            )
        )
        found.append(
            _difference(
                f"{SCORING_PREFIX}{name}",
                [eval_scoring_of(r, name) for r in runs],
                f"eval/{name}/... were scored on other windows or batches (synthetic exact "
                "match excepted); no best is marked for them",
            )
        )
    found.append(
        _difference(
            STEP,
            [None if (s := last_step(r)) is None else (s, f"{s:,}") for r in runs],
            "final values come from different points of training; no best is marked for "
            "a logged metric whose last values are from different steps",
        )
    )
    return [d for d in found if d is not None]


Known = tuple[Any, str]  # (identity compared, text shown) of one run's value


def _difference(key: str, values: Sequence[Known | None], affects: str) -> Difference | None:
    """A difference where at least two runs are known to differ (unknown values never count)."""
    if len({v[0] for v in values if v is not None}) < 2:
        return None
    return Difference(
        key,
        [UNKNOWN if v is None else v[1] for v in values],
        affects,
        [None if v is None else v[0] for v in values],
    )


def _same(value: str | None) -> Known | None:
    """A value compared as it is shown."""
    return None if value is None else (value, value)


def why_not_comparable(
    name: str, runs: Sequence[Run], found: Sequence[Difference], logged: bool
) -> str | None:
    """Why the runs' final values of metric ``name`` cannot be ranked, or None if they can.

    ``logged``: a metric of metrics.jsonl (else an eval result file's entry, which neither the
    objective nor the tokenizer defines and which records no step).
    """
    keys = {d.key for d in found}
    downstream = not logged or name.startswith(DOWNSTREAM)
    if not downstream and OBJECTIVE in keys:
        return "objectives differ"
    if not downstream and TOKENIZER in keys and per_token(name):
        return "tokenizers differ"
    eval_set = name.split("/")[1] if name.startswith("eval/") and name.count("/") >= 2 else None
    if eval_set is not None and f"{EVAL_PREFIX}{eval_set}" in keys:
        return f"eval set {eval_set} differs"
    if eval_set is not None and f"{SCORING_PREFIX}{eval_set}" in keys:
        differing = scoring_differences(runs, eval_set)
        if differing and window_scored(name, runs):
            return f"eval set {eval_set} scored with different {', '.join(differing)}"
    if logged and len({r.columns[name].steps[-1] for r in runs if _has(r, name)}) > 1:
        return "last values at different steps"
    return None


def _has(run: Run, name: str) -> bool:
    column = run.columns.get(name)
    return column is not None and len(column.steps) > 0


def per_token(name: str) -> bool:
    """Whether metric ``name`` is per token (loss, perplexity), so tied to the tokenizer;
    bits per byte are not."""
    parts = {p.split(",")[0].lower().rsplit("_", 1)[-1] for p in name.split("/")}
    return bool(parts & set(PER_TOKEN)) and "bpb" not in parts


# ---------------------------------------------------------------------------------------------
# Figures: which runs' curves may share axes


@dataclass(frozen=True)
class Group:
    """Runs whose curves of some metrics compare, and what sets them apart from the others."""

    runs: tuple[int, ...]  # indices into the runs
    label: str  # e.g. "objective span_corruption"; "" when every run compares


def curve_groups(
    keys: Sequence[str], runs: Sequence[Run], found: Sequence[Difference]
) -> list[Group]:
    """The runs split so that within a group the curves of every metric in ``keys`` compare.

    One group of all runs when nothing in ``found`` bears on these metrics. Unlike the final
    table, the step a run last logged does not split anything (a curve shows where it ends),
    nor does the objective split what it does not compute (learning rate, throughput).
    """
    applying = [d for d in found if any(_splits(d, key, runs) for key in keys)]
    members: dict[tuple[Any, ...], list[int]] = {}
    for index in range(len(runs)):
        members.setdefault(tuple(d.identities[index] for d in applying), []).append(index)
    if len(members) < 2:
        return [Group(tuple(range(len(runs))), "")]
    return [
        Group(tuple(group), "; ".join(_group_label(d, group[0]) for d in applying))
        for group in members.values()
    ]


def _splits(found: Difference, key: str, runs: Sequence[Run]) -> bool:
    """Whether ``found`` makes curves of metric ``key`` from different runs incomparable."""
    computed = key == "loss" or key.startswith(("loss/", "eval/"))  # by the objective
    eval_set = key.split("/")[1] if key.startswith("eval/") and key.count("/") >= 2 else None
    if found.key == OBJECTIVE:
        return computed
    if found.key == TOKENIZER:
        return computed and per_token(key)
    if eval_set is not None and found.key == f"{EVAL_PREFIX}{eval_set}":
        return True
    return (
        eval_set is not None
        and found.key == f"{SCORING_PREFIX}{eval_set}"
        and (window_scored(key, runs))
    )


def _group_label(found: Difference, index: int) -> str:
    """What run ``index`` has for ``found``, short enough for a panel title: of the scoring
    settings, only those that differ (``seq_len 64``)."""
    identity = found.identities[index]
    if identity is None:
        return f"{found.key} {UNKNOWN}"
    if found.key.startswith(SCORING_PREFIX):
        known = [dict(i) for i in found.identities if i is not None]
        return ", ".join(f"{k} {v}" for k, v in identity if len({p.get(k) for p in known}) > 1)
    if found.key.startswith(EVAL_PREFIX):
        return f"eval set {found.key.removeprefix(EVAL_PREFIX)}: {found.values[index]}"
    return f"{found.key} {found.values[index]}"


# ---------------------------------------------------------------------------------------------
# What each run records


def objective_of(run: Run) -> str | None:
    """The objective the run trained: its config's (clm by default, text_to_text in mode ft),
    else the one its newest saved model records; None when neither says."""
    config = run.config
    if config:
        objective = config.get("objective")
        if isinstance(objective, Mapping) and objective.get("name"):
            return str(objective["name"])
        if isinstance(objective, str) and objective:
            return objective
        return "text_to_text" if config.get("mode") == "ft" else "clm"
    return _saved_info(run.path).get("objective")


def _saved_info(run_dir: Path) -> dict[str, Any]:
    from synthlm.evaluate.checkpoint import read_info
    from synthlm.train.checkpoint import list_checkpoints

    for path in [run_dir / "final", *(p for _, p in reversed(list_checkpoints(run_dir)))]:
        if (path / "synthlm.json").is_file():
            try:
                return read_info(path)
            except UserError:
                return {}
    return {}


def tokenizer_of(run: Run) -> tuple[str, str] | None:
    """(identity, text) of the run's natural tokenizer, None when the run records none.

    The identity is the sha256 that ``synthlm tokenize`` records in a natural store's
    PREFIX.json (the trainer refuses a store of another tokenizer, so it is the run's), else
    the ``data.tokenizer`` path as written.
    """
    data = run.config.get("data")
    if not isinstance(data, Mapping):
        return None
    for item in _natural_sets(data):
        recorded = store_tokenizer(item["path"])
        if recorded is not None:
            sha = str(recorded["sha256"])
            kind, size = recorded.get("kind", "?"), recorded.get("vocab_size", "?")
            return f"sha256 {sha}", f"{kind}, {size} ids, sha256 {sha[:12]}"
    tokenizer = data.get("tokenizer")
    return (f"path {tokenizer}", str(tokenizer)) if tokenizer else None


def _natural_sets(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = [*(data.get("sources") or []), *(data.get("eval") or [])]
    return [
        item
        for item in items
        if isinstance(item, Mapping)
        and item.get("path")
        and item.get("kind", "natural") == "natural"
    ]


def store_tokenizer(path: str | Path) -> dict[str, Any] | None:
    """The tokenizer a token store's PREFIX.json records (None if unreadable or unrecorded)."""
    from synthlm.data.store import normalize_prefix

    prefix = normalize_prefix(path)
    try:
        metadata = json.loads(Path(f"{prefix}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recorded = metadata.get("tokenizer") if isinstance(metadata, dict) else None
    return recorded if isinstance(recorded, dict) and recorded.get("sha256") else None


def _comparable_tokenizers(runs: Sequence[Run]) -> list[Known | None]:
    """Each run's tokenizer where all known identities are of one kind (digests, or paths when
    no run's stores record a digest): a digest and a path cannot be told apart."""
    found = [tokenizer_of(r) for r in runs]
    kinds = {f[0].split()[0] for f in found if f is not None}
    return found if len(kinds) == 1 else [None] * len(runs)


def eval_set_of(run: Run, name: str) -> Known | None:
    """The settings of eval set ``name`` that change what it measures, as (identity, text).

    The store is identified by the text it holds where its PREFIX.json records that (the same
    split of the same files, under any tokenizer: bits per byte compare across tokenizers,
    whose stores are necessarily different files), else by its path.
    """
    item = _eval_item(run, name)
    if item is None:
        return None
    keys = EVAL_SETTINGS.get(str(item.get("kind", "natural")), EVAL_SETTINGS["natural"])
    text = ", ".join(f"{k}={item.get(k)}" for k in keys if k in item)
    limits = tuple((k, str(item.get(k))) for k in keys if k != "path")
    return (store_text(item.get("path")), limits), text


def store_text(path: Any) -> str:
    """What identifies the text in the store at ``path``: its recorded source files and split
    (JSON), or the path as written when the store records none."""
    from synthlm.data.store import normalize_prefix

    if not path:
        return ""
    try:
        metadata = json.loads(Path(f"{normalize_prefix(path)}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metadata = None
    if not isinstance(metadata, dict) or not metadata.get("source_files"):
        return f"path {path}"
    text = {k: metadata.get(k) for k in TEXT_KEYS}
    split = metadata.get("split_from")
    if isinstance(split, dict):
        text["split_from"] = {k: v for k, v in split.items() if k != "store"}
    return json.dumps(text, sort_keys=True, default=str)


def eval_scoring_of(run: Run, name: str) -> Known | None:
    """How eval set ``name`` was scored during training where that changes its numbers, as
    (identity, text): the window length, for natural text the packing, shared boundary tokens
    and document masking of the windows, and the eval batch when the loss is a mean of per-batch means. None when
    the run's config does not say (no such set, no data.seq_len, a fine-tuning run)."""
    config = run.config
    data = config.get("data")
    item = _eval_item(run, name)
    if item is None or config.get("mode") == "ft" or not isinstance(data, Mapping):
        return None
    if data.get("seq_len") is None:
        return None
    parts = [("seq_len", str(data["seq_len"]))]
    if str(item.get("kind", "natural")) == "natural":  # a synthetic set's loss: per token always
        parts.append(("windows", "packed" if data.get("packing", True) else "one document per row"))
        if data.get("shared_boundary") is True:  # only when set: older runs keep their identity
            parts.append(("boundary token", "shared with the next row (seq_len targets)"))
        parts.append(("document masking", "on" if data.get("document_mask") is True else "off"))
        parts.append(("loss averaging", _loss_averaging(config.get("train"))))
    return tuple(parts), ", ".join(f"{key} {value}" for key, value in parts)


def _loss_averaging(train: Any) -> str:
    """``per token``, or ``per batch of N`` (train.loss_average micro_batch: the eval loss is
    a mean of per-batch means, so the eval batch size changes it)."""
    train = train if isinstance(train, Mapping) else {}
    if train.get("loss_average") != "micro_batch":
        return "per token"
    return f"per batch of {train.get('eval_batch_size') or train.get('batch_size')}"


def scoring_differences(runs: Sequence[Run], name: str) -> list[str]:
    """Which parts of eval set ``name``'s scoring differ between the runs (``seq_len``, ...)."""
    known = [dict(found[0]) for r in runs if (found := eval_scoring_of(r, name)) is not None]
    keys = list(dict.fromkeys(k for parts in known for k in parts))
    return [k for k in keys if len({parts.get(k) for parts in known}) > 1]


def window_scored(name: str, runs: Sequence[Run]) -> bool:
    """Whether metric ``name`` (eval/<set>/...) depends on how its set was scored: all of a
    natural set's do; of a synthetic set's, exact match (``acc``) does not, as it is greedily
    decoded from each example's prompt."""
    parts = name.split("/")
    if len(parts) < 3 or parts[0] != "eval":
        return False
    synthetic = any(r.kind_of(parts[1]) == "synthetic" for r in runs)
    return not (synthetic and parts[2] == "acc")


def _eval_item(run: Run, name: str) -> Mapping[str, Any] | None:
    """The data.eval entry named ``name`` in the run's config."""
    data = run.config.get("data")
    items = data.get("eval") if isinstance(data, Mapping) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("name") == name:
            return item
    return None


def _eval_set_names(runs: Sequence[Run]) -> list[str]:
    names = []
    for run in runs:
        data = run.config.get("data")
        items = data.get("eval") if isinstance(data, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                names.append(item["name"])
    return list(dict.fromkeys(names))


def last_step(run: Run) -> int | None:
    steps = [float(c.steps[-1]) for c in run.columns.values() if len(c.steps)]
    return int(max(steps)) if steps else None


# ---------------------------------------------------------------------------------------------
# --equal-tokens


def check_equal_tokens(runs: Sequence[Run], metric: str, source: str) -> None:
    """Refuse ``--equal-tokens`` where its table would mean nothing: runs of different
    objectives (the metric is another quantity), different tokenizers (the budgets are counts
    of different units; not for a synthetic source, whose symbols are the same in every run),
    or an eval set of the metric's name with different settings (other data)."""
    names = [str(r.path) for r in runs]
    objective = _difference(OBJECTIVE, [_same(objective_of(r)) for r in runs], "")
    if objective is not None:
        raise _refusal(
            objective,
            names,
            "objective.name",
            f"{metric} is another quantity under each objective; compare runs of one objective",
        )
    synthetic = all(r.kind_of(source) == "synthetic" for r in runs)
    tokenizer = None if synthetic else _difference(TOKENIZER, _comparable_tokenizers(runs), "")
    if tokenizer is not None:
        raise _refusal(
            tokenizer,
            names,
            "data.tokenizer",
            f"tokens of '{source}' are different units under each tokenizer; compare runs of "
            "one tokenizer",
        )
    parts = metric.split("/")
    if len(parts) >= 3 and parts[0] == "eval":
        settings = _difference(
            f"{EVAL_PREFIX}{parts[1]}", [eval_set_of(r, parts[1]) for r in runs], ""
        )
        if settings is not None:
            raise _refusal(
                settings,
                names,
                f"the eval set {parts[1]}",
                f"{metric} is measured on different data in each run; give every run the "
                "same eval set",
            )
        scoring = _difference(
            f"{SCORING_PREFIX}{parts[1]}", [eval_scoring_of(r, parts[1]) for r in runs], ""
        )
        if scoring is not None and window_scored(metric, runs):
            raise _refusal(
                scoring,
                names,
                f"how the eval set {parts[1]} was scored",
                f"{metric} is scored on other windows or batches in each run; compare runs "
                "of one data.seq_len (and packing, document masking, loss averaging)",
            )


def _refusal(found: Difference, names: Sequence[str], key: str, why: str) -> UserError:
    listed = ", ".join(f"{name} ({value})" for name, value in zip(names, found.values))
    return UserError(f"--equal-tokens: the runs differ in {key}: {listed}. {why}")
