"""Single-input transformations: identity/copy, reverse, duplicate, deduplicate, set, sort,
first_token, last_token, length (Seqthetic's domains and the matching Wu et al. 2022 tasks)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from synthlm.synth.domain import Malformed
from synthlm.synth.domains.base import InputTask, SequenceParams, SetRepeats, first_occurrence_order
from synthlm.synth.params import IntRange, at_least
from synthlm.synth.ragged import Ragged, digits
from synthlm.synth.registry import register_domain


@register_domain(
    "identity",
    family="sequence",
    description="Repeat the input after the answer marker (inputs may repeat ids; "
    "Seqthetic's own is seqthetic_identity).",
)
class Identity(InputTask):
    def transform(self, rng, x):
        return Ragged(x.values.copy(), x.lengths)

    def answer_of(self, x):
        self.check_input_length(x)
        return x


@register_domain(
    "copy",
    family="wu2022",
    reference="Wu et al. 2022, felixzli/synthetic_pretraining "
    "simpler_tasks_data_gen/tasks_with_tokens.py "
    "(gen_rand_token_id_list_given_length_range, copy)",
    description="Copy the input (Wu et al. 2022).",
)
class Copy(Identity):
    pass


@register_domain(
    "reverse",
    family="wu2022",
    reference="Wu et al. 2022, felixzli/synthetic_pretraining "
    "simpler_tasks_data_gen/tasks_with_tokens.py (gen_reverse_data, reverse)",
    description="The input in reverse order.",
)
class Reverse(InputTask):
    def transform(self, rng, x):
        return x.reversed()

    def answer_of(self, x):
        self.check_input_length(x)
        return x[::-1]


class DuplicateParams(SequenceParams):
    k: IntRange = Field(
        default_factory=lambda: IntRange(min=2, max=2),
        description="Times each token is repeated (int or {min, max}, drawn per sequence).",
    )

    _k_positive = at_least("k")


@register_domain(
    "duplicate",
    family="wu2022",
    reference="Wu et al. 2022, felixzli/synthetic_pretraining "
    "simpler_tasks_data_gen/tasks_with_tokens.py (duplicate; k=2)",
    description="Repeat every input token k times (a b -> a a b b); k may be a range.",
)
class Duplicate(InputTask):
    Params = DuplicateParams

    def transform(self, rng, x):
        return x.repeated(self.params.k.sample(rng, len(x)))

    def output_ratio(self):
        return self.params.k.mean

    def check_answer(self, prompt, answer):
        x = self.as_content(prompt)
        self.check_input_length(x)
        k, rest = divmod(len(answer), len(x))
        if rest or not self.params.k.contains(k) or not np.array_equal(np.repeat(x, k), answer):
            raise Malformed(
                f"answer is not the input with each token repeated k in {self.params.k} times"
            )

    @property
    def unique_answer(self):
        return self.params.k.min == self.params.k.max


class DeduplicateParams(SequenceParams):
    repeat_prob: float = Field(
        0.5, ge=0, le=1, description="Chance that a token repeats the one before it (makes runs)."
    )


@register_domain(
    "deduplicate",
    family="sequence",
    description="Collapse runs of the same token (a a b b a -> a b a); Wu's sampler is "
    "wu_deduplicate, Seqthetic's task seqthetic_deduplicate.",
)
class Deduplicate(InputTask):
    Params = DeduplicateParams
    runs = True

    def transform(self, rng, x):
        keep = np.ones(len(x.values), dtype=bool)
        keep[1:] = x.values[1:] != x.values[:-1]
        keep[x.starts[x.lengths > 0]] = True
        return x.keep(keep)

    def output_ratio(self):
        return 1 - self.params.repeat_prob

    def answer_of(self, x):
        self.check_input_length(x)
        out = [int(x[0])]
        for token in x[1:].tolist():
            if token != out[-1]:
                out.append(token)
        return np.asarray(out, dtype=np.int64)


@register_domain(
    "set",
    family="sequence",
    description="Unique input tokens in order of first appearance (a b a c -> a b c); "
    "Wu's sampler is wu_set.",
)
class SetTask(InputTask):
    Params = SetRepeats

    def transform(self, rng, x):
        return x.keep(x.first_occurrences(self.content))

    def answer_of(self, x):
        self.check_input_length(x)
        return first_occurrence_order(x)


@register_domain(
    "sort",
    family="sequence",
    description="The input tokens sorted by id, ascending (not Wu et al.'s sort, which is "
    "wu_sort).",
)
class Sort(InputTask):
    def transform(self, rng, x):
        return x.sorted()

    def answer_of(self, x):
        self.check_input_length(x)
        return np.asarray(sorted(x.tolist()), dtype=np.int64)


@register_domain(
    "first_token",
    family="wu2022",
    reference="Wu et al. 2022, felixzli/synthetic_pretraining "
    "simpler_tasks_data_gen/tasks_with_tokens.py (first_char)",
    description="The first input token.",
)
class FirstToken(InputTask):
    def transform(self, rng, x):
        return Ragged(x.first(), np.ones(len(x), dtype=np.int64))

    def output_ratio(self):
        return 1 / max(1.0, self.params.length.mean)

    def answer_of(self, x):
        self.check_input_length(x)
        return x[:1]


@register_domain(
    "last_token",
    family="wu2022",
    reference="Wu et al. 2022, felixzli/synthetic_pretraining "
    "simpler_tasks_data_gen/tasks_with_tokens.py (last_char)",
    description="The last input token.",
)
class LastToken(FirstToken):
    def transform(self, rng, x):
        return Ragged(x.last(), np.ones(len(x), dtype=np.int64))

    def answer_of(self, x):
        self.check_input_length(x)
        return x[-1:]


@register_domain(
    "length",
    family="wu2022",
    reference="Wu et al. 2022, felixzli/synthetic_pretraining "
    "simpler_tasks_data_gen/tasks_with_tokens.py (length)",
    description="The number of input tokens, written in decimal digit tokens.",
)
class Length(InputTask):
    uses_digits = True

    def transform(self, rng, x):
        return digits(x.lengths, self.layout.digit(0))

    def output_ratio(self):
        return 3 / max(1.0, self.params.length.mean)

    def answer_of(self, x):
        self.check_input_length(x)
        return self.number_tokens(len(x))
