"""Every shipped T5 example config validates, in the mode and with the objective it names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthlm.train import load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


@pytest.mark.parametrize(
    ("files", "mode", "objective"),
    [
        (["t5_span_corruption.yaml"], "pt", "span_corruption"),
        (["t5_depth.yaml"], "pt", "depth"),
        (["t5_glue.yaml"], "ft", "text_to_text"),
        (["t5_synthetic_pairs.yaml"], "ft", "text_to_text"),
    ],
)
def test_shipped_t5_configs_validate(files, mode, objective):
    config = load_run_config([CONFIGS / f for f in files])
    assert (config.mode, config.objective.name, config.model.arch) == (mode, objective, "t5")


def test_every_t5_example_is_covered():
    assert {p.name for p in CONFIGS.glob("t5_*.yaml")} == {
        "t5_span_corruption.yaml",
        "t5_depth.yaml",
        "t5_glue.yaml",
        "t5_synthetic_pairs.yaml",
    }


def test_nanot5_base_is_nanot5s_default_run():
    """nanoT5/configs/default.yaml: t5-v1_1-base, C4, input 512 at density 0.15 / span 3,
    adamwscale 2e-2 no decay, cosine (10k warmup from half the peak, floor 1e-5), 65,536 steps
    of 128, clip 1.0, bf16, seed 2137."""
    c = load_run_config([CONFIGS / "nanot5_base.yaml"])
    assert (c.seed, c.model.arch, c.model.preset, c.data.seq_len) == (2137, "t5", "base", 512)
    assert c.objective.name == "span_corruption"
    assert c.objective.options() == {"noise_density": 0.15, "mean_noise_span_length": 3.0}
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay) == ("adamwscale", 2e-2, 0.0)
    s = c.schedule
    assert (s.name, s.warmup_steps, s.warmup_start) == ("cosine", 10_000, 0.5)
    assert s.final_lr_ratio * c.optim.lr == pytest.approx(1e-5)
    t = c.train
    assert (t.max_steps, t.global_batch_size, t.clip_grad, t.precision) == (
        65_536,
        128,
        1.0,
        "bf16",
    )
    # nanoT5: accelerator.backward(outputs.loss / grad_acc), HF T5's loss a mean per micro-batch
    assert t.loss_average == "micro_batch"
    # gen_utils.opti_flags sets allow_tf32 on matmuls: torch names that precision "high"
    before = torch.get_float32_matmul_precision()
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        assert t.matmul_precision == torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


def test_depth_paper_is_the_depth_codes_from_scratch_run():
    """DEPTH run_pre_training_depth_from_scratch.sh + hydra default.yaml: t5-v1_1-base, one
    document per example, density 0.3 / span 3, 20 sentences, shuffle 0.5, NLTK punkt;
    AdamW (torch: betas 0.9/0.999, eps 1e-8) 1e-4 no decay, linear to 0 after 10k warmup,
    batch 200, 1M steps, clip 1.0 (HF Trainer default), bf16, seed 2137."""
    c = load_run_config([CONFIGS / "depth_paper.yaml"])
    assert (c.seed, c.model.arch, c.model.preset, c.data.seq_len, c.data.packing) == (
        2137,
        "t5",
        "base",
        512,
        False,
    )
    o = c.objective.options()
    assert c.objective.name == "depth" and (o["construction"], o["splitter"]) == ("paper", "nltk")
    assert (o["noise_density"], o["mean_noise_span_length"], o["max_sentences"]) == (0.3, 3.0, 20)
    assert (o["sentence_shuffling_probability"], o["hierarchical_attention"]) == (0.5, True)
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.betas, c.optim.eps) == (
        "adamw",
        1e-4,
        0.0,
        (0.9, 0.999),
        1e-8,
    )
    s = c.schedule
    assert (s.name, s.warmup_steps, s.warmup_start, s.final_lr_ratio) == (
        "linear",
        10_000,
        0.0,
        0.0,
    )
    t = c.train
    assert (t.max_steps, t.global_batch_size, t.clip_grad, t.precision) == (
        1_000_000,
        200,
        1.0,
        "bf16",
    )
    # transformers 4.37's Trainer: each micro-batch's mean loss, divided by the accumulation steps
    assert t.loss_average == "micro_batch"
    # setup_utils.opti_flags: allow_tf32 on matmuls, as nanoT5's (see above)
    assert t.matmul_precision == "high"
    # model_utils: validation_set.take(dataset.validation_set.num_examples=20_000)
    (valid,) = c.data.eval
    assert valid.max_documents == 20_000 and valid.max_tokens >= 20_000 * c.data.seq_len
    # train_encoder_decoder.py: per_device_eval_batch_size = 25 * 4 (one shuffle decision per
    # collate call of 100), and load_best_model_at_end by the validation loss
    assert t.eval_batch_size == 4 * t.batch_size == 100
    assert (t.keep_best.k, t.keep_best.metric, t.keep_best.mode) == (1, "eval/c4_valid/loss", "min")


def test_depth_t5_baseline_is_the_depth_codes_t5_run():
    """DEPTH run_pre_training_t5_from_scratch.sh (the active inverse_sqrt command) + hydra
    default.yaml: hf_t5 from random init, custom_t5 collator with mlm_probability 0.3 and mean
    span 3 over input_length 512, adamw_torch 1e-4 (no decay), inverse_sqrt after 10,000 warmup
    steps, 1M steps of 200 = 4 GPUs x 25 x grad_acc 2, bf16, seed 2137; evaluation every 1,000
    steps on 20,000 validation examples; checkpoints every 10,000."""
    from synthlm.objectives.t5_noise import raw_length_for

    c = load_run_config([CONFIGS / "depth_t5_baseline.yaml"])
    assert (c.seed, c.model.arch, c.model.preset, c.model.init_from) == (2137, "t5", "base", None)
    # model_utils.py: resize_token_embeddings(32100, pad_to_multiple_of=8) -> 32,104 rows
    assert -(-32100 // c.model.vocab_multiple) * c.model.vocab_multiple == 32104
    o = c.objective.options()
    assert c.objective.name == "span_corruption"
    assert (o["noise_density"], o["mean_noise_span_length"]) == (0.3, 3.0)
    assert raw_length_for(c.data.seq_len, 0.3, 3.0)[0] == 512  # the code's 512-token pieces
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.betas, c.optim.eps) == (
        "adamw", 1e-4, 0.0, (0.9, 0.999), 1e-8
    )  # fmt: skip
    assert (c.schedule.name, c.schedule.warmup_steps) == ("inverse_sqrt", 10_000)
    t = c.train
    assert (t.max_steps, t.global_batch_size, t.batch_size, t.eval_batch_size) == (
        1_000_000, 200, 25, 100
    )  # fmt: skip
    assert (t.precision, t.clip_grad, t.eval_every, t.checkpoint_every) == (
        "bf16",
        1.0,
        1000,
        10_000,
    )
    (valid,) = c.data.eval
    assert valid.max_tokens == 20_000 * 512


def test_depth_glue_is_the_depth_codes_sst2_run():
    """DEPTH run_fine_tuning_depth_sst2_from_pretrained.sh + hydra default.yaml: input length
    272, target 8, bf16, DEPTH model and collator, 3,000 steps, lr 1e-5, batch 128 on 2 GPUs,
    300 warmup steps, linear schedule, evaluation every 200 steps, logging every 50; AdamW
    (torch), no decay, clipping 1.0, dropout 0, seed 2137; the best model by validation loss."""
    c = load_run_config([CONFIGS / "depth_glue.yaml"])
    f = c.finetune
    assert (c.mode, c.seed, c.model.arch, c.model.overrides) == (
        "ft",
        2137,
        "t5",
        {"dropout_rate": 0.0},
    )
    assert (f.task, f.prompts, f.eval_protocol) == ("sst2", "depth", "teacher_forced")
    assert (f.depth_inputs.splitter, f.depth_inputs.max_sentences) == ("nltk", 20)
    assert (f.max_input_length, f.max_target_length) == (272, 8)
    # the Trainer's DistributedSampler without drop_last: each epoch ends with a short step
    assert f.epoch_batches == "per_epoch"
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.betas, c.optim.eps) == (
        "adamw",
        1e-5,
        0.0,
        (0.9, 0.999),
        1e-8,
    )
    s = c.schedule
    assert (s.name, s.warmup_steps, s.warmup_start, s.final_lr_ratio) == ("linear", 300, 0.0, 0.0)
    t = c.train
    assert (t.max_steps, t.batch_size, t.global_batch_size, t.eval_batch) == (3000, 64, 128, 256)
    assert (t.precision, t.clip_grad, t.loss_average) == ("bf16", 1.0, "micro_batch")
    assert (t.eval_every, t.log_every) == (200, 50)
    assert (t.keep_best.k, t.keep_best.metric, t.keep_best.mode) == (1, "eval/valid/loss", "min")


def test_depth_ni_is_the_depth_codes_natural_instructions_run():
    """DEPTH run_fine_tuning_depth_ni_from_scratch.sh + hydra default.yaml + model_utils.py's
    DataCollatorForNI(max_source_length=512, max_target_length=128, definition + 2 positive
    examples) over the DEPTH tokenizer (its fit check always passes, sentence ids shuffled,
    labels padded to 128 and trained); ni_dataset.py with 100 instances per task; 3 epochs of
    64 on 2 GPUs at 1e-4, constant, no warmup; evaluation every 100 steps on the test tasks
    scored by ROUGE-L of the teacher-forced argmax; the best model by validation loss."""
    c = load_run_config([CONFIGS / "depth_ni.yaml"])
    f, ni = c.finetune, c.finetune.natural_instructions
    assert (c.mode, c.seed, c.model.arch, c.model.overrides) == (
        "ft",
        2137,
        "t5",
        {"dropout_rate": 0.0},
    )
    assert (ni.split, ni.max_num_instances_per_task, ni.max_num_instances_per_eval_task) == (
        "default",
        100,
        100,
    )
    assert (ni.add_task_name, ni.add_task_definition, ni.add_explanation) == (False, True, False)
    assert (ni.num_pos_examples, ni.num_neg_examples, ni.example_fit) == (2, 0, "always")
    # its collator never decodes a cut prompt; its scorer's batch_decode cleans up (4.37)
    assert (ni.long_prompt_cut, f.scored_text) == ("first_ids", "cleaned_up")
    d = f.depth_inputs
    assert (d.splitter, d.max_sentences, d.sentence_ids, d.eos) == ("nltk", 20, "shuffled", False)
    assert (f.target_padding, f.eval_protocol, f.metrics) == (
        "trained",
        "teacher_forced",
        ["rouge_l_stemmed"],
    )
    assert (f.max_input_length, f.max_target_length, f.epoch_batches) == (512, 128, "per_epoch")
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.betas, c.optim.eps) == (
        "adamw",
        1e-4,
        0.0,
        (0.9, 0.999),
        1e-8,
    )
    assert (c.schedule.name, c.schedule.warmup_steps) == ("constant", 0)
    t = c.train
    assert (t.epochs, t.batch_size, t.global_batch_size, t.eval_batch) == (3, 32, 64, 128)
    assert (t.precision, t.clip_grad, t.loss_average) == ("bf16", 1.0, "micro_batch")
    assert (t.eval_every, t.log_every) == (100, 50)
    assert (t.keep_best.k, t.keep_best.metric, t.keep_best.mode) == (1, "eval/valid/loss", "min")


def test_nanot5_sni_is_nanot5s_fine_tuning_run():
    """nanoT5 configs/task/ft.yaml over default.yaml: SNI with definition + 2 positive
    examples, 100 instances per task, inputs 1024 / targets 128; transformers' AdamW (eps 1e-6)
    at 5e-5, no decay, constant, no clipping, 2 epochs of 8, precision 'no' with TF32, dropout 0,
    seed 2137; ROUGE-L with the stemmer at the end."""
    c = load_run_config([CONFIGS / "nanot5_sni.yaml"])
    f, ni = c.finetune, c.finetune.natural_instructions
    assert (c.mode, c.seed, c.model.overrides) == ("ft", 2137, {"dropout_rate": 0.0})
    assert (ni.split, ni.max_num_instances_per_task, ni.max_num_instances_per_eval_task) == (
        "default",
        100,
        100,
    )
    assert (ni.add_task_name, ni.add_task_definition, ni.add_explanation) == (False, True, False)
    assert (ni.num_pos_examples, ni.num_neg_examples, ni.example_fit) == (2, 0, "within")
    assert (f.max_input_length, f.max_target_length, f.metrics) == (1024, 128, ["rouge_l_stemmed"])
    assert f.epoch_batches == "per_epoch"  # total_steps = len(train_dataloader) x epochs
    # copied_utils.DataCollatorForNI and train_utils.predict: text made back from ids
    assert (ni.long_prompt_cut, f.scored_text) == ("retokenized_text", "cleaned_up")
    # train_utils.py: generate(max_length=128) counts the decoder start token
    assert f.max_new_tokens == f.max_target_length - 1 == 127
    # utils/model_utils.py: transformers.AdamW (eps before the bias correction), not torch's
    assert (c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.eps) == (
        "hf_adamw",
        5e-5,
        0.0,
        1e-6,
    )
    assert (c.schedule.name, c.schedule.warmup_steps) == ("constant", 0)
    t = c.train
    assert (t.epochs, t.batch_size, t.clip_grad, t.precision) == (2, 8, None, "fp32")
    assert (t.matmul_precision, t.eval_every) == ("high", 0)


def test_synthetic_pairs_config_fits_the_dataset_its_header_generates(tmp_path):
    """t5_synthetic_pairs.yaml says to generate examples/synth/wu2022.yaml into data/wu2022: its
    model.num_meta_tokens must cover that dataset's ids (it once lagged the spec and was
    refused before step 0), and its length limits every pair with its EOS (max_target_length
    was once 256, cutting duplicate's k=2 answers of up to 440 ids)."""
    import json

    from synthlm.synth import build_dataset, load_spec, load_synthetic

    spec = CONFIGS.parent / "synth" / "wu2022.yaml"
    header = (CONFIGS / "t5_synthetic_pairs.yaml").read_text(encoding="utf-8")
    assert f"synth generate examples/synth/{spec.name} --out data/wu2022" in header
    build_dataset(load_spec(spec, num_tokens=100_000), tmp_path / "wu2022", quiet=True)
    manifest = json.loads((tmp_path / "wu2022" / "manifest.json").read_text(encoding="utf-8"))
    config = load_run_config([CONFIGS / "t5_synthetic_pairs.yaml"])
    assert config.model.num_meta_tokens >= manifest["layout"]["vocab_size"]
    dataset = load_synthetic(tmp_path / "wu2022")
    examples = [e for split in ("train", "valid") for e in dataset.examples(split)]
    ft = config.finetune
    assert max(len(e.prompt) for e in examples) + 1 <= ft.max_input_length
    assert max(len(e.answer) for e in examples) + 1 <= ft.max_target_length


def test_synthetic_pairs_lengths_cover_wu2022s_longest_examples():
    """At the header's 50M tokens the longest prompt is 222 ids and the longest answer 440
    (duplicate, k=2, of a 220-token input): with EOS, 223 and 441 (measured with
    ``synthlm synth generate examples/synth/wu2022.yaml --tokens 50M``)."""
    ft = load_run_config([CONFIGS / "t5_synthetic_pairs.yaml"]).finetune
    assert (ft.max_input_length, ft.max_target_length) == (256, 448)


def test_max_new_tokens_sets_the_generation_limit_and_defaults_to_the_target_length():
    from types import SimpleNamespace

    from synthlm.data.mixture import ModelVocab
    from synthlm.train.seq2seq_eval import generation_settings

    sni = load_run_config([CONFIGS / "nanot5_sni.yaml"]).finetune
    layout = ModelVocab(natural_size=32000, meta_offset=32000, meta_size=0, model_vocab_size=32128)
    objective = SimpleNamespace(eos_id=1, pad_id=0)
    for finetune, limit in ((sni, 127), (sni.model_copy(update={"max_new_tokens": None}), 128)):
        plan = SimpleNamespace(
            finetune=SimpleNamespace(config=finetune), objective=objective, layout=layout
        )
        assert generation_settings(plan, 8, "text").max_new_tokens == limit
