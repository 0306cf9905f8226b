"""A local transformers model directory as the LLM: offline, no server, tokens counted exactly.

Concurrent requests are gathered into micro-batches (up to ``--concurrency`` prompts, left
padded) and generated together in a worker thread, so the event loop keeps writing records
while the model runs and a GPU sees batches instead of one prompt at a time. For large-scale
local generation a vLLM server behind the ``openai`` backend is faster still; this backend is
for small corpora, air-gapped machines and tests.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthlm.entigraph.backends.base import Backend, Completion, Messages, register_backend
from synthlm.errors import UserError


@dataclass
class _Request:
    messages: Messages
    max_tokens: int | None
    temperature: float
    future: asyncio.Future[Completion]


@register_backend("local")
class LocalHFBackend(Backend):
    """``--model`` is a local directory holding an HF causal LM and a tokenizer with a chat template."""

    _tokenizer: Any = None
    _model: Any = None
    _drainer: asyncio.Task[None] | None = None

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self._pending: list[_Request] = []
        self._load_lock = threading.Lock()

    def check_ready(self, dry_run: bool = False) -> None:
        path = Path(self.options.model)
        if not (path / "config.json").is_file():
            raise UserError(
                f"--model {path}: not a local transformers model directory (no "
                f"config.json); the local backend never downloads"
            )
        if self.tokenizer.chat_template is None:
            raise UserError(
                f"--model {path}: the tokenizer has no chat template; set chat_template in "
                f"tokenizer_config.json"
            )

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.options.model, local_files_only=True)
            tokenizer.padding_side = "left"  # generation appends on the right
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load_model(self) -> Any:
        with self._load_lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM
                from transformers.utils import logging as hf_logging

                if self.options.quiet:
                    hf_logging.disable_progress_bar()
                device = self.options.device
                if device == "auto":
                    device = "cuda" if torch.cuda.is_available() else "cpu"
                dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
                model = AutoModelForCausalLM.from_pretrained(
                    self.options.model, dtype=dtype, local_files_only=True
                )
                # Seeded sampling; exactly reproducible only when batches form the same way
                # (e.g. --concurrency 1), since batch composition depends on timing.
                torch.manual_seed(self.options.seed)
                self._model = model.to(device).eval()
        return self._model

    def count_prompt_tokens(self, messages: Messages) -> int:
        encoded = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_dict=True
        )
        return len(encoded["input_ids"])

    async def complete(
        self,
        messages: Messages,
        *,
        max_tokens: int | None,
        temperature: float,
        json_mode: bool = False,
    ) -> Completion:
        # json_mode cannot be enforced here (no constrained decoding): the entity reply is
        # validated and re-asked like any reply, and describe() records it for the manifest.
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(messages, max_tokens, temperature, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let the other workers queue their prompts first
            batch = self._take_batch()
            try:
                results = await asyncio.to_thread(self._generate, batch)
            except Exception as exc:  # one failed batch fails its requests, not the run
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request, result in zip(batch, results):
                if not request.future.done():
                    request.future.set_result(result)

    def _take_batch(self) -> list[_Request]:
        """Up to ``batch_size`` pending requests sharing the first one's generation settings."""
        first = self._pending[0]
        same = [
            r
            for r in self._pending
            if (r.max_tokens, r.temperature) == (first.max_tokens, first.temperature)
        ]
        batch = same[: max(1, self.options.batch_size)]
        self._pending = [r for r in self._pending if r not in batch]
        return [r for r in batch if not r.future.cancelled()]

    def _generate(self, batch: list[_Request]) -> list[Completion]:
        import torch

        if not batch:
            return []
        model = self._load_model()
        tokenizer = self.tokenizer
        inputs = tokenizer.apply_chat_template(
            [list(r.messages) for r in batch],
            add_generation_prompt=True,
            padding=True,
            return_tensors="pt",
            return_dict=True,
        ).to(model.device)
        first = batch[0]
        sampling = (
            {"do_sample": True, "temperature": first.temperature}
            if first.temperature > 0
            else {"do_sample": False}
        )
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=self._new_tokens(first.max_tokens, inputs["input_ids"].shape[1]),
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(row, int(n)) for row, n in zip(new_tokens.tolist(), prompt_lengths)
        ]

    def _new_tokens(self, max_tokens: int | None, prompt_length: int) -> int:
        """``max_tokens``, or with no cap the rest of the model's context window."""
        if max_tokens is not None:
            return max_tokens
        context = getattr(self._load_model().config, "max_position_embeddings", None)
        if not context or context <= prompt_length:
            raise ValueError(
                f"prompt of {prompt_length} tokens leaves no room in a context of {context}"
            )
        return int(context) - prompt_length

    def _completion(self, row: list[int], prompt_tokens: int) -> Completion:
        eos = self.tokenizer.eos_token_id
        stopped = eos is not None and eos in row
        stop = row.index(eos) + 1 if stopped else len(row)
        finish = "stop" if stopped else "length"
        text = self.tokenizer.decode(row[:stop], skip_special_tokens=True)
        return Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=stop, finish_reason=finish
        )

    async def aclose(self) -> None:
        self._model = None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model": str(Path(self.options.model).resolve()),
            "device": self.options.device,
            "json_mode": "not enforced (no constrained decoding); entity replies are validated",
        }
