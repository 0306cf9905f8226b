"""model.compile with compile_scope blocks: every repeated layer compiled in place (state-dict
keys unchanged), the same loss as eager; a model without repeated layers is refused. In a real
training run all layers share one traced graph (however many layers: more than dynamo's default
recompile limit here), compile_dynamic picks static or symbolic graphs, and running out of
graphs stops the run with a clear error instead of quietly training uncompiled."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from train_helpers import read_records, synthlm, tiny_config, write_config

from synthlm.errors import ConfigError, explain
from synthlm.models import ModelConfig, build_model, compile_model, repeated_blocks


@pytest.mark.parametrize(
    ("arch", "preset", "count"), [("llama", "tiny", 2), ("gpt_neox", "14m", 6), ("t5", "tiny", 4)]
)
def test_repeated_blocks_are_the_decoder_and_encoder_layers(arch, preset, count):
    model = build_model(ModelConfig(arch=arch, preset=preset), vocab_size=64)
    blocks = repeated_blocks(model)
    assert len(blocks) == count
    assert len({type(b).__name__ for b in blocks}) == 1 and type(blocks[0]).__name__.endswith(
        ("Layer", "Block")
    )


def test_blocks_compile_in_place_and_give_the_eager_loss():
    cfg = ModelConfig(
        arch="llama", preset="tiny", compile=True, compile_scope="blocks", compile_backend="eager"
    )
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=64)
    keys = list(model.state_dict())
    ids = torch.randint(0, 64, (2, 12))
    eager = model(input_ids=ids, labels=ids).loss
    assert compile_model(model, cfg) == 2
    assert list(model.state_dict()) == keys  # no _orig_mod prefixes: checkpoints stay plain
    torch.testing.assert_close(model(input_ids=ids, labels=ids).loss, eager)


def test_compile_off_compiles_nothing_and_no_repeated_layers_is_an_error():
    assert compile_model(torch.nn.Linear(2, 2), ModelConfig()) == 0
    with pytest.raises(ConfigError, match="compile_scope=blocks: found no repeated layers"):
        compile_model(torch.nn.Linear(2, 2), ModelConfig(compile=True, compile_scope="blocks"))


DEEP = {"num_hidden_layers": 10}  # > torch._dynamo's default recompile limit (8)


@pytest.mark.parametrize(("arch", "preset"), [("llama", "tiny"), ("gpt_neox", "14m")])
def test_a_training_run_traces_one_graph_for_all_its_layers(
    arch, preset, tmp_path, data, dynamo_counters
):
    """The product's loop, per-block compile: one graph serves all 10 layers, with no graph
    break. (A KV cache built during training would make each layer's cache slot a guard: one
    graph per layer, and past the 8th layer a quiet fallback to eager.)"""
    from synthlm.train import load_run_config, run

    overrides = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, **DEEP}
    model = {
        "arch": arch,
        "preset": preset,
        "overrides": overrides,
        "compile": True,
        "compile_scope": "blocks",
        "compile_backend": "eager",
    }
    config = tiny_config(tmp_path, data, model=model, train={"max_steps": 3, "checkpoint_every": 0})
    config["model"] = model  # replace, not merge: the tiny Llama's overrides are not gpt_neox's
    run(load_run_config([config]), progress=False)
    assert len([r for r in read_records(tmp_path / "run") if "loss" in r]) == 3
    assert dynamo_counters["stats"]["unique_graphs"] == 1
    assert not dynamo_counters["graph_break"]


SYMBOLIC: list[bool] = []  # per graph the recording backend was handed: symbolic sizes?


def _record(gm, example_inputs):
    SYMBOLIC.append(any(isinstance(x, torch.SymInt) for x in example_inputs))
    return gm.forward


torch._dynamo.register_backend(_record, name="synthlm_test_record")


@pytest.mark.parametrize(("dynamic", "symbolic"), [(None, True), (False, False)])
def test_compile_dynamic_false_keeps_t5_decoder_graphs_static(dynamic, symbolic, dynamo_counters):
    """Per-block T5: encoder and decoder blocks run one forward function at different lengths.
    torch's default reads that as a changing size and traces the decoder's blocks with symbolic
    sizes; compile_dynamic: false gives every length its own static graph."""
    cfg = ModelConfig(
        arch="t5", preset="tiny", compile=True, compile_scope="blocks", compile_dynamic=dynamic
    )
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=64, special_ids={"pad": 0, "eos": 1, "decoder_start": 0})

    SYMBOLIC.clear()
    compile_model(model, cfg.model_copy(update={"compile_backend": "synthlm_test_record"}))
    ids, labels = torch.randint(2, 64, (2, 24)), torch.randint(2, 64, (2, 6))
    model(input_ids=ids, labels=labels, use_cache=False).loss.backward()
    assert len(SYMBOLIC) == 4  # first and later blocks of the encoder, and of the decoder
    assert any(SYMBOLIC) is symbolic


def test_running_out_of_graphs_is_an_error_not_a_quiet_eager_fallback(monkeypatch, dynamo_counters):
    import torch._dynamo
    import torch._dynamo.exc

    import synthlm.models as models

    monkeypatch.setattr(models, "BLOCK_GRAPHS", 2)
    cfg = ModelConfig(
        arch="llama",
        preset="tiny",
        compile=True,
        compile_scope="blocks",
        compile_backend="eager",
        compile_dynamic=False,  # a static graph per length: the third length is one too many
    )
    model = build_model(cfg, vocab_size=64)
    # dynamo's own patch, not monkeypatch: its config values live outside the module __dict__,
    # and pytest >= 9.2 undoes such a monkeypatch by deleting the key
    with torch._dynamo.config.patch(recompile_limit=2, fail_on_recompile_limit_hit=False):
        compile_model(model, cfg)
        for length in (8, 9):
            model(input_ids=torch.randint(0, 64, (1, length)), use_cache=False)
        with pytest.raises(torch._dynamo.exc.FailOnRecompileLimitHit) as caught:
            model(input_ids=torch.randint(0, 64, (1, 10)), use_cache=False)
        line, status = explain(caught.value)
    assert status == 2
    assert "more than 2 graphs" in line and "model.compile_dynamic: true" in line


def test_a_dynamo_told_to_suppress_errors_is_refused():
    """TORCHDYNAMO_SUPPRESS_ERRORS makes dynamo run whatever it fails on eagerly: the silent
    fallback synthlm's compile refuses."""
    import torch._dynamo

    cfg = ModelConfig(arch="llama", preset="tiny", compile=True, compile_backend="eager")
    model = build_model(cfg, vocab_size=64)
    with (
        torch._dynamo.config.patch(suppress_errors=True),
        pytest.raises(ConfigError, match="TORCHDYNAMO_SUPPRESS_ERRORS"),
    ):
        compile_model(model, cfg)


def test_the_run_says_what_torch_compile_built(tmp_path, data):
    """`synthlm train` with per-block compile names the graphs it traced and the graph breaks
    after its first step (the code around a break runs eagerly: a user should know)."""
    model = {"compile": True, "compile_scope": "blocks", "compile_backend": "eager"}
    config = tiny_config(tmp_path, data, model=model, train={"max_steps": 2, "checkpoint_every": 0})
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "torch.compile:" in line]
    assert lines == ["torch.compile: 1 graph for 2 compiled blocks, no graph break"]


def test_the_report_names_graph_breaks(dynamo_counters):
    from synthlm.models import compile_report

    def forward(x):
        x = x * 2
        torch._dynamo.graph_break()  # what e.g. T5's `tensor.requires_grad = True` does
        return x + 1

    torch.compile(forward, backend="eager")(torch.ones(3))
    line = compile_report(1)
    assert line.startswith("torch.compile: 2 graphs for the model, 1 graph break")
    assert "TORCH_LOGS=graph_breaks" in line
