"""The run config: shipped examples validate, YAMLs merge with overrides, --dry-run plans."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from train_helpers import synthlm, tiny_config, write_config

from synthlm.errors import ConfigError
from synthlm.models import build_model, count_parameters
from synthlm.train import RunConfig, load_run_config, plan_run
from synthlm.train.run_plan import total_steps

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    config = load_run_config([path])
    assert isinstance(config, RunConfig) and (
        config.data.sources if config.mode == "pt" else config.finetune
    )


@pytest.mark.parametrize(
    "files",
    [
        ["pythia14m_metalang.yaml"],  # isen-zhang/metalang pretrain/data/dataset.py
        [
            "../pre_pretraining/gpu_hu2025_base.yaml",
            "../pre_pretraining/gpu_hu2025_shuffle_dyck.yaml",
        ],
    ],
)
def test_reproduction_configs_pack_like_their_originals(files):
    """Both originals concatenate every document (natural and synthetic) with EOS into blocks
    under one causal mask: nothing may be document-masked, whatever synthlm's default is."""
    from synthlm.train.run_plan import masked_documents

    config = load_run_config([EXAMPLES / f for f in files])
    assert any(s.kind == "synthetic" for s in config.data.sources)
    assert masked_documents(config.objective, config.data) == frozenset()


def test_hu2025_configs_are_the_references_paper_run():
    """michahu/pre-pretraining at 6444ef0: train.py's defaults (seed 3407, bsz 16 x
    gradient_accumulation_steps 2 of 2048 tokens, lr 5e-4, 500 warmup, cosine_with_min_lr 0.1,
    max_steps 5000) and the HF Trainer's (AdamW 0.9/0.999, eps 1e-8, no weight decay, clip 1.0);
    stage 1 = src/grammar.py generate_shuff_dyck(64, 2048, 0.5, max_depth=16) for 500 steps
    (scripts/train.sh), one sequence per row and no promoter."""
    base = EXAMPLES.parent / "pre_pretraining" / "gpu_hu2025_base.yaml"
    c = load_run_config([base, base.with_name("gpu_hu2025_shuffle_dyck.yaml")])
    assert (c.seed, c.model.arch, c.model.preset, c.data.seq_len) == (
        3407,
        "gpt_neox",
        "160m",
        2048,
    )
    o, s, t = c.optim, c.schedule, c.train
    assert (o.name, o.lr, o.weight_decay, o.betas, o.eps) == (
        "adamw",
        5e-4,
        0.0,
        (0.9, 0.999),
        1e-8,
    )
    assert (s.name, s.warmup_steps, s.warmup_start, s.final_lr_ratio) == ("cosine", 500, 0.0, 0.1)
    assert (t.batch_size, t.global_batch_size, t.clip_grad, t.max_steps) == (16, 32, 1.0, 500)
    (source,) = c.data.sources
    assert source.spec["promoter_length"] == 0
    (domain,) = source.spec["domains"]
    assert domain == {
        "type": "hu_shuffle_dyck",
        "k": 64,
        "length": 2048,
        "p_open": 0.5,
        "max_depth": 16,
    }
    c4 = load_run_config([base, base.with_name("gpu_hu2025_c4_only.yaml")])
    assert c4.train.max_steps == 5_000


