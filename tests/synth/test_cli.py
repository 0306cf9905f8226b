"""``synthlm synth`` end to end, through the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from synthlm.synth.registry import load_domains

SPEC = """
name: cli
num_tokens: 20K
seed: 3
domains:
  - {type: copy, vocab: {num_vocab: 40}, length: {min: 4, max: 16}}
  - {type: search, vocab: {num_vocab: 10}}
  - {type: shuffle_dyck, k: 3}
  - {type: induct}
"""


def synth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synthlm", "synth", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_list_shows_every_domain_with_parameters():
    result = synth("list")
    assert result.returncode == 0, result.stderr
    for name in load_domains():
        assert f"\n{name}  [" in result.stdout
    assert "hurst" in result.stdout and "0.7" in result.stdout and "Hurst exponent" in result.stdout
    catalogue = json.loads(synth("list", "--json").stdout)
    assert {d["name"] for d in catalogue["domains"]} == set(load_domains())


def test_preview_shows_parts_apart(spec):
    result = synth("preview", str(spec), "-n", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("verify ok") == 8
    for part in ("promoter", "input", "query", "marker", "output", "<ans>", "<qry>", "<rule>"):
        assert part in out
    assert (
        "[" in synth("preview", str(spec), "-n", "1", "--domain", "shuffle_dyck").stdout
    )  # bracket symbols


@pytest.mark.slow
def test_generate_then_verify(spec, tmp_path):
    out = tmp_path / "data"
    result = synth(
        "generate", str(spec), "--out", str(out), "--workers", "2", "--seed", "7", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["num_tokens_requested"] == 20_000
    assert {"train.bin", "valid.mask.idx", "test.domains.npy", "README.md", "card.svg"} <= {
        p.name for p in out.iterdir()
    }
    check = synth("verify", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all sequences verify" in check.stdout and "100.00%" in check.stdout
    data = bytearray((out / "train.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / "train.bin").write_bytes(bytes(data))
    broken = synth("verify", str(out), "--quiet")
    assert broken.returncode == 1 and "does not match the SHA-256" in broken.stdout


def test_metalang_delete_config_generates_and_verifies(tmp_path):
    from pathlib import Path

    config = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "data"
        / "seqthetic_configs"
        / "delete.json"
    )
    if not config.is_file():
        pytest.skip(f"{config}: the shared Seqthetic configs are not beside this checkout")
    out = tmp_path / "d"
    result = synth("generate", str(config), "--num-token", "12K", "--seed", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["domains"][0]["type"] == "seqthetic_delete"
    assert manifest["domains"][0]["name"] == "delete"
    assert "seqthetic/domains/delete.py" in manifest["domains"][0]["reference"]
    assert "seqthetic/domains/delete.py" in (out / "README.md").read_text()
    check = synth("verify", str(out), "--quiet")
    assert check.returncode == 0, check.stdout + check.stderr


def test_seqthetic_config_and_num_token_alias(tmp_path):
    config = tmp_path / "identity.json"
    config.write_text(
        json.dumps(
            {
                "name": "identity",
                "vocab_size": 10000,
                "sequence_length_min": 256,
                "sequence_length_max": 1024,
                "seed": 0,
            }
        )
    )
    out = tmp_path / "d"
    result = synth("generate", str(config), "--num-token", "20K", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "20," in result.stdout and "seed 0" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["spec"]["domains"][0]["vocab"]["num_vocab"] == 10000
    assert 20_000 - 2 * 1024 - 3 < manifest["num_tokens"] <= 20_000


def test_seqthetic_flat_config_with_a_task_and_no_vocab_keys(tmp_path):
    """`{"task": "fbm", ...}` is a flat config on its own; one that names no task says so."""
    config = tmp_path / "walk.json"
    config.write_text(json.dumps({"name": "walk", "task": "fbm", "hurst": 0.7, "num_token": 5000}))
    out = tmp_path / "d"
    result = synth("generate", str(config), "--seed", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(d["name"], d["type"]) for d in manifest["domains"]] == [("walk", "fbm")]
    assert manifest["spec"]["domains"][0]["hurst"] == 0.7
    config.write_text(json.dumps({"hurst": 0.7, "num_token": 5000}))
    result = synth("generate", str(config), "--out", str(tmp_path / "e"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config}: this looks like a Seqthetic flat config")
    assert "it needs `name` set to a Seqthetic task" in result.stderr
    assert "unknown key" not in result.stderr and "required key" not in result.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"task": "fbm", "hurst": 1.7, "num_token": 1000}, ": hurst: expected float"),
        ({"task": "fbm", "hurst": 0.7}, ": num_token: required key is missing"),
        (
            {"name": "reverse", "vocab_size": 0, "sequence_length_min": 4, "num_token": 1000},
            ": vocab_size: expected int",
        ),
        (
            {
                "name": "reverse",
                "vocab_size": 8,
                "sequence_length_min": 10,
                "sequence_length_max": 5,
                "num_token": 1000,
            },
            ": sequence_length_min/max: min (10) must be <= max (5)",
        ),
    ],
)
def test_seqthetic_config_errors_name_the_configs_own_keys(tmp_path, config, message):
    """Validation runs on the translated spec; its errors are put back in the file's terms."""
    path = tmp_path / "flat.json"
    path.write_text(json.dumps(config))
    result = synth("generate", str(path), "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and f"{path} (Seqthetic config){message}" in result.stderr
    assert "domains.0" not in result.stderr and "num_tokens" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["domains.1.type=serch"], "did you mean 'search'"),
        (["domains.0.length.min=20"], "min (20) must be <= max (16)"),
        (
            [
                "domains.0.weight=0",
                "domains.1.weight=0",
                "domains.2.weight=0",
                "domains.3.weight=0",
            ],
            "all weights are zero",
        ),
        (["domains.2={type: fbm, hurst: 1.0}"], "domains.2.hurst"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(spec, tmp_path, args, message):
    out = tmp_path / "never"
    result = synth("generate", str(spec), *args, "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and message in result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_overwrite_replaces_a_dataset_but_never_a_folder_of_other_files(spec, tmp_path):
    """--overwrite used to delete whatever --out held (a typo'd path: the user's files gone)."""
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "important.txt").write_text("keep")
    refused = synth("generate", str(spec), "--out", str(precious), "--overwrite", "-q")
    assert refused.returncode == 2
    assert "holds files that are not a synthetic dataset (important.txt, sub)" in refused.stderr
    assert (precious / "important.txt").read_text() == "keep" and (precious / "sub").is_dir()
    data = tmp_path / "data"
    for seed in ("1", "2"):
        done = synth("generate", str(spec), "--out", str(data), "--seed", seed, "--overwrite", "-q")
        assert done.returncode == 0, done.stderr
    assert json.loads((data / "manifest.json").read_text())["seed"] == 2
