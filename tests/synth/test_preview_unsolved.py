"""``synthlm synth preview`` of a user's domain whose ``solve`` is not written yet: the examples
are shown, each saying it was not checked because the domain has no solver (no traceback)."""

from __future__ import annotations

from cli_runner import run_cli
from plugin_helpers import install_plugin

STUB = """
import numpy as np

from synthlm.synth.domain import Domain
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabParams


@register_domain("stub_task", family="mytasks", description="A task without a solver yet.")
class StubTask(Domain):
    Params = VocabParams
    markers = ("answer",)

    def body(self, rng, n):
        x = TokenSampler(self.params.vocab).sample_ragged(rng, np.full(n, 3))
        return self.answered(x, x)

    def mean_body_length(self):
        return 7.0

    def solve(self, prompt):
        raise NotImplementedError("stub_task: solve is not written yet")
"""


def test_preview_of_a_domain_without_solver_shows_examples_and_says_so(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("seed: 0\ndomains:\n  - {type: stub_task}\n  - {type: reverse}\n")
    env = install_plugin(
        tmp_path / "site", "stub-plugin", {"stub_plugin": STUB}, {"stub": "stub_plugin"}
    )
    done = run_cli("synth", "preview", str(spec), "-n", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert out.count("verify n/a: no solver") == 2 and out.count("verify ok") == 2
    assert "the domain has no solver (solve / check_answer not implemented)" in out
    assert out.count("output") >= 4, "the examples themselves are still shown"
