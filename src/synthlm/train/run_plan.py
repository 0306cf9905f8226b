"""Everything decided before the first step, and every check that can fail before it.

:func:`plan_pretrain` (mode ``pt``; :mod:`synthlm.train.planners` picks the planner by mode)
resolves the tokenizer, the vocabulary layout, the model's HF config (without building
weights), the batch split across processes and the step budget, and raises a
:class:`~synthlm.errors.UserError` naming the key on: missing data paths, store ids outside the
vocabulary, a synthetic dataset needing more meta ids than reserved, ``seq_len`` beyond the
model's positions, batch sizes that do not divide across processes, a source repeated more
than its ``max_repetition``, an unknown objective option, or W&B asked for but not installed.
``synthlm train --dry-run`` runs exactly this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthlm.data.mixture import (
    KINDS,
    DataConfig,
    Mixture,
    ModelVocab,
    build_layout,
    check_paths,
)
from synthlm.errors import ConfigError
from synthlm.models import is_seq2seq, max_positions, resolved_config
from synthlm.train.config import ObjectiveConfig, RunConfig, TrainConfig
from synthlm.train.guards import check_init_from

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from synthlm.finetune.pair_plan import FinetuneData
    from synthlm.objectives.base import Objective
    from synthlm.protocols import Tokenizer, TrainObjective, TrainStream


@dataclass(frozen=True)
class BatchPlan:
    """How one optimizer step's sequences split: ``global = micro x processes x accum``."""

    micro: int
    processes: int
    accum: int

    @property
    def global_batch(self) -> int:
        return self.micro * self.processes * self.accum


def plan_batch(train: TrainConfig, processes: int) -> BatchPlan:
    """Derive gradient accumulation from ``global_batch_size`` when given; check it divides."""
    per_pass = train.batch_size * processes
    if train.global_batch_size is None:
        return BatchPlan(train.batch_size, processes, train.grad_accum or 1)
    if train.global_batch_size % per_pass:
        raise ConfigError(
            f"train.global_batch_size={train.global_batch_size} does not divide into "
            f"train.batch_size="
            f"{train.batch_size} x {processes} processes ({per_pass} sequences per pass); "
            f"use a multiple of {per_pass} or change train.batch_size"
        )
    accum = train.global_batch_size // per_pass
    if train.grad_accum is not None and train.grad_accum != accum:
        raise ConfigError(
            f"train.grad_accum={train.grad_accum} contradicts "
            f"train.global_batch_size={train.global_batch_size} "
            f"with train.batch_size={train.batch_size} x {processes} processes (needs "
            f"grad_accum={accum}); set only one"
        )
    return BatchPlan(train.batch_size, processes, accum)


