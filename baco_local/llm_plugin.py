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


def _options() -> type[llm.Options]:
    """llm's options for baco: every GenerationSettings field under its own name, None
    (left out) meaning the pair's default, each described by the field's help text."""
    from pydantic import create_model

    from .core.settings_fields import generation_fields

    options = {}
    for setting in generation_fields():
        # a repeated field (stop) takes one string from `-o stop TEXT` or a list in Python
        kind = (list[setting.kind] | setting.kind) if setting.repeated else setting.kind
        options[setting.name] = (kind | None, Field(None, description=setting.help))
    return create_model("Options", __base__=llm.Options, **options)


class BacoModel(llm.Model):
    """One pair. Options left out take the pair's defaults (`baco routers` lists routers)."""

    can_stream = True

    Options = _options()  # one option per GenerationSettings field, with its help

    def __init__(self, model_id: str, pair_name: str | None):
        self.model_id = model_id
        self.pair_name = pair_name
        self._pair = None

    def __str__(self) -> str:
        return f"baco: {self.model_id}"

    def execute(self, prompt, stream, response, conversation):
        try:
            pair = self.pair()
            changes = _changes(prompt.options)
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


def _changes(options) -> dict:
    """The GenerationSettings fields an `llm` prompt's options set."""
    changes = {k: v for k, v in options.model_dump().items() if v is not None}
    if isinstance(changes.get("stop"), str):
        changes["stop"] = (changes["stop"],)
    return changes


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
