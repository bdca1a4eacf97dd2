"""The Python API: load a pair, then generate, stream, or brainstorm.

from baco_local import Pair

with Pair.load(base="base.gguf", aligned="instruct.gguf") as pair:
    print(pair.generate("Name three moons.", router="p-punc", gamma=0.5).text)
    for event in pair.stream("Tell me a story", max_tokens=64):
        print(event.text, end="", flush=True)
    ideas = pair.brainstorm("Give me a startup idea.", n=5)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

from .engine import Generation
from .events import Result
from .pair import LoadedPair, PairSpec
from .prompt_formats import Message, to_messages
from .scheduler import Scheduler
from .settings import GenerationSettings, LoadSettings
from .token_roles import TokenRoles

Prompt = str | Sequence[Message | Mapping[str, str]]


class Pair:
    """A loaded base/aligned pair ready to generate. One generation runs at a time."""

    def __init__(self, loaded: LoadedPair, *, prefetch: bool = True):
        self.loaded = loaded
        self.prefetch = prefetch
        model = loaded.aligned_model
        self.roles = TokenRoles(loaded.n_vocab, model.piece, model.is_control)
        self.scheduler = Scheduler(loaded.n_threads)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        name: str | None = None,
        *,
        base: str | os.PathLike | None = None,
        aligned: str | os.PathLike | None = None,
        base_format: str | None = None,
        aligned_format: str | None = None,
        settings: LoadSettings | None = None,
        prefetch: bool = True,
        **load_options,
    ) -> Pair:
        """Load a catalog pair by name, or two GGUF files (aligned may be "in-context").

        With neither, loads the default pair. load_options are LoadSettings fields
        (n_ctx, n_threads, n_gpu_layers, n_batch, verbose).
        """
        settings = settings or LoadSettings(**load_options)
        if base is not None:
            spec = PairSpec(
                base,
                aligned if aligned is not None else "in-context",
                base_format=base_format,
                aligned_format=aligned_format,
                name=name,
            )
        else:
            from .catalog import resolve_pair_spec

            spec = resolve_pair_spec(name, base_format=base_format, aligned_format=aligned_format)
        return cls(LoadedPair(spec, settings), prefetch=prefetch)

    @property
    def label(self) -> str:
        return self.loaded.label

    @property
    def notes(self) -> list[str]:
        return list(self.loaded.notes)

    @property
    def default_settings(self) -> GenerationSettings:
        """Defaults for this pair: the catalog's recommended router and gamma, if any."""
        spec = self.loaded.spec
        if spec.router is None:
            return GenerationSettings()
        return GenerationSettings(router=spec.router, gamma=spec.gamma)

    def stream(
        self,
        prompt: Prompt,
        settings: GenerationSettings | None = None,
        *,
        system: str | None = None,
        raw: bool = False,
        ignore_end: bool = False,
        **changes,
    ) -> Generation:
        """Start an answer; iterate the result for TokenEvents, then read `.result`.

        prompt: a string, or messages ({"role", "content"} dicts or Message objects)
        ending with a user message. raw: feed the prompt text unchanged to both models.
        ignore_end: run to max_tokens past end-of-turn and stop strings (benchmarks).
        changes: GenerationSettings fields (router, gamma, temperature, max_tokens, seed...).
        """
        settings = (settings or self.default_settings).with_changes(**changes)
        messages = to_messages(prompt, system)
        generation = Generation(
            self.loaded,
            messages,
            settings,
            raw=raw,
            roles=self.roles,
            scheduler=self.scheduler,
            prefetch=self.prefetch,
            ignore_end=ignore_end,
        )
        return _Locked(generation, self._lock)

    def generate(self, prompt: Prompt, settings: GenerationSettings | None = None, **kw) -> Result:
        """Generate one whole answer."""
        return self.stream(prompt, settings, **kw).run()

    def brainstorm(
        self, prompt: Prompt, n: int = 5, settings: GenerationSettings | None = None, **kw
    ) -> list[Result]:
        """n answers to one prompt, seeds seed, seed+1, ... (the prompt is read once)."""
        first = self.generate(prompt, settings, **kw)
        seed = first.settings.seed
        rest = [
            self.generate(prompt, first.settings.with_changes(seed=seed + i), **_no_seed(kw))
            for i in range(1, n)
        ]
        return [first, *rest]

    def close(self) -> None:
        with self._lock:
            self.scheduler.close()
            self.loaded.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _no_seed(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if k != "seed"}


class _Locked:
    """A Generation that holds the pair's lock while it runs."""

    def __init__(self, generation: Generation, lock: threading.Lock):
        self.generation = generation
        self._lock = lock

    def __iter__(self):
        with self._lock:
            yield from self.generation

    def run(self) -> Result:
        for _ in self:
            pass
        return self.generation.result

    def cancel(self) -> None:
        self.generation.cancel()

    @property
    def result(self) -> Result | None:
        return self.generation.result

    @property
    def settings(self) -> GenerationSettings:
        return self.generation.settings
