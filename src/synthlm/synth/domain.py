"""The domain interface: generate a block of sequences, verify one, split it for evaluation.

A domain is a pure function of its parameters, the dataset's id layout and a random generator.
Generation is vectorised over a block of sequences (see :mod:`synthlm.synth.ragged`); checking is
written separately, one sequence at a time, as plainly as possible. The two implementations meet
in the tests (every generated sequence must verify), which is what makes ``verify`` worth having.

Every sequence is ``promoter + body``. Task domains (copy, count, LIME, ...) have a body of the
form ``input ... <marker> output``: the prompt ends with the marker that precedes the output and
the answer is the rest. Language-like domains (dyck, fbm, n-gram, ...) have no answer; their
whole body is what a model learns, and ``verify`` checks it belongs to the language.

A new domain needs only ``Params``, ``body`` and its check: ``solve`` (or ``check_answer``) for a
task, ``check_language`` for a language (``synth/registry.register_domain`` refuses a class
without them). The rest has defaults: a task that lists no ``markers`` gets the answer marker
that :meth:`Domain.answered` writes, and the mean body length that sizes generation blocks is
measured on a sample unless the domain says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from synthlm.synth.params import DomainParams
from synthlm.synth.ragged import Ragged, assemble
from synthlm.synth.role_ids import DomainNeeds, RoleIds


class Malformed(Exception):
    """A sequence does not follow its domain's grammar, or its answer is wrong."""


@dataclass
class Batch:
    """A block of generated sequences, flat: tokens, per-sequence sizes and the loss mask."""

    tokens: np.ndarray
    sizes: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)


