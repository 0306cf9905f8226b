"""``random_tokens`` (TILT): i.i.d. tokens from a uniform or Zipf vocabulary, no structure."""

from __future__ import annotations

from pydantic import Field

from synthlm.synth.domain import Domain, Malformed
from synthlm.synth.params import IntRange, at_least
from synthlm.synth.registry import register_domain
from synthlm.synth.vocab import TokenSampler, VocabParams


class RandomTokensParams(VocabParams):
    length: IntRange = Field(
        default_factory=lambda: IntRange(min=16, max=128), description="Sequence length in tokens."
    )

    _positive = at_least("length")


@register_domain(
    "random_tokens",
    family="tilt",
    description="Independent tokens from the vocabulary (uniform or Zipf): the "
    "no-structure control.",
)
class RandomTokens(Domain):
    Params = RandomTokensParams
    is_task = False

    def body(self, rng, n):
        lengths = self.params.length.sample(rng, n)
        return [(TokenSampler(self.params.vocab).sample_ragged(rng, lengths), True)]

    def mean_body_length(self):
        return self.params.length.mean

    def check_language(self, body):
        if not self.params.length.contains(len(body)):
            raise Malformed(f"length {len(body)} outside {self.params.length}")
        tokens = self.as_content(body, "sequence")
        p = self.params.vocab.probabilities()
        if p is not None and (p[tokens] == 0).any():
            raise Malformed("a token with zero probability")

    @property
    def unique_answer(self):
        return False
