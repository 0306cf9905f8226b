"""Every knob of an EntiGraph run in one validated model: the CLI fills it, Python users build it.

Validation happens here, before documents are read or a request is sent, so a typo in a flag
costs nothing. Field descriptions double as the ``--help`` text of the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from synthlm.config import Section
from synthlm.entigraph.backends.base import BackendOptions


class EntiGraphConfig(Section):
    docs: list[Path] = Field(
        min_length=1,
        description="Documents: jsonl (id, title, author, year, text) or QuALITY "
        "json/jsonl; repeat --docs to read several files as one set (QuALITY: "
        "train + dev).",
    )
    out: Path = Field(
        description="Output directory: generations.jsonl, corpus.jsonl, manifest.json."
    )
    format: Literal["auto", "jsonl", "quality"] = Field("auto", description="Documents format.")
    id_field: str = Field("id", description="jsonl key holding the document id.")
    text_field: str = Field("text", description="jsonl key holding the document text.")
    title_field: str = Field("title", description="jsonl key holding the title.")
    author_field: str = Field("author", description="jsonl key holding the author.")
    year_field: str = Field("year", description="jsonl key holding the year of publication.")

    backend: str = Field(
        "openai",
        description="LLM backend: openai (any OpenAI-compatible server) or local (a "
        "transformers model dir).",
    )
    model: str = Field(description="Model name on the server, or the local model directory.")
    base_url: str | None = Field(
        None,
        description="Server URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL if "
        "set, else https://api.openai.com/v1).",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", min_length=1, description="Environment variable holding the API key."
    )
    device: str = Field("auto", description="Local backend device: auto, cpu, cuda, cuda:1...")
    prompts: Path | None = Field(
        None, description="Prompt set directory (default: the shipped set)."
    )

    seed: int = Field(0, ge=0, description="Seed of the pair/triple samples.")
    max_pairs: int | None = Field(
        None, ge=0, description="Pairs per document (default: all C(n,2))."
    )
    max_triples: int | None = Field(
        None,
        ge=0,
        description="Triples per document (default: all C(n,3); a number: a seeded sample).",
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Generation cap per request in tokens (default: none, as in the "
        "paper: the server's own limit).",
    )
    json_mode: bool = Field(
        True,
        description="Ask the server for JSON (response_format json_object) at the entity "
        "step, as the paper does.",
    )
    temperature: float = Field(
        1.0, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy)."
    )

    concurrency: int = Field(
        8, ge=1, le=1024, description="Requests in flight at once (local: batch size)."
    )
    timeout: float = Field(
        120.0, gt=0, description="Seconds before a request times out (then retried)."
    )
    max_attempts: int = Field(
        6,
        ge=1,
        description="Attempts per request on 429/5xx/timeouts before it is recorded as failed.",
    )
    retry_base: float = Field(
        1.0, gt=0, description="First backoff delay in seconds (doubles per attempt, with jitter)."
    )
    retry_max: float = Field(
        60.0,
        gt=0,
        description="Longest backoff delay, and the longest Retry-After honoured, in seconds.",
    )
    json_attempts: int = Field(
        3,
        ge=1,
        description="Attempts per request when the reply is unusable: not valid JSON "
        "(entity step), empty, or cut off by the length limit.",
    )

    price_in: float | None = Field(None, ge=0, description="Price per 1M input tokens.")
    price_out: float | None = Field(None, ge=0, description="Price per 1M output tokens.")
    max_cost: float | None = Field(
        None, gt=0, description="Stop cleanly before this run's spending could pass this amount."
    )
    max_requests: int | None = Field(
        None, ge=0, description="Stop cleanly after sending this many requests in this run."
    )
    dry_run: bool = Field(False, description="Estimate requests, tokens and cost; send nothing.")
    assumed_entities: int = Field(
        20, ge=1, description="Dry run: entities assumed per document not yet analysed."
    )
    allow_mixed: bool = Field(
        False,
        description="Resume even if the model, prompts or seed differ from the records in --out.",
    )
    quiet: bool = Field(False, description="No progress bar.")

    @field_validator("docs", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        """One path (Python callers, older configs) is a list of one."""
        return [value] if isinstance(value, (str, Path)) else value

    @model_validator(mode="after")
    def _budget_needs_prices(self) -> EntiGraphConfig:
        if self.max_cost is not None and self.price_in is None and self.price_out is None:
            raise ValueError(
                "max_cost (--max-cost) needs prices: set price_in/price_out "
                "(--price-in/--price-out, per 1M tokens)"
            )
        if self.max_cost is not None and self.max_tokens is None:
            raise ValueError(
                "max_cost (--max-cost) needs max_tokens (--max-tokens): without a cap per "
                "reply, no request's cost is bounded"
            )
        return self

    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            model=self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            timeout=self.timeout,
            device=self.device,
            batch_size=self.concurrency,
            seed=self.seed,
            quiet=self.quiet,
        )

    def limits(self) -> dict[str, int | None]:
        return {"pair": self.max_pairs, "triple": self.max_triples}