class Domain:
    """Base class; subclasses set the class attributes and implement ``body`` and the checks."""

    type_name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""  # paper + file of its code this domain reproduces exactly
    truncatable: ClassVar[bool] = False  # a prefix of a sequence is still valid data (streams)
    Params: ClassVar[type[DomainParams]] = DomainParams
    markers: ClassVar[tuple[str, ...]] = ()
    uses_digits: ClassVar[bool] = False
    is_task: ClassVar[bool] = True
    output_marker: ClassVar[str] = "answer"
    block_tokens: ClassVar[int] = (
        1 << 16
    )  # tokens per generated block (Python-heavy domains use less)

    SIZING_SAMPLE: ClassVar[int] = 64  # sequences generated to measure the mean body length

    def __init__(
        self, params: DomainParams, layout: RoleIds, name: str | None = None, key: int = 0
    ) -> None:
        self.params = params
        self.key = int(key)  # 64-bit key from (seed, domain index) for implicit tables
        self.layout = layout
        self.name = name or params.name or self.type_name
        self.promoter = layout.promoter(self.name)
        self.content = self.alphabet_size(params)

    # -- what the layout must provide ----------------------------------------------------------
    @classmethod
    def alphabet_size(cls, params: DomainParams) -> int:
        """How many content ids (from 0) this domain uses."""
        return int(params.vocab.num_vocab)  # type: ignore[attr-defined]

    @classmethod
    def needs(cls, params: DomainParams, name: str, promoter_length: int) -> DomainNeeds:
        return DomainNeeds(
            name, cls.alphabet_size(params), cls.layout_markers(), cls.uses_digits, promoter_length
        )

    @classmethod
    def layout_markers(cls) -> tuple[str, ...]:
        """The markers this domain gets ids for: ``markers``, or, for a task that lists none,
        the output marker (``<ans>``, what :meth:`answered` writes), so that the plain recipe
        (``Params``, ``body``, ``solve``) needs no marker list. Built-in domains list theirs."""
        if cls.markers or not cls.is_task:
            return cls.markers
        marker = cls.output_marker
        return (marker if isinstance(marker, str) else "answer",)

    def mark(self, marker: str) -> int:
        try:
            return self.layout.markers[marker]
        except KeyError:
            raise KeyError(
                f"domain {self.type_name!r} uses the marker {marker!r} but has no id for it: "
                f"add it to the class's `markers` (now {self.layout_markers()})"
            ) from None

    # -- generation ----------------------------------------------------------------------------
    def body(self, rng: np.random.Generator, n: int) -> list[tuple[Ragged, bool]]:
        """The parts of ``n`` sequences after the promoter, each flagged ``is_output``."""
        raise NotImplementedError

    def answered(self, prompt: Ragged, answer: Ragged) -> list[tuple[Ragged, bool]]:
        """``prompt <ans> answer``: the body of most tasks, the answer being the output."""
        marker = Ragged.constant(self.mark("answer"), np.ones(len(prompt), dtype=bool))
        return [(prompt, False), (marker, False), (answer, True)]

    def mean_body_length(self) -> float:
        """A rough mean body length; only used to size generation blocks.

        Default: measured on ``SIZING_SAMPLE`` bodies from a fixed generator (so the block
        size, which the manifest records, is the same on every run); built-in domains compute
        it from their parameters instead, which costs nothing.
        """
        if not hasattr(self, "_mean_body_length"):
            parts = self.body(np.random.default_rng(0), self.SIZING_SAMPLE)
            self._mean_body_length = float(assemble(parts)[1].mean())
        return self._mean_body_length

    def block_size(self) -> int:
        """Sequences per block: a power of two giving about ``block_tokens`` tokens."""
        mean = max(1.0, len(self.promoter) + self.mean_body_length())
        return int(np.clip(2 ** round(np.log2(self.block_tokens / mean)), 8, 8192))

    def generate(self, rng: np.random.Generator, n: int) -> Batch:
        parts = [(Ragged.tiled(self.promoter, n), False), *self.body(rng, n)]
        tokens, sizes, output = assemble(parts)
        return Batch(tokens, sizes, self._loss_mask(output))

    def _loss_mask(self, output: np.ndarray) -> np.ndarray:
        policy = self.params.loss_mask
        if policy == "output":
            return output.astype(np.uint8)
        return np.full(len(output), 1 if policy == "all" else 0, dtype=np.uint8)

    # -- checking ------------------------------------------------------------------------------
    def verify(self, sequence: np.ndarray) -> bool:
        """True when the sequence is well formed and its answer is right for its input."""
        try:
            self.check(sequence)
        except Malformed:
            return False
        return True

    def check(self, sequence: np.ndarray) -> None:
        """Like :meth:`verify` but raises :class:`Malformed` saying what is wrong."""
        body = self.strip_promoter(sequence)
        if not self.is_task:
            self.check_language(body)
            return
        cut = self.answer_start(body)
        self.check_answer(body[: cut - 1], body[cut:])

    def strip_promoter(self, sequence: np.ndarray) -> np.ndarray:
        sequence = np.asarray(sequence, dtype=np.int64)
        size = len(self.promoter)
        if len(sequence) < size or not np.array_equal(sequence[:size], self.promoter):
            raise Malformed(f"does not start with the promoter of {self.name}")
        return sequence[size:]

    def answer_start(self, body: np.ndarray) -> int:
        """Index in ``body`` just after the marker that precedes the output."""
        hits = np.flatnonzero(body == self.mark(self.output_marker))
        if not len(hits):
            raise Malformed(f"no {self.output_marker} marker")
        return int(hits[0]) + 1

    def check_answer(self, prompt: np.ndarray, answer: np.ndarray) -> None:
        """Default for deterministic tasks: the answer must equal :meth:`solve`."""
        expected = self.solve(prompt)
        if not np.array_equal(expected, answer):
            raise Malformed(f"answer {answer.tolist()} != expected {expected.tolist()}")

    def solve(self, prompt: np.ndarray) -> np.ndarray:
        """The one correct answer for a prompt body (without promoter and output marker)."""
        raise NotImplementedError(f"{self.type_name} has no unique answer")

    def check_language(self, body: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def unique_answer(self) -> bool:
        """Whether every input has exactly one correct output (so any changed answer is wrong)."""
        return self.is_task

    # -- evaluation ----------------------------------------------------------------------------
    def split(self, sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(prompt, answer)``: the prompt runs up to and including the output marker."""
        if not self.is_task:
            raise TypeError(f"{self.name} ({self.type_name}) is a language domain without answers")
        sequence = np.asarray(sequence)
        cut = len(self.promoter) + self.answer_start(self.strip_promoter(sequence))
        return sequence[:cut], sequence[cut:]

    def output_mask(self, sequence: np.ndarray) -> np.ndarray:
        """Which tokens are output (what ``loss_mask: output`` trains on)."""
        mask = np.zeros(len(sequence), dtype=bool)
        if self.is_task:
            mask[len(self.split(sequence)[0]) :] = True
        else:
            mask[len(self.promoter) :] = True
        return mask

    def expected_loss_mask(self, sequence: np.ndarray) -> np.ndarray:
        return self._loss_mask(self.output_mask(sequence))

    def score(self, prompt: np.ndarray, predicted: np.ndarray) -> float:
        """1.0 when ``prompt + predicted`` verifies (exact match for deterministic tasks)."""
        full = np.concatenate(
            [np.asarray(prompt, dtype=np.int64), np.asarray(predicted, dtype=np.int64)]
        )
        return 1.0 if self.verify(full) else 0.0

    # -- shared parsing helpers ----------------------------------------------------------------
    def as_content(
        self, tokens: np.ndarray, what: str = "input", allow_empty: bool = False
    ) -> np.ndarray:
        tokens = np.asarray(tokens, dtype=np.int64)
        if not allow_empty and not len(tokens):
            raise Malformed(f"empty {what}")
        if len(tokens) and (tokens.min() < 0 or tokens.max() >= self.content):
            raise Malformed(f"{what} holds ids outside the content alphabet 0..{self.content - 1}")
        return tokens

    def split_on(self, tokens: np.ndarray, marker: str) -> list[np.ndarray]:
        cuts = np.flatnonzero(tokens == self.mark(marker))
        return _split(tokens, cuts)

    def answer_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """An output as written: the tokens, or the empty marker when there are none."""
        tokens = np.asarray(tokens, dtype=np.int64)
        return tokens if len(tokens) else np.array([self.mark("empty")], dtype=np.int64)

    def number_tokens(self, value: int) -> np.ndarray:
        return np.array([self.layout.digit(int(d)) for d in str(int(value))], dtype=np.int64)

    def parse_number(self, tokens: np.ndarray) -> int:
        digits = np.asarray(tokens, dtype=np.int64) - int(self.layout.digits_start or 0)
        if not len(digits) or digits.min() < 0 or digits.max() > 9:
            raise Malformed("not a number")
        if len(digits) > 1 and digits[0] == 0:
            raise Malformed("number with a leading zero")
        return int("".join(str(int(d)) for d in digits))

    def symbol(self, token: int) -> str:
        """Readable name of an id for previews (domains override for their content)."""
        return self.layout.symbol(int(token))


def _split(tokens: np.ndarray, cuts: np.ndarray) -> list[np.ndarray]:
    """Pieces of ``tokens`` between the positions ``cuts`` (the cut tokens dropped)."""
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(tokens[start:cut])
        start = int(cut) + 1
    pieces.append(tokens[start:])
    return pieces