def test_pythia160m_is_the_pythia_suites_recipe():
    """EleutherAI/pythia models/160M/pythia-160m.yml (GPT-NeoX): 12 x 768, rotary 25%, parallel
    residual, untied; init_method small_init, output_layer_init_method wang_init; bias-gelu
    fusion (tanh GELU); Adam lr 6e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1, min_lr
    6e-5, cosine, warmup 0.01 of 143000 iterations; 32 GPUs x 32 sequences of 2048; clip 1.0;
    fp16 with loss_scale 0 (dynamic), initial_scale_power 12, loss_scale_window 1000,
    hysteresis 2, min_loss_scale 1; seed 1234 (GPT-NeoX's default); samples of seq_length + 1
    tokens sharing their boundary, shuffled (megatron's GPTDataset)."""
    from synthlm.models import model_config

    c = load_run_config([EXAMPLES / "pythia160m.yaml"])
    assert (c.seed, c.model.arch, c.model.preset, c.model.init) == (
        1234,
        "gpt_neox",
        "160m",
        "neox",
    )
    hf = model_config(c.model, vocab_size=50304)
    assert (hf.hidden_size, hf.num_hidden_layers, hf.num_attention_heads) == (768, 12, 12)
    assert hf.rope_parameters["partial_rotary_factor"] == 0.25 and hf.use_parallel_residual
    assert hf.hidden_act == "gelu_pytorch_tanh" and not hf.tie_word_embeddings
    o, s, t = c.optim, c.schedule, c.train
    assert (o.name, o.lr, o.betas, o.eps, o.weight_decay) == ("adamw", 6e-4, (0.9, 0.95), 1e-8, 0.1)
    assert (s.name, s.warmup_ratio, s.final_lr_ratio) == ("neox_cosine", 0.01, 0.1)
    assert s.warmup(143_000) == 1430
    assert (t.max_steps, t.global_batch_size, c.data.seq_len) == (143_000, 32 * 32, 2048)
    assert c.data.shared_boundary, "GPTDataset's samples are seq_length + 1 tokens"
    assert c.data.shuffle_windows, "GPTDataset shuffles its samples (shuffle_idx)"
    assert (t.clip_grad, t.precision) == (1.0, "fp16")
    assert t.loss_scale.deepspeed_fp16() == {
        "loss_scale": 0,
        "initial_scale_power": 12,
        "loss_scale_window": 1000,
        "hysteresis": 2,
        "min_loss_scale": 1,
    }


def test_the_seqthetic_reproduction_config_says_what_the_issue_asks():
    """isen-zhang/metalang at aa50bbb, pretrain/: the README command's
    --per_device_train_batch_size 128 on 8 GPUs with the code's own split_batches=True
    (pretrain.py), which transformers 4.x hands to Accelerate: one batch of 128 split over the
    GPUs; labels = input ids (data/dataset.py: every token a target); the meta-language data is
    syn_data.py's five task configs."""
    import re

    config = load_run_config([EXAMPLES / "pythia14m_metalang.yaml"])
    text = (EXAMPLES / "pythia14m_metalang.yaml").read_text()
    meta = next(s for s in config.data.sources if s.kind == "synthetic")
    assert meta.loss == "all" and meta.path == Path("data/meta")
    assert "synthlm synth generate examples/synth/seqthetic.yaml --out data/meta" in text
    spec = yaml.safe_load((EXAMPLES.parent / "synth" / "seqthetic.yaml").read_text())
    assert [d["name"] for d in spec["domains"]] == [
        "identity", "reverse", "duplicate", "deduplicate", "delete"
    ]  # fmt: skip
    assert config.train.global_batch_size == 128 and 8 * config.train.batch_size == 128
    assert re.search(r"num_meta_tokens: (\d+)", text)
    assert (config.model.arch, config.model.preset, config.model.init_from) == (
        "gpt_neox",
        "14m",
        None,
    )
    assert {s.kind for s in config.data.sources} == {
        "natural",
        "synthetic",
    } and config.model.num_meta_tokens > 0
    assert config.data.seq_len == 1024
    assert (config.train.max_steps, config.optim.lr, config.train.precision) == (
        10000,
        5e-4,
        "bf16",
    )
    assert any("wikitext" in e.name for e in config.data.eval)
    # the seed README's pretrain command: --eval_on_start --eval_strategy steps --eval_steps 1000
    assert (config.train.eval_on_start, config.train.eval_every) == (True, 1000)


def test_later_files_and_overrides_win(tmp_path, data):
    base = write_config(tmp_path / "base.yaml", tiny_config(tmp_path, data))
    (tmp_path / "big.yaml").write_text(
        yaml.safe_dump({"model": {"preset": "60m"}, "train": {"batch_size": 2}})
    )
    config = load_run_config(
        [base, tmp_path / "big.yaml"], ["optim.lr=1e-4", "data.sources.1.weight=0.9"]
    )
    assert (config.model.preset, config.train.batch_size, config.optim.lr) == ("60m", 2, 1e-4)
    assert config.data.sources[1].weight == 0.9 and config.model.arch == "llama"


