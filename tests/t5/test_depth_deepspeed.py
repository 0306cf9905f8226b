"""The DEPTH paper's runs trained under DeepSpeed ZeRO-2 in its bf16 mode (bf16 weights and
activations, fp32 master weights): the paper construction runs so through the shipped
``deepspeed_zero2.yaml`` and the real ``accelerate launch`` (two CPU processes over gloo), and
the engine DeepSpeed set up, read back from it into ``synthlm.json``, is that mode."""

from __future__ import annotations

import math

import pytest
from t5_run_helpers import pt_config, read_records, write_config
from transformers import AutoModelForSeq2SeqLM

from deepspeed_helpers import assert_engine, needs_deepspeed, require_deepspeed_cpu_op, zero2

pytestmark = pytest.mark.slow


@needs_deepspeed
def test_depth_paper_construction_trains_in_deepspeeds_bf16_mode(tmp_path, t5_data):
    require_deepspeed_cpu_op()
    objective = {"name": "depth", "max_sentences": 6, "splitter": "rules", "construction": "paper"}
    config = pt_config(
        tmp_path,
        t5_data,
        objective,
        data={"seq_len": 128, "packing": False},
        train={
            "max_steps": 8,
            "batch_size": 4,
            "global_batch_size": 16,  # 2 processes x 4 x 2 accumulation steps, as 4 x 25 x 2
            "precision": "bf16",
            "loss_average": "micro_batch",
            "checkpoint_every": 0,
        },
    )
    zero2(write_config(tmp_path / "depth.yaml", config), "bf16")
    run = tmp_path / "run"
    assert_engine(run, 2, "bf16")
    rows = [r for r in read_records(run) if "loss" in r]
    losses = [r["loss"] for r in rows]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses) and losses[1] < losses[0]
    assert all(r["sentence_loss"] > 0 for r in rows)
    model = AutoModelForSeq2SeqLM.from_pretrained(run / "final")
    assert type(model).__name__ == "T5ForConditionalGeneration"
