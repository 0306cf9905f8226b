"""The shipped EntiGraph configs resolve to the original's training settings.

Expected values are the original's (scripts/train.sh of ZitongYang/Synthetic_Continued_Pretraining
and the HF Trainer defaults it relies on), written out here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synthlm.config import load_config
from synthlm.train.config import RunConfig

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
PAPER_CORPUS_TOKENS = 455_000_000


def resolved(name: str) -> RunConfig:
    return load_config(RunConfig, [CONFIGS / name])


@pytest.mark.parametrize("name", ["entigraph_cpt.yaml", "instruct_ultrachat.yaml"])
def test_optimizer_is_the_originals(name):
    cfg = resolved(name)
    assert cfg.optim.name == "adamw" and tuple(cfg.optim.betas) == (0.9, 0.999)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.eps) == (5e-6, 0.01, 1e-8)
    assert (cfg.schedule.name, cfg.schedule.warmup_ratio) == ("cosine", 0.05)
    assert cfg.data.seq_len == 2048


def test_cpt_budget_is_two_corpora_in_total():
    cfg = resolved("entigraph_cpt.yaml")
    assert cfg.train.max_tokens == 2 * PAPER_CORPUS_TOKENS
    assert cfg.train.global_batch_size == 16
    weights = {s.name: s.weight for s in cfg.data.sources}
    assert weights == {"entigraph": 0.9, "replay": 0.1}


def test_instruct_recipe_packs_blocks_with_loss_on_all_tokens():
    cfg = resolved("instruct_ultrachat.yaml")
    assert cfg.data.packing is True and cfg.objective.name == "sft"
    assert cfg.objective.options()["train_on"] == "all"
    assert (cfg.train.global_batch_size, cfg.train.epochs) == (128, 2)


@pytest.mark.parametrize("name", ["entigraph_cpt.yaml", "instruct_ultrachat.yaml"])
def test_schedule_clipping_and_precision_are_the_originals(name):
    """scripts/train.sh: --lr_scheduler_type cosine (HF: decays to 0), --bf16=True; the HF
    TrainingArguments default max_grad_norm is 1.0."""
    cfg = resolved(name)
    assert cfg.schedule.final_lr_ratio == 0.0 and cfg.schedule.warmup_start == 0.0
    assert cfg.train.clip_grad == 1.0 and cfg.train.precision == "bf16"


def test_instruct_has_no_replay_and_starts_from_the_cpt_checkpoint():
    """data/cptdata.py: task 'instruct' trains on the UltraChat blocks alone."""
    cfg = resolved("instruct_ultrachat.yaml")
    assert [s.name for s in cfg.data.sources] == ["ultrachat"]
    assert str(cfg.model.init_from) == "runs/entigraph-cpt/final"