def test_schema_errors_name_file_key_and_choices(tmp_path, data):
    path = write_config(
        tmp_path / "run.yaml",
        tiny_config(tmp_path, data, train={"max_steps": 5, "max_tokens": "1M"}),
    )
    with pytest.raises(
        ConfigError,
        match=r"run\.yaml: train: .*set exactly one of max_steps, max_tokens, epochs \(got "
        r"max_steps, max_tokens\)",
    ):
        load_run_config([path])
    with pytest.raises(
        ConfigError,
        match=r"override 'train\.chekpoint_every=5': train\.chekpoint_every: unknown key "
        r"\(did you mean 'train\.checkpoint_every'\?\)",
    ):
        load_run_config(
            [write_config(tmp_path / "ok.yaml", tiny_config(tmp_path, data))],
            ["train.chekpoint_every=5"],
        )


def test_budgets_in_tokens_and_epochs_become_whole_steps(tmp_path, data):
    plan = plan_run(
        load_run_config(
            [tiny_config(tmp_path, data, train={"max_steps": None, "max_tokens": 1000})]
        ),
        1,
    )
    assert plan.total_steps == 8  # 1000 tokens / (4 sequences x 32 tokens), rounded up
    epochs = load_run_config(
        [tiny_config(tmp_path, data, train={"max_steps": None, "epochs": 1.0})]
    )
    tokens = sum(s.epoch_tokens for s in plan.mixture.sources)
    assert total_steps(epochs.train, plan.batch, plan.mixture, 32) == -(-tokens // 128)


@pytest.mark.slow
def test_dry_run_prints_the_resolved_config_and_the_plan_without_training(tmp_path, data):
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, data))
    done = synthlm("train", str(config), "optim.lr=0.01", "train.global_batch_size=8", "--dry-run")
    assert done.returncode == 0, done.stderr
    resolved, plan = done.stdout.split("# plan\n")
    assert yaml.safe_load(resolved)["optim"]["lr"] == 0.01
    summary = json.loads(plan)
    assert (summary["steps"], summary["global_batch"], summary["grad_accum"]) == (12, 8, 2)
    assert summary["vocab_layout"]["model_vocab_size"] == 320
    # the shape a config's comments claim, checkable here: counted without building the weights
    model = build_model(load_run_config([config]).model, vocab_size=320)
    assert summary["model"]["parameters"] == count_parameters(model)
    assert (summary["model"]["layers"], summary["model"]["width"]) == (
        model.config.num_hidden_layers,
        model.config.hidden_size,
    )
    assert not (tmp_path / "run").exists()


def test_a_warmup_longer_than_the_run_is_said_before_step_0(tmp_path, data):
    """A recipe shrunk for a trial keeps its 10,000 warmup steps: the lr never gets to optim.lr,
    which the dry-run and the run itself say on stderr (once, not an error)."""
    config = write_config(tmp_path / "run.yaml", tiny_config(tmp_path, data))
    short = synthlm("train", str(config), "schedule.warmup_steps=12", "--dry-run")
    assert short.returncode == 0, short.stderr
    assert short.stderr.count("warning: schedule warmup is 12 steps but the run has 12") == 1
    assert "never reaches optim.lr=0.003" in short.stderr
    fine = synthlm("train", str(config), "--dry-run")
    assert fine.returncode == 0 and "warning" not in fine.stderr, fine.stderr
    run = synthlm("train", str(config), "schedule.warmup_steps=20", "train.max_steps=2", "-q")
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("warning: schedule warmup is 20 steps but the run has 2") == 1


DEPTH = {"name": "depth", "noise_density": 0.3, "max_sentences": 6}  # the rest: defaults


def test_saved_objective_lists_its_defaults_and_still_equals_the_written_one(tmp_path, data):
    """RUN/config.yaml holds the objective's defaults; loaded back, it equals the config it was
    saved from, and a config saved before defaults were dumped (only the written keys)."""
    from synthlm.config import dump_yaml

    written = load_run_config([tiny_config(tmp_path, data, objective=DEPTH)])
    saved = yaml.safe_load(dump_yaml(written))
    assert saved["objective"]["name"] == "depth" and saved["objective"]["max_sentences"] == 6
    assert saved["objective"]["construction"] == "synthlm"
    assert saved["objective"]["splitter"] == "pysbd"
    assert saved["objective"]["mean_noise_span_length"] == 3.0
    assert load_run_config([saved]) == written
    assert load_run_config([saved]) == load_run_config([{**saved, "objective": DEPTH}])
    changed = {**saved, "objective": {**saved["objective"], "splitter": "rules"}}
    assert load_run_config([changed]) != written
    clm = load_run_config([tiny_config(tmp_path, data)])  # no objective section: clm
    assert yaml.safe_load(dump_yaml(clm))["objective"] == {"name": "clm", "document_mask": False}


