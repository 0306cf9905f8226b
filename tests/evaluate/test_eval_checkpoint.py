"""Checkpoints: layout recovery, output locations, and the ``synthlm eval`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from tiny_lm import MODEL_VOCAB, NATURAL, byte_tokenizer, random_checkpoint

from cli_runner import run_cli
from synthlm.data.mixture import EvalSetConfig, ModelVocab
from synthlm.data.store import write_store
from synthlm.errors import UserError
from synthlm.evaluate import evaluate_model
from synthlm.evaluate.checkpoint import load_checkpoint, run_dir_of
from synthlm.evaluate.offline import default_output, eval_sets_from_paths, evaluate_checkpoint


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """RUN/checkpoints/step-3 and RUN/final of one random model, plus a natural store."""
    run = tmp_path_factory.mktemp("run")
    random_checkpoint(run / "checkpoints" / "step-3")
    random_checkpoint(run / "final")
    rng = np.random.default_rng(1)
    write_store(
        run / "data" / "valid", [rng.integers(0, 256, size=n) for n in (30, 12, 50)], NATURAL
    )
    return run


def test_layout_of_a_foreign_checkpoint_is_tokenizer_then_meta(run_dir):
    ckpt = load_checkpoint(run_dir / "final", device="cpu")
    assert ckpt.layout == ModelVocab(NATURAL, NATURAL, MODEL_VOCAB - NATURAL, MODEL_VOCAB)
    assert not ckpt.model.training


def test_layout_recorded_in_synthlm_json_wins(tmp_path):
    path = random_checkpoint(tmp_path / "ck")
    layout = {
        "natural_size": NATURAL,
        "meta_offset": NATURAL,
        "meta_size": 40,
        "model_vocab_size": 320,
    }
    (path / "synthlm.json").write_text(json.dumps({"layout": layout}), encoding="utf-8")
    assert load_checkpoint(path, device="cpu").layout == ModelVocab(**layout)
    (path / "synthlm.json").write_text(
        json.dumps({"layout": {**layout, "model_vocab_size": 384}}), encoding="utf-8"
    )
    with pytest.raises(UserError, match="needs 384 ids but the model has 320"):
        load_checkpoint(path, device="cpu")


def test_layout_and_seq_len_from_the_resolved_training_config(run_dir, tmp_path):
    path = random_checkpoint(tmp_path / "ck")
    store = str(run_dir / "data" / "valid")
    config = {
        "model": {"num_meta_tokens": 40},
        "data": {
            "sources": [{"name": "text", "path": store}],
            "eval": [{"name": "heldout", "path": store}],
            "seq_len": 24,
        },
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    ckpt = load_checkpoint(path, device="cpu")
    assert ckpt.layout == ModelVocab(NATURAL, NATURAL, 40, 320)  # 258 + 40 rounded up to 64
    assert ckpt.seq_len == 24
    report, out = evaluate_checkpoint(path, device="cpu")  # no --data: the config's eval sets
    assert set(report["metrics"]) == {"eval/heldout/loss", "eval/heldout/ppl"}
    assert report["seq_len"] == 24
    assert (report["dtype"], report["device"]) == ("float32", "cpu"), "what scored it"
    assert out == tmp_path / "eval" / "ck.json"


def test_checkpoint_without_tokenizer_files_names_the_fix(tmp_path):
    path = random_checkpoint(tmp_path / "ck")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (path / name).unlink(missing_ok=True)
    with pytest.raises(UserError, match=r"no tokenizer files here.*pass --tokenizer DIR"):
        load_checkpoint(path, device="cpu")
    assert (
        load_checkpoint(
            path, device="cpu", tokenizer=random_checkpoint(tmp_path / "other")
        ).tokenizer.eos_token_id
        == 256
    )


def test_results_go_to_the_run_dir(run_dir):
    assert run_dir_of(run_dir / "checkpoints" / "step-3") == run_dir.resolve()
    assert (
        default_output(run_dir / "checkpoints" / "step-3")
        == run_dir.resolve() / "eval" / "step-3.json"
    )
    assert default_output(run_dir / "final") == run_dir.resolve() / "eval" / "final.json"


def test_data_paths_become_named_eval_sets(run_dir):
    store = run_dir / "data" / "valid"
    sets = eval_sets_from_paths([store, f"{store}.bin"], max_tokens=1000, max_documents=None)
    assert [(s.name, s.kind, s.max_tokens) for s in sets] == [
        ("valid", "natural", 1000),
        ("valid-2", "natural", 1000),
    ]
    with pytest.raises(UserError, match="neither a token store"):
        eval_sets_from_paths([run_dir / "nothing"])


@pytest.mark.slow
@pytest.mark.parametrize("max_documents", [None, 2])  # the store holds 3
def test_cli_eval_writes_json_equal_to_the_library(run_dir, max_documents):
    store = run_dir / "data" / "valid"
    limit = [] if max_documents is None else ["--max-documents", str(max_documents)]
    result = run_cli(
        "eval",
        str(run_dir / "checkpoints" / "step-3"),
        "--data",
        str(store),
        "--seq-len",
        "16",
        "--device",
        "cpu",
        *limit,
    )
    assert result.returncode == 0, result.stderr
    out = run_dir / "eval" / "step-3.json"
    report = json.loads(out.read_text(encoding="utf-8"))
    assert f"wrote {out.resolve()}" in result.stdout or f"wrote {out}" in result.stdout
    ckpt = load_checkpoint(run_dir / "checkpoints" / "step-3", device="cpu")
    expected = evaluate_model(
        ckpt.model,
        [EvalSetConfig(name="valid", path=store, max_documents=max_documents)],
        layout=ckpt.layout,
        tokenizer=byte_tokenizer(),
        seq_len=16,
        batch_size=8,
        device=torch.device("cpu"),
    )
    assert report["metrics"] == pytest.approx(expected, rel=1e-6)
    assert report["seq_len"] == 16 and report["eval_sets"][0]["kind"] == "natural"
    assert report["eval_sets"][0]["max_documents"] == max_documents


def test_cli_eval_bad_inputs_exit_2(run_dir, tmp_path):
    missing = run_cli("eval", str(tmp_path / "nope"), "--data", str(run_dir / "data" / "valid"))
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr
    not_model = run_cli("eval", str(run_dir / "data"), "--data", str(run_dir / "data" / "valid"))
    assert not_model.returncode == 2 and "no config.json" in not_model.stderr
    bad_data = run_cli("eval", str(run_dir / "final"), "--data", str(tmp_path / "missing"))
    assert bad_data.returncode == 2 and "neither a token store" in bad_data.stderr
    nothing = run_cli("eval", str(run_dir / "final"))
    assert nothing.returncode == 2 and "nothing to evaluate" in nothing.stderr
    valid = str(run_dir / "data" / "valid")
    for count in ("0", "1"):  # no window with a target: a traceback (0) or NaN metrics (1)
        few = run_cli("eval", str(run_dir / "final"), "-d", valid, "--max-tokens", count)
        assert few.returncode == 2 and "--max-tokens: " + count + ": at least 2" in few.stderr
        assert "Traceback" not in few.stderr
    same = tmp_path / "same.json"
    clash = run_cli(
        "eval", str(run_dir / "final"), "-d", valid, "-o", str(same), "--predictions", str(same)
    )
    assert clash.returncode == 2 and "the same file as the results" in clash.stderr
    assert not same.exists()


def test_masking_follows_how_the_checkpoint_trained(run_dir, tmp_path):
    from synthlm.evaluate.checkpoint import Masking, trained_masking

    path = random_checkpoint(tmp_path / "ck")
    assert trained_masking(path, {}) == Masking(False, False)  # a foreign model
    store = str(run_dir / "data" / "valid")
    natural = {"name": "text", "path": store}
    synthetic = {"name": "syn", "path": str(tmp_path / "syn"), "kind": "synthetic"}
    # a checkpoint from before synthlm.json recorded it: a mask, when on, covered every source
    assert trained_masking(path, {"data": {"sources": [natural]}}) == Masking(False, False)
    legacy = {"data": {"sources": [natural, synthetic]}}
    assert trained_masking(path, legacy) == Masking(True, True)
    off = {"sources": [natural, synthetic], "document_mask": False}
    assert trained_masking(path, {"data": off}) == Masking(False, False)
    with pytest.raises(UserError, match="pass --document-mask or --no-document-mask"):
        trained_masking(path, {"data": {"sources": "nonsense"}})
    info = path / "synthlm.json"
    info.write_text(json.dumps({"document_mask": True}), encoding="utf-8")
    assert trained_masking(path, {}) == Masking(True, True)
    # today's record: the kinds masked
    info.write_text(json.dumps({"masked_documents": ["synthetic"]}), encoding="utf-8")
    assert trained_masking(path, legacy) == Masking(True, False)
    data = [run_dir / "data" / "valid"]
    report, _ = evaluate_checkpoint(path, data, seq_len=16, device="cpu", quiet=True)
    plain, _ = evaluate_checkpoint(
        path, data, seq_len=16, device="cpu", quiet=True, document_mask=False
    )
    assert report["natural_document_mask"] is False and report["metrics"] == plain["metrics"]
    info.write_text(json.dumps({"masked_documents": ["natural", "synthetic"]}), encoding="utf-8")
    masked, _ = evaluate_checkpoint(path, data, seq_len=16, device="cpu", quiet=True)
    assert masked["natural_document_mask"] is True and masked["metrics"] != plain["metrics"]


def test_cli_document_mask_flag_is_refused_where_it_means_nothing(run_dir, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("{}\n", encoding="utf-8")
    result = run_cli("eval", str(run_dir / "final"), "--qa", str(qa), "--no-document-mask")
    assert result.returncode == 2
    assert "--no-document-mask: only for eval sets (--data or the run's data.eval), not --qa" in (
        result.stderr
    )


def test_cli_eval_set_limits_are_refused_with_qa(run_dir, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("{}\n", encoding="utf-8")
    result = run_cli(
        "eval",
        str(run_dir / "final"),
        "--qa",
        str(qa),
        "--max-tokens",
        "1K",
        "--max-documents",
        "3",
    )
    assert result.returncode == 2
    assert "--max-tokens, --max-documents: only for eval sets" in result.stderr


def test_a_window_longer_than_the_models_positions_is_refused(run_dir, tmp_path):
    limit = json.loads((run_dir / "final" / "config.json").read_text())["max_position_embeddings"]
    out = tmp_path / "eval.json"
    store = run_dir / "data" / "valid"
    args = ["--data", str(store), "--out", str(out), "--seq-len", str(limit + 1)]
    result = run_cli("eval", str(run_dir / "final"), *args)
    assert result.returncode == 2, result.stderr
    assert f"--seq-len {limit + 1} exceeds the model's {limit} positions" in result.stderr
    assert not out.exists()


def test_a_tokenizer_override_must_read_text_as_the_checkpoints_own(run_dir, tmp_path):
    """``--tokenizer`` with another tokenizer: generate, chat, --qa and --lm-eval all load the
    checkpoint through one function, which refuses it (exit 2) instead of answering garbage; the
    checkpoint's own tokenizer, saved elsewhere and with a pad token added, is accepted."""
    from synthlm.tokenizers import train_tokenizer

    train_tokenizer([], "byte", None, tmp_path / "other", quiet=True)  # bytes at other ids
    final = str(run_dir / "final")
    for command in (("generate", final, "-p", "ROMEO:", "-n", "3", "--temperature", "0"),):
        refused = run_cli(*command, "--tokenizer", str(tmp_path / "other"))
        assert refused.returncode == 2, refused.stderr
        assert "encodes text differently from the checkpoint's own tokenizer" in refused.stderr
    same = byte_tokenizer()
    same.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    same.save_pretrained(tmp_path / "same")
    done = run_cli(
        "generate", final, "-p", "ROMEO:", "-n", "3", "--temperature", "0",
        "--tokenizer", str(tmp_path / "same"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_foreign_store_whose_documents_end_with_eos_gets_no_second_one(run_dir, tmp_path):
    """A Megatron/GPT-NeoX store (no PREFIX.json) written with ``--append-eod`` already ends
    every document with EOS: it scores as the same store recorded ``append_eod`` does, and as
    the plain documents with one EOS each (a second EOS at each boundary changed the loss)."""
    rng = np.random.default_rng(4)
    eos = byte_tokenizer().eos_token_id
    docs = [[*rng.integers(0, 256, size=n).tolist(), eos] for n in (40, 25, 60)]
    write_store(tmp_path / "recorded", docs, NATURAL, append_eod=True)
    write_store(tmp_path / "foreign", docs, NATURAL)
    write_store(tmp_path / "plain", [d[:-1] for d in docs], NATURAL, append_eod=False)
    (tmp_path / "foreign.json").unlink(missing_ok=True)  # as another tool writes it: no record
    losses = []
    for name in ("recorded", "foreign", "plain"):
        out = tmp_path / f"{name}.json"
        done = run_cli("eval", str(run_dir / "final"), "-d", str(tmp_path / name), "-o", str(out))
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(out.read_text())["eval_sets"]
        losses.append(json.loads(out.read_text())["metrics"][f"eval/{row['name']}/loss"])
    assert losses[0] == losses[1] == losses[2]


def test_a_configured_eval_set_not_found_from_here_names_its_origin(tmp_path, monkeypatch):
    """The run's data.eval paths are relative to where it trained; from elsewhere the error
    says where the path came from and what to do, before the model loads."""
    path = random_checkpoint(tmp_path / "ck")
    config = {"data": {"sources": [{"name": "t", "path": "data/t"}],
                       "eval": [{"name": "heldout", "path": "data/valid"}], "seq_len": 16}}  # fmt: skip
    (path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"config\.yaml data\.eval\.0 \(heldout\): data/valid is "
                       r"not found from .*pass --data PATH"):  # fmt: skip
        evaluate_checkpoint(path, device="cpu")
