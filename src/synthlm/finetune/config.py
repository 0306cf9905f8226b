"""The ``finetune`` section: input/target pair data for ``mode: ft`` (text-to-text training)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from synthlm.config import Section

PairFormat = Literal["auto", "jsonl", "json", "csv", "tsv", "parquet", "synthetic"]


class FinetuneConfig(Section):
    """Where the pairs come from and how they become token ids and metrics."""

    train: Path | None = Field(
        None,
        description="Training pairs: a jsonl/json/csv/tsv/parquet file, or a synthetic "
        "dataset dir (its train split).",
    )
    valid: Path | None = Field(
        None,
        description="Evaluation pairs (metrics during and after training, eval_only); a "
        "synthetic dir uses its valid split.",
    )
    test: Path | None = Field(
        None,
        description="Pairs for predict_only (default: valid); labels optional; a "
        "synthetic dir uses its test split.",
    )
    format: PairFormat = Field(
        "auto",
        description="File format; auto: from the extension (.jsonl .json .csv .tsv "
        ".parquet), or synthetic for a dir with manifest.json.",
    )
    task: str | None = Field(
        None,
        description="A GLUE task (sst2, cola, rte, mnli, qnli, mrpc, qqp, stsb): field "
        "names, T5 prefixes, label words and metrics from the task table.",
    )
    input_field: str = Field("input", description="Column holding the input text (without a task).")
    target_field: str = Field(
        "target", description="Column holding the target text (without a task)."
    )
    prefix: str = Field(
        "", description="Text put before every input (without a task), e.g. 'summarize: '."
    )
    max_input_length: int = Field(
        512,
        gt=1,
        description="Input tokens kept per example, EOS included (longer inputs are cut).",
    )
    max_target_length: int = Field(
        128,
        gt=1,
        description="Target tokens kept per example, EOS included; also the generation limit.",
    )
    metrics: list[str] | None = Field(
        None,
        description="Metrics on generated outputs; default: the task's, else exact_match "
        "and rouge_l (synthetic: accuracy).",
    )
    max_eval_examples: int | None = Field(
        None,
        gt=0,
        description="Evaluate on the first N valid pairs only (generation is the slow part).",
    )
    num_beams: int = Field(1, gt=0, description="Beam search width for predictions (1: greedy).")
    tokenizer: str | None = Field(
        None,
        description="Tokenizer dir; default: model.init_from (a synthlm run's final/ "
        "holds its extended tokenizer).",
    )