def test_invalid_objective_options_are_dumped_as_written(tmp_path, data):
    """Dumping never raises: a bad option is left for the planner to report with its file."""
    from synthlm.config import dump_yaml

    bad = {"name": "depth", "noise_densty": 0.3}
    config = load_run_config([tiny_config(tmp_path, data, objective=bad)])
    assert yaml.safe_load(dump_yaml(config))["objective"] == bad


@pytest.mark.slow
def test_dry_run_prints_the_objectives_defaults(tmp_path, data):
    t5 = {"arch": "t5", "preset": "tiny", "overrides": {"d_model": 32, "d_ff": 64, "d_kv": 8}}
    config = tiny_config(tmp_path, data, objective=DEPTH, data={"seq_len": 128})
    config["model"] = t5
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--dry-run")
    assert done.returncode == 0, done.stderr
    objective = yaml.safe_load(done.stdout.split("# plan\n")[0])["objective"]
    assert objective["max_sentences"] == 6 and objective["construction"] == "synthlm"
    assert (objective["splitter"], objective["mean_noise_span_length"]) == ("pysbd", 3.0)


@pytest.mark.slow
def test_a_run_saved_without_objective_defaults_resumes(tmp_path, data):
    """Run dirs from before the defaults were dumped resume: resume checks trainer_state.json
    and synthlm.json, and rewrites RUN/config.yaml, never comparing the saved one."""
    config = tiny_config(tmp_path, data, train={"max_steps": 6, "checkpoint_every": 2})
    path = write_config(tmp_path / "run.yaml", config)
    assert synthlm("train", str(path), "--quiet").returncode == 0
    run_dir = tmp_path / "run"
    shutil.rmtree(run_dir / "final")
    shutil.rmtree(run_dir / "checkpoints" / "step-6")
    for saved in [run_dir / "config.yaml", *run_dir.glob("checkpoints/step-*/config.yaml")]:
        old = yaml.safe_load(saved.read_text())
        assert old["objective"] == {"name": "clm", "document_mask": False}
        saved.write_text(yaml.safe_dump({**old, "objective": {"name": "clm"}}, sort_keys=False))
    resumed = synthlm("train", str(path), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout + resumed.stderr and (run_dir / "final").is_dir()
    assert (
        yaml.safe_load((run_dir / "config.yaml").read_text())["objective"]["document_mask"] is False
    )


def test_matmul_precision_is_set_for_every_run(tmp_path, data):
    """Rocket's torch.set_float32_matmul_precision('medium') as train.matmul_precision; the
    setting is process-wide, so a later run in the same process is set back to its own."""
    import torch

    from synthlm.train.accel import make_accelerator

    previous = torch.get_float32_matmul_precision()
    try:
        for wanted in ("medium", "highest"):
            config = tiny_config(tmp_path, data, train={"matmul_precision": wanted})
            make_accelerator(load_run_config([config]), 1)
            assert torch.get_float32_matmul_precision() == wanted
    finally:
        torch.set_float32_matmul_precision(previous)


def test_epoch_intervals_need_data_that_ends(tmp_path, data):
    endless = {
        "name": "copy",
        "kind": "synthetic",
        "stream": "infinite",
        "spec": {
            "name": "fly",
            "num_tokens": 2000,
            "seed": 5,
            "domains": [
                {"type": "copy", "vocab": {"num_vocab": 16}, "length": {"min": 2, "max": 9}}
            ],
        },
    }
    config = tiny_config(
        tmp_path,
        data,
        model={"num_meta_tokens": 64},
        train={"eval_every": "epoch"},
        data={"eval": [{"name": "val", "path": str(data["web"])}]},
    )
    config["data"]["sources"] = [{"name": "web", "path": str(data["web"])}, endless]
    with pytest.raises(ConfigError, match="train.eval_every: epoch needs data that ends"):
        plan_run(load_run_config([config]), 1)
