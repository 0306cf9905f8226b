"""``synthlm synth verify``: a domain with no document in a split is n/a there, never a 100%
pass, and a verify that checks nothing is not a pass."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli
from synthlm.synth import build_dataset, load_spec
from synthlm.synth.verify import DomainReport, VerifyReport


def build(out, **spec):
    build_dataset(load_spec({"num_tokens": "4K", "seed": 1, **spec}), out, quiet=True)
    return out


@pytest.fixture(scope="module")
def rare_dyck(tmp_path_factory):
    """dyck at 2% of the tokens: two train sequences, none in valid or test."""
    domains = [{"type": "reverse", "vocab": {"num_vocab": 20}}, {"type": "dyck", "weight": 0.02}]
    out = build(tmp_path_factory.mktemp("ds") / "rare", domains=domains)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    assert splits["train"]["domains"]["dyck"]["sequences"] > 0
    assert splits["valid"]["domains"]["dyck"]["sequences"] == 0
    return out


def row(stdout: str, split: str, domain: str) -> str:
    lines = stdout.splitlines()
    start = lines.index(f"{split}:")
    return next(line for line in lines[start + 1 :] if line.split()[0] == domain)


def test_a_domain_absent_from_a_split_is_na_not_a_pass(rare_dyck):
    done = run_cli("synth", "verify", str(rare_dyck), "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "n/a" in row(done.stdout, "valid", "dyck")
    assert "%" not in row(done.stdout, "valid", "dyck")
    assert "100.00%" in row(done.stdout, "train", "dyck")
    assert "all sequences verify" in done.stdout
    report = json.loads(run_cli("synth", "verify", str(rare_dyck), "-q", "--json").stdout)
    assert report["ok"] and report["splits"]["valid"]["dyck"]["rate"] is None
    assert report["splits"]["train"]["dyck"]["rate"] == 1.0


def test_a_domain_checked_in_no_verified_split_is_noted(rare_dyck):
    done = run_cli("synth", "verify", str(rare_dyck), "-q", "--split", "valid")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "note: dyck has no sequence in the verified splits" in done.stdout


def test_verifying_an_absent_split_is_refused(tmp_path):
    out = build(
        tmp_path / "d", splits={"train": 1.0, "valid": 0.0, "test": 0.0}, domains=[{"type": "dyck"}]
    )
    done = run_cli("synth", "verify", str(out), "--split", "valid")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--split 'valid'" in done.stderr and "absent" in done.stderr
    assert "choose from train" in done.stderr and done.stdout == ""


def test_a_report_that_checked_nothing_is_not_ok():
    assert DomainReport().rate is None
    assert not VerifyReport(splits={"valid": {"dyck": DomainReport()}}).ok
    assert VerifyReport(splits={"train": {"dyck": DomainReport(checked=2, passed=2)}}).ok