@dataclass
class RunPlan:
    config: RunConfig
    tokenizer: Tokenizer  # the tokenizer the run trains with (extended with T5 tokens when needed)
    layout: ModelVocab
    model_config: PretrainedConfig
    batch: BatchPlan
    total_steps: int
    mixture: TrainStream  # the training stream: a Mixture (mode pt) or a PairDataset (mode ft)
    source_epochs: dict[str, float]
    objective: TrainObjective
    special_ids: dict[str, int | None] = field(
        default_factory=dict
    )  # token ids the model config names
    seq_len: int = 0  # model input tokens per sample (T5: after corruption)
    target_len: int = 0  # seq2seq: decoder tokens per sample (FLOPs); 0 for decoder-only
    finetune: FinetuneData | None = None  # mode ft: the valid / test pairs
    # natural training source -> whether its store starts documents with BOS (as recorded)
    natural_bos: dict[str, bool | None] = field(default_factory=dict)
    # synthetic training source -> its id layout's digest (synthlm.json records it)
    synthetic_layouts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seq_len = self.seq_len or self.config.seq_len
        self.special_ids = self.special_ids or special_ids(self.tokenizer)

    @property
    def seq2seq(self) -> bool:
        return bool(self.objective.seq2seq)

    @property
    def masked_kinds(self) -> frozenset[str]:
        """Source kinds whose packed documents attend only to themselves (eval scores alike);
        the objective masks exactly when this is not empty (:func:`build_objective`)."""
        return frozenset(getattr(self.mixture, "masked_kinds", ()))

    def steps_per_epoch(self) -> float:
        """Optimizer steps in one pass over the training data (``schedule.decay_every: epoch``)."""
        return epoch_samples(self.mixture) / self.batch.global_batch

    @property
    def prompt_bos(self) -> bool | None:
        """Whether a saved checkpoint's tokenizer prompts with BOS: as every natural training
        store starts its documents (``--prepend-bos``), or None (keep the tokenizer's own rule)
        when they disagree, one does not record it, or none trains (seq2seq and fine-tuning
        runs are not planned with any)."""
        values = set(self.natural_bos.values())
        return values.pop() if len(values) == 1 and None not in values else None

    @property
    def has_eval(self) -> bool:
        if self.finetune is not None:
            return self.finetune.valid is not None
        return bool(self.config.data is not None and self.config.data.eval)

    def summary(self) -> dict[str, Any]:
        """What ``--dry-run`` prints after the config."""
        seq_len = self.seq_len
        return {
            "model": self._model_summary(),
            **self._tokenizer_summary(),
            "steps": self.total_steps,
            "global_batch": self.batch.global_batch,
            "micro_batch": self.batch.micro,
            "processes": self.batch.processes,
            "grad_accum": self.batch.accum,
            "tokens": self.total_steps * self.batch.global_batch * seq_len,
            "vocab_layout": self.layout.to_dict(),
            "epochs_per_source": {k: round(v, 4) for k, v in self.source_epochs.items()},
            "objective": self.objective.name,
            "document_mask": sorted(self.masked_kinds),
            **self._phases(),
            **self._pairs_summary(),
        }

    def _pairs_summary(self) -> dict[str, Any]:
        """Fine-tuning: how many pairs each file gave (a natural-instructions checkout, for
        one, gives as many as its split and instance limits draw)."""
        if self.finetune is None:
            return {}
        sets = {"valid": self.finetune.valid, "test": self.finetune.test}
        counts = {role: len(pairs.pairs) for role, pairs in sets.items() if pairs is not None}
        if self.mixture is not None:
            counts = {"train": len(self.mixture.pairs), **counts}
        return {"pairs": counts}

    def _tokenizer_summary(self) -> dict[str, str]:
        """The tokenizer the run resolved when ``data.tokenizer`` is unset (the printed config
        shows null): the meta-only vocabulary, or the one a natural store records."""
        data = self.config.data
        if data is None or data.tokenizer:
            return {}
        from synthlm.data.meta_vocab import META_TOKENIZER, wants_meta_tokenizer

        return {"tokenizer": META_TOKENIZER if wants_meta_tokenizer(data) else tokenizer_path(data)}

    def _model_summary(self) -> dict[str, Any]:
        """The shape a header comment claims ("12 layers, width 768"), checkable before step 0."""
        from synthlm.models import planned_parameters

        model, hf = self.config.model, self.model_config
        source = (
            {"init_from": str(model.init_from)} if model.init_from else {"preset": model.preset}
        )
        layers = getattr(hf, "num_hidden_layers", None) or getattr(hf, "num_layers", None)
        width = getattr(hf, "hidden_size", None) or getattr(hf, "d_model", None)
        return {
            "arch": model.arch,
            **source,
            "layers": layers,
            "width": width,
            "parameters": planned_parameters(model, hf),
        }

    def warnings(self) -> list[str]:
        """Settings that run but do not do what the config reads as: printed before step 0.

        A warmup longer than the run (common when a recipe's steps are shrunk for a trial)
        never lets the learning rate reach ``optim.lr``.
        """
        found = []
        warmup = self.config.schedule.warmup(self.total_steps)  # 0 for constant and legacy
        if warmup >= self.total_steps:
            found.append(
                f"warning: schedule warmup is {warmup:,} steps but the run has "
                f"{self.total_steps:,}: the learning rate never reaches optim.lr="
                f"{self.config.optim.lr:g} (lower schedule.warmup_steps for a short run)"
            )
        if {True, False} <= set(self.natural_bos.values()):
            with_bos = [name for name, bos in self.natural_bos.items() if bos]
            without = [name for name, bos in self.natural_bos.items() if bos is False]
            found.append(
                f"warning: natural sources {with_bos} start documents with BOS "
                f"(--prepend-bos) and {without} do not: the saved tokenizer keeps its own BOS "
                "rule, so prompts match only one of them"
            )
        return found

    def _phases(self) -> dict[str, Any]:
        phases = getattr(self.mixture, "phases", None)
        if phases is None:
            return {}
        per_step = self.batch.global_batch
        return {
            "phases": [
                {
                    "name": ph.name,
                    "steps": [ph.start // per_step, ph.stop // per_step],
                    "weights": {
                        phases.names[i]: round(w, 4) for i, w in zip(ph.sources, ph.weights)
                    },
                }
                for ph in phases.phases
            ]
        }


def tokenizer_path(data: DataConfig) -> str:
    """``data.tokenizer``, else the tokenizer recorded by the first natural store."""
    if data.tokenizer:
        return data.tokenizer
    from synthlm.data.store import TokenStore

    for source in data.sources:
        if source.kind == "natural":
            recorded = TokenStore(source.path, check_ids=False).metadata.get("tokenizer")
            if isinstance(recorded, dict):
                recorded = recorded.get("path")
            if recorded:
                return str(recorded)
    raise ConfigError(
        "data.tokenizer: not set, and no natural source records its tokenizer in "
        "PREFIX.json; set data.tokenizer to a tokenizer dir"
    )


def check_natural_stores(data: DataConfig, tokenizer: Tokenizer) -> None:
    """Every natural store must hold the ids of the tokenizer the run reads it with."""
    from synthlm.data.provenance import check_store_tokenizer

    fix = (
        "Tokenize it with the run's tokenizer (synthlm tokenize ... --tokenizer DIR), or set "
        "data.tokenizer to the one that wrote it"
    )
    for kind, items in (("data.sources", data.sources), ("data.eval", data.eval)):
        for i, item in enumerate(items):
            if item.kind == "natural" and item.path is not None:
                check_store_tokenizer(item.path, tokenizer, f"{kind}.{i}.path", fix)


def load_tokenizer_for(data: DataConfig) -> Tokenizer:
    from synthlm.data.meta_vocab import meta_only_tokenizer, wants_meta_tokenizer
    from synthlm.tokenizers import load_tokenizer

    if wants_meta_tokenizer(data):  # synthetic only: specials, then the meta-language range
        return meta_only_tokenizer()
    return load_tokenizer(tokenizer_path(data))


def special_ids(tokenizer: Tokenizer) -> dict[str, int | None]:
    return {"bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id}


def check_positions(config: PretrainedConfig, seq_len: int, key: str = "data.seq_len") -> None:
    limit = max_positions(config)
    if limit is not None and seq_len > limit:
        raise ConfigError(
            f"{key}={seq_len} exceeds the model's {limit} positions; lower {key} "
            f"or set model.overrides.max_position_embeddings={seq_len}"
        )


def epoch_samples(data: Any) -> float:
    """Samples in one pass over the training data: packed windows of every source, or pairs."""
    if isinstance(data, Mixture):
        total = sum(source.epoch_samples for source in data.sources)
        if math.isinf(total):
            raise ConfigError(
                "train.epochs: a source with stream: infinite has no epochs; set "
                "train.max_steps or max_tokens"
            )
        return total
    return float(data.epoch_samples)


def check_epoch_units(config: RunConfig, mixture: Any) -> None:
    """Intervals given as ``epoch`` need a pass over the data to end: an endless stream has none."""
    uses = [
        key
        for key, value in (
            ("train.eval_every", config.train.eval_every),
            ("schedule.decay_every", config.schedule.decay_every),
        )
        if value == "epoch"
    ]
    if not uses:
        return
    try:
        epoch_samples(mixture)
    except ConfigError:
        raise ConfigError(
            f"{uses[0]}: epoch needs data that ends, but a source has stream: infinite; give "
            "the interval in steps"
        ) from None


def total_steps(train: TrainConfig, batch: BatchPlan, mixture: Any, seq_len: int) -> int:
    """Optimizer steps from whichever budget is set (whole steps, rounded up); ``max_tokens``
    counts model input tokens (``seq_len`` per sample), ``epochs`` passes over the data."""
    if train.max_steps is not None:
        return train.max_steps
    if train.max_tokens is not None:
        return math.ceil(train.max_tokens / (batch.global_batch * seq_len))
    return max(math.ceil((train.epochs or 0) * epoch_samples(mixture) / batch.global_batch), 1)


def plan_pretrain(config: RunConfig, processes: int) -> RunPlan:
    """Mode ``pt``: every fail-fast check, in the order a user would fix them; no model weights."""
    data = config.data
    assert data is not None  # RunConfig requires it in mode pt
    check_paths(data)
    batch = plan_batch(config.train, processes)
    check_wandb(config)
    check_attention_kernel(config)
    natural = load_tokenizer_for(data)
    check_natural_stores(data, natural)
    if natural.eos_id is None:
        raise ConfigError(
            f"data.tokenizer: {tokenizer_path(data)} has no end-of-sequence token; packing "
            f"needs one between documents"
        )
    objective, tokenizer = build_objective(config, natural)
    if hasattr(objective, "check_data"):  # an objective that needs a data layout says so now
        objective.check_data(data)
    check_model_kind(config, objective)
    check_shared_boundary(data, objective)
    check_source_loss(data, objective)
    layout = build_layout(
        data,
        tokenizer.vocab_size,
        config.model.num_meta_tokens,
        config.seed,
        config.model.vocab_multiple,
    )
    ids = model_special_ids(tokenizer, objective)
    hf_config = resolved_config(config.model, vocab_size=layout.model_vocab_size, special_ids=ids)
    check_positions(hf_config, data.seq_len)
    lm_eval = config.train.lm_eval
    if lm_eval is not None and lm_eval.max_length is not None:
        check_positions(hf_config, lm_eval.max_length, key="train.lm_eval.max_length")
    ckpt_rows = (
        getattr(hf_config, "vocab_size", None) if config.model.init_from is not None else None
    )
    check_init_from(
        config.model.init_from, layout, tokenizer, ckpt_rows, config.model.vocab_multiple
    )
    if config.train.eval_draws == "per_evaluation" and not objective.seq2seq:
        raise ConfigError(
            f"train.eval_draws: per_evaluation: objective '{objective.name}' draws nothing at "
            "evaluation (it scores the eval stores' windows as they are); use fixed"
        )
    if objective.seq2seq:
        check_seq2seq_eval(data)
        if data.epoch_batches == "per_epoch":  # corruption would train on the filler rows
            raise ConfigError(
                f"data.epoch_batches: per_epoch fills each epoch's short last step with rows "
                f"that only a loss mask keeps out of the loss, which objective "
                f"'{objective.name}' does not read; use epoch_batches: continuous"
            )
    window = objective.window_length(data.seq_len)  # raw tokens per sample (T5: before corruption)
    mixture = Mixture(
        data.model_copy(update={"seq_len": window}),
        seed=config.seed,
        layout=layout,
        eos_id=tokenizer.eos_id,
        masked_kinds=masked_documents(config.objective, data),
    )
    mixture.deal_epochs(global_batch=batch.global_batch, micro=batch.micro)
    check_epoch_units(config, mixture)
    steps = total_steps(config.train, batch, mixture, data.seq_len)
    mixture.set_phases(global_batch=batch.global_batch, seq_len=data.seq_len, total_steps=steps)
    epochs = mixture.check_budget(steps * batch.global_batch)
    target_len = objective.target_length(data.seq_len) if objective.seq2seq else 0
    synthetic_layouts = check_synthetic_eval_layouts(data, config.seed)
    return RunPlan(
        config,
        tokenizer,
        layout,
        hf_config,
        batch,
        steps,
        mixture,
        epochs,
        objective,
        ids,
        data.seq_len,
        target_len,
        natural_bos={} if objective.seq2seq else natural_bos(data),
        synthetic_layouts=synthetic_layouts,
    )


def check_synthetic_eval_layouts(data: DataConfig, seed: int) -> dict[str, str]:
    """The synthetic training sources' layout digests; a synthetic eval set must have one of
    them (another layout gives the model's ids other meanings: see
    :mod:`synthlm.data.synthetic_layouts`). A run with no synthetic source checks nothing."""
    from synthlm.data.synthetic_layouts import check_layout, trained_layouts

    trained = trained_layouts(data, seed)
    if trained:
        for i, item in enumerate(data.eval):
            if item.kind == "synthetic" and item.path is not None:
                check_layout(item.path, trained, f"data.eval.{i} ({item.name})", "the run")
    return trained


def natural_bos(data: DataConfig) -> dict[str, bool | None]:
    """Each natural training store's ``prepend_bos`` from its PREFIX.json (None: not recorded,
    as in a store another tool wrote)."""
    from synthlm.data.store import TokenStore

    found: dict[str, bool | None] = {}
    for source in data.sources:
        if source.kind == "natural" and source.path is not None:
            recorded = TokenStore(source.path, check_ids=False).metadata.get("prepend_bos")
            found[source.name] = recorded if isinstance(recorded, bool) else None
    return found


def check_wandb(config: RunConfig) -> None:
    if config.logging.wandb:
        from synthlm.train.metrics import require_wandb

        require_wandb()


def check_attention_kernel(config: RunConfig) -> None:
    """flash_attention_2 needs the flash-attn package: say so before any work, not in a traceback
    from transformers once the data is ready and the model is being built."""
    import importlib.util

    if config.model.attn_implementation == "flash_attention_2" and (
        importlib.util.find_spec("flash_attn") is None
    ):
        raise ConfigError(
            "model.attn_implementation: flash_attention_2 needs the flash-attn package "
            "(pip install flash-attn, on a CUDA machine), which is not installed; "
            "model.attn_implementation=sdpa runs a flash kernel on GPUs without it"
        )


def build_objective(config: RunConfig, tokenizer: Tokenizer) -> tuple[Objective, Tokenizer]:
    """(objective with its options, the tokenizer to train with).

    ``document_mask`` (on when :func:`masked_documents` names any kind) is passed only when on,
    so an objective that cannot honour it fails here instead of silently ignoring it.
    Seq2seq objectives extend the tokenizer (sentinels).
    """
    from synthlm.objectives import OBJECTIVES, get_objective

    name = config.objective.name
    if name not in OBJECTIVES:
        get_objective(name)  # raises the error naming the known objectives
    options = config.objective.options()
    if masked_documents(config.objective, config.data):
        options["document_mask"] = True
    try:
        return OBJECTIVES[name].create(tokenizer, **options)
    except TypeError as exc:
        raise ConfigError(f"objective ({name}): unsupported option: {exc}") from None


def masked_documents(objective: ObjectiveConfig, data: DataConfig | None) -> frozenset[str]:
    """Source kinds whose packed documents the run masks from each other: all of them when the
    objective's own ``document_mask`` option is on, else as ``data.document_mask`` says (the
    default: synthetic sources, with a decoder-only objective). The objective masks when any
    kind is; the other kinds' windows are marked unmasked (``Sample.masked``), GPT-style."""
    from synthlm.objectives import OBJECTIVES

    if objective.options().get("document_mask"):
        if data is not None and data.document_mask is False:
            raise ConfigError(
                "objective.document_mask: true masks every packed document, but "
                "data.document_mask: false says none; set one of them"
            )
        return frozenset(KINDS)
    seq2seq = objective.name in OBJECTIVES and OBJECTIVES[objective.name].seq2seq
    return frozenset() if data is None else data.masked_kinds(seq2seq=seq2seq)


def check_model_kind(config: RunConfig, objective: TrainObjective) -> None:
    """The objective and the architecture must agree on encoder-decoder vs decoder-only."""
    from synthlm.models import ARCHS

    if is_seq2seq(config.model) == objective.seq2seq:
        return
    wanted = "an encoder-decoder" if objective.seq2seq else "a decoder-only"
    allowed = [name for name, arch in ARCHS.items() if arch.seq2seq == objective.seq2seq]
    raise ConfigError(
        f"objective.name={objective.name} trains {wanted} model, but "
        f"model.arch={config.model.arch} is not one; "
        f"set model.arch to one of: {', '.join(allowed)}"
    )


def check_shared_boundary(data: DataConfig, objective: TrainObjective) -> None:
    """``data.shared_boundary`` rows hold one token past what the model reads; only an
    objective that feeds all but the last and scores it as a target may take them."""
    if data.shared_boundary and not getattr(objective, "reads_extra_target", False):
        raise ConfigError(
            f"data.shared_boundary: true gives rows of seq_len + 1 tokens whose last token is a "
            f"target only; objective '{objective.name}' does not read such rows (clm does); set "
            "data.shared_boundary: false"
        )


def check_source_loss(data: DataConfig, objective: TrainObjective) -> None:
    """``loss: all`` makes every token of a source a next-token target: a decoder-only idea. A
    seq2seq objective builds its own targets (corrupted spans, answers), so it would ignore it."""
    wanting = [s.name for s in data.sources if s.loss == "all"]
    if wanting and objective.seq2seq:
        raise ConfigError(
            f"data.sources ({', '.join(wanting)}): loss: all trains on every token with a "
            f"decoder-only objective; objective.name={objective.name} builds its own targets, "
            f"so drop loss: all"
        )


def model_special_ids(tokenizer: Tokenizer, objective: TrainObjective) -> dict[str, int | None]:
    """The tokenizer's bos/eos/pad, then the ids the objective requires (T5: decoder start)."""
    ids = special_ids(tokenizer)
    for key, value in objective.model_config_overrides().items():
        ids[key.removesuffix("_token_id")] = value
    return ids


def check_seq2seq_eval(data: DataConfig) -> None:
    for eval_set in data.eval:
        if eval_set.kind != "natural":
            raise ConfigError(
                f"data.eval '{eval_set.name}': seq2seq objectives evaluate natural stores "
                f"only; score synthetic "
                "tasks as input/target pairs with mode: ft (finetune.valid: the synthetic "
                "dataset dir)"
            )
