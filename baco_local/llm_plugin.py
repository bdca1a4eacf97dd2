"""baco pairs as models of simonw's `llm`: `llm -m baco 'prompt' -o router p-punc -o gamma 0.5`.

Registered through the `llm` entry point in pyproject.toml. Model ids: `baco` is the
default pair (or the files named by BACO_LLM_BASE and BACO_LLM_ALIGNED, aligned
defaulting to in-context), and `baco-<name>` each catalog pair (`baco models list`).
A model loads its pair on its first prompt and keeps it.
"""

from __future__ import annotations

import os

import llm
from pydantic import Field

from .errors import BacoError


@llm.hookimpl
def register_models(register):
    register(BacoModel("baco", None))
    try:
        from .models.catalog import load_catalog

        names = sorted(load_catalog())
    except BacoError:  # a broken user catalog must not break every other llm model
        names = []
    for name in names:
        register(BacoModel(f"baco-{name}", name))


class BacoModel(llm.Model):
    """One pair. Options left out take the pair's defaults (`baco routers` lists routers)."""

    can_stream = True

    class Options(llm.Options):
        router: str | None = Field(None, description="who writes each word, e.g. p-punc")
        gamma: float | None = Field(None, description="the router's diversity dial")
        temperature: float | None = Field(None, description="0 is greedy; default 0.8")
        top_p: float | None = Field(None, description="nucleus sampling, 1 = off")
        top_k: int | None = Field(None, description="0 = off; default 40")
        min_p: float | None = Field(None, description="0 = off; default 0.05")
        max_tokens: int | None = Field(None, description="new tokens at most; default 256")
        seed: int | None = Field(None, description="fixed seed for a reproducible answer")
        lead: int | None = Field(None, description="tokens the aligned model writes first")
        repeat_penalty: float | None = Field(None, description="1 = off; default 1.1")

    def __init__(self, model_id: str, pair_name: str | None):
        self.model_id = model_id
        self.pair_name = pair_name
        self._pair = None

    def __str__(self) -> str:
        return f"baco: {self.model_id}"

    def execute(self, prompt, stream, response, conversation):
        try:
            pair = self.pair()
            changes = {k: v for k, v in prompt.options.model_dump().items() if v is not None}
            generation = pair.stream(_messages(prompt, conversation), **changes)
        except BacoError as error:
            raise llm.ModelError(str(error)) from None
        events = iter(generation)
        shown = 0
        try:
            for event in events:
                shown += len(event.text)
                yield event.text
        finally:
            events.close()  # a reader that stops early ends the answer there
        result = generation.result
        if len(result.text) > shown:
            yield result.text[shown:]  # text held back while it could begin a stop string
        response.response_json = {
            "pair": result.pair,
            "router": result.settings.router,
            "gamma": result.settings.gamma,
            "seed": result.settings.seed,
            "finish_reason": result.finish_reason,
            "base_fraction": round(result.stats.base_fraction, 4),
        }
        response.set_usage(
            input=result.stats.prompt_tokens.get("aligned"), output=result.stats.tokens
        )

    def pair(self):
        """The loaded pair (loaded on first use)."""
        if self._pair is None:
            from .api import Pair

            base = os.environ.get("BACO_LLM_BASE") if self.pair_name is None else None
            if base:
                aligned = os.environ.get("BACO_LLM_ALIGNED") or "in-context"
                self._pair = Pair.load(base=base, aligned=aligned)
            else:
                self._pair = Pair.load(self.pair_name)
        return self._pair

    def close(self) -> None:
        if self._pair is not None:
            self._pair.close()
            self._pair = None


def _messages(prompt, conversation) -> list[dict]:
    """The conversation so far, then this prompt, as role/content messages."""
    messages = []
    system = None
    turns = [(r.prompt, r.text()) for r in conversation.responses] if conversation else []
    for earlier, answer in [*turns, (prompt, None)]:
        if earlier.system and earlier.system != system:
            system = earlier.system
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": earlier.prompt})
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
    return messages
