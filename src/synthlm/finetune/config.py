"""The ``finetune`` section: input/target pair data for ``mode: ft`` (text-to-text training)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from synthlm.config import Section

PairFormat = Literal[
    "auto", "jsonl", "json", "csv", "tsv", "parquet", "synthetic", "natural_instructions"
]


class NaturalInstructionsConfig(Section):
    """Super-NaturalInstructions as Tk-Instruct and nanoT5 read it (``finetune.natural_
    instructions``; defaults: nanoT5's ``configs/task/ft.yaml``)."""

    split: str = Field(
        "default", description="splits/<split>/ of the checkout: train_tasks.txt, test_tasks.txt."
    )
    max_num_instances_per_task: int | None = Field(
        100, gt=0, description="Instances drawn per training task (null: all)."
    )
    max_num_instances_per_eval_task: int | None = Field(
        100,
        gt=0,
        description="Instances drawn per test task, from its first 100 (null: those 100).",
    )
    add_task_name: bool = Field(False, description="Start the prompt with the task's name.")
    add_task_definition: bool = Field(True, description="Put the task's definition first.")
    num_pos_examples: int = Field(2, ge=0, description="Positive examples shown (as fit).")
    num_neg_examples: int = Field(0, ge=0, description="Negative examples shown (as fit).")
    add_explanation: bool = Field(False, description="Show the examples' explanations.")
    tk_instruct: bool = Field(
        False,
        description="Each time an instance is used, one of Tk-Instruct's five encodings at "
        "random (definition only; 2 positive examples only; definition + 2 positive; "
        "definition + 2 positive + 2 negative; definition + 2 positive with explanations), "
        "in place of the add_* / num_* settings: the collator's tk_instruct=True (off in "
        "nanoT5's and the DEPTH code's runs).",
    )
    example_fit: Literal["within", "below", "always"] = Field(
        "within",
        description="When an example joins the prompt: within (its token count, </s> "
        "included, at most finetune.max_input_length: Tk-Instruct and nanoT5), below (under "
        "it: the DEPTH code's collator with a T5 tokenizer) or always (the DEPTH code's "
        "collator with its DEPTH tokenizer, whose check measures a one-row batch and so always "
        "passes; the input is then cut at the length limit).",
    )
    long_prompt_cut: Literal["first_ids", "retokenized_text"] = Field(
        "first_ids",
        description="How a prompt over finetune.max_input_length tokens (</s> counted) is cut: "
        "first_ids (its first max_input_length - 1 ids, then </s>, as a tokenizer's "
        "truncation cuts: the DEPTH code's collator, whose decode branch never runs) or "
        "retokenized_text (nanoT5's DataCollatorForNI: the first max_input_length ids "
        "decoded without special tokens, so <unk> pieces vanish, with transformers' "
        "clean-up, and that text tokenized again and cut the first way). Prompts that fit "
        "are the same either way.",
    )
    breakdown: list[Literal["category", "task"]] = Field(
        default_factory=list,
        description="Also score every evaluation per task category (the first of a task's "
        "Categories, lower case, spaces as _) and / or per task, as Tk-Instruct's and the "
        "benchmark's evaluation do (compute_grouped_metrics): eval/<set>/<metric>/category/"
        "<category>, eval/<set>/<metric>/task/<task>.",
    )


class DepthInputsConfig(Section):
    """Inputs as the DEPTH code fine-tunes a DEPTH model (``finetune.depth_inputs``).

    The input text is split into sentences, each marked ``<eosen> <sent_i>`` with the sentence
    tokens in order (``<sent_0>``, ``<sent_1>``, ...), then a closing ``<eosen>``;
    ``<sent_i>`` and ``<eosen>`` tokens attend only to the tokens of their sentence, other
    tokens to the whole input (:mod:`synthlm.finetune.depth_inputs`)."""

    splitter: str = Field(
        "pysbd",
        description="Sentence splitter (synthlm.text.sentences): pysbd, rules or nltk (the "
        "DEPTH code's; needs punkt_tab).",
    )
    max_sentences: int = Field(
        20, ge=1, description="Sentences kept per input (the rest of the text is dropped)."
    )
    eos: bool = Field(
        False,
        description="End inputs with </s> after the closing <eosen>. The DEPTH code's have "
        "none (its tokenizer pads the text before appending </s>, so the cut to the input "
        "length removes it); true suits models pretrained with objective.construction: "
        "synthlm, whose inputs end with </s>.",
    )
    num_sentinels: int = Field(
        100,
        ge=0,
        description="Sentinels of the pretraining objective: a synthlm DEPTH tokenizer holds "
        "<eosen> and <sent_i> as the extra ids right after them.",
    )
    sentence_ids: Literal["ordered", "shuffled"] = Field(
        "ordered",
        description="Which <sent_i> marks each sentence: ordered (<sent_0>, <sent_1>, ...: the "
        "DEPTH code's GLUE and DiscoEval runs) or shuffled (a random draw of the sentence "
        "tokens, anew each epoch for training pairs and once per evaluation pair: its "
        "Natural Instructions runs, whose collator keeps the DEPTH tokenizer's shuffle).",
    )


# where a plain text pair's input and target come from (read only without a task)
COLUMN_KEYS = ("input_field", "target_field", "prefix")


class FinetuneConfig(Section):
    """Where the pairs come from and how they become token ids and metrics."""

    train: Path | None = Field(
        None,
        description="Training pairs: a jsonl/json/csv/tsv/parquet file, a synthetic "
        "dataset dir (its train split), or a natural-instructions checkout (its training "
        "tasks).",
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
        ".parquet), synthetic for a dir with manifest.json, natural_instructions for a dir "
        "with tasks/ and splits/ (valid and test read its test tasks).",
    )
    natural_instructions: NaturalInstructionsConfig | None = Field(
        None,
        description="How natural-instructions prompts are built (default when the data is a "
        "natural-instructions checkout: nanoT5's and Tk-Instruct's settings).",
    )
    task: str | None = Field(
        None,
        description="A task of the prompt table (GLUE: sst2, cola, rte, mnli, qnli, mrpc, qqp, "
        "stsb; depth also DiscoEval: SParxiv, SProcstory, SPwiki, BSOarxiv, BSOrocstory, "
        "BSOwiki, DCchat, DCwiki, SSPabs, PDTB_E, PDTB_I, RST): field names, prompts, label "
        "words and metrics.",
    )
    prompts: Literal["t5", "depth"] = Field(
        "t5",
        description="Prompt table of finetune.task: t5 (the T5 paper's) or depth (the DEPTH "
        "code's GLUE and DiscoEval prompts, docs/papers/depth.md).",
    )
    depth_inputs: DepthInputsConfig | None = Field(
        None,
        description="Mark input sentences with DEPTH's <eosen>/<sent_i> tokens and hierarchical "
        "encoder attention, as the DEPTH code fine-tunes DEPTH models; null: plain T5 inputs.",
    )
    eval_protocol: Literal["generate", "teacher_forced"] = Field(
        "generate",
        description="How valid pairs are scored: generate (decode, then compare), or "
        "teacher_forced (the argmax at each target position given the reference prefix; an "
        "answer outside the label words counts as a wrong label), the DEPTH code's protocol.",
    )
    target_padding: Literal["masked", "trained"] = Field(
        "masked",
        description="Padding after a target's </s>: masked (never a target) or trained (every "
        "target padded to max_target_length and each pad trained and scored as a target: the "
        "DEPTH code's Natural Instructions runs with a DEPTH model).",
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
        description="Target tokens kept per example, EOS included; also the generation limit "
        "unless max_new_tokens sets one.",
    )
    max_new_tokens: int | None = Field(
        None,
        gt=0,
        description="Tokens a generated output may have (null: max_target_length). nanoT5's "
        "generate(max_length=128) counts the decoder's start token: 127 new ones.",
    )
    scored_text: Literal["decoded", "cleaned_up"] = Field(
        "decoded",
        description="The texts text-pair metrics compare: decoded (the output as the "
        "tokenizer decodes it, special tokens skipped, against the reference as written, "
        "or decoded from its ids when cut to max_target_length) or cleaned_up (nanoT5's "
        "predict: output and reference both decoded from their ids without special tokens "
        "and put through transformers' clean_up_tokenization, so 'do n't' reads 'don't' "
        "and 'care .' 'care.': ROUGE then counts other words).",
    )
    metrics: list[str] | None = Field(
        None,
        description="Metrics on generated outputs (synthlm.finetune.metrics: accuracy, "
        "exact_match, f1, rouge_l, rouge_l_stemmed, matthews_corr, pearson, spearman; "
        "rouge_l_stemmed_max and exact_match_max score against every reference of a "
        "natural-instructions instance); default: the task's, else exact_match and rouge_l "
        "(synthetic: accuracy).",
    )
    epoch_batches: Literal["continuous", "per_epoch"] = Field(
        "continuous",
        description="continuous: the passes over the training pairs are one stream. per_epoch: "
        "each pass ends with its own short batch, pairs dealt as torch's DistributedSampler "
        "deals them (a DataLoader without drop_last, as nanoT5 and PyTorch Lightning run).",
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

    def column_keys_set(self) -> list[str]:
        """The column keys (``input_field``, ``target_field``, ``prefix``) set to other than
        their defaults: only plain text pairs without a task read them."""
        return self.changed_from_default(COLUMN_KEYS)

    @model_validator(mode="after")
    def _a_task_reads_its_own_columns(self) -> FinetuneConfig:
        keys = self.column_keys_set()
        if self.task is not None and keys:
            raise ValueError(
                f"finetune.task: {self.task} builds each input and target from the task's own "
                f"columns and prompts, so finetune.{', finetune.'.join(keys)} would not be "
                "read; remove it (or drop finetune.task to read the columns you name)"
            )
        return self

    @model_validator(mode="after")
    def _prompts_need_a_task(self) -> FinetuneConfig:
        if self.prompts != "t5" and self.task is None:
            raise ValueError(
                f"prompts: {self.prompts} picks the prompts of finetune.task; set "
                "finetune.task (or remove finetune.prompts)"
            )
        return self

    @model_validator(mode="after")
    def _depth_inputs_cut_their_own_way(self) -> FinetuneConfig:
        settings = self.natural_instructions
        if (
            self.depth_inputs is not None
            and settings is not None
            and settings.long_prompt_cut == "retokenized_text"
        ):
            raise ValueError(
                "natural_instructions.long_prompt_cut: retokenized_text re-tokenizes plain T5 "
                "prompts, but finetune.depth_inputs marks sentences and cuts at its own limits "
                "(neither the DEPTH code nor nanoT5 combines the two); use first_ids"
            )
        return self
