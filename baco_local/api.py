"""The Python API: load a pair, then generate, stream, or brainstorm.

from baco_local import Pair

with Pair.load(base="base.gguf", aligned="instruct.gguf") as pair:
    print(pair.generate("Name three moons.", router="p-punc", gamma=0.5).text)
    for event in pair.stream("Tell me a story", max_tokens=64):
        print(event.text, end="", flush=True)
    ideas = pair.brainstorm("Give me a startup idea.", n=5)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import random
import threading
from collections.abc import Mapping, Sequence

from .core.events import Result
from .core.settings import GenerationSettings, LoadSettings
from .core.token_roles import TokenRoles
from .decoding.scheduler import Scheduler
from .decoding.token_loop import Generation
from .errors import BacoError, SettingsError
from .pairs.loading import LoadedPair, PairSpec
from .pairs.prompt_formats import Message, to_messages

Prompt = str | Sequence[Message | Mapping[str, str]]


class Pair:
    """A loaded base/aligned pair ready to generate. One generation runs at a time."""

    def __init__(self, loaded: LoadedPair, *, prefetch: bool = True):
        self.loaded = loaded
        self.prefetch = prefetch
        model = loaded.aligned_model
        self.roles = TokenRoles(loaded.n_vocab, model.piece, model.is_control)
        self.scheduler = Scheduler(loaded.n_threads)
        self._gate = _Gate()

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
            from .models.catalog import resolve_pair_spec

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
        with self._gate.held():  # formatting reads the models: not while closing
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
        return _Locked(generation, self._gate)

    def generate(self, prompt: Prompt, settings: GenerationSettings | None = None, **kw) -> Result:
        """Generate one whole answer."""
        return self.stream(prompt, settings, **kw).run()

    def stream_answers(
        self,
        prompt: Prompt,
        n: int,
        settings: GenerationSettings | None = None,
        *,
        system: str | None = None,
        raw: bool = False,
        ignore_end: bool = False,
        **changes,
    ) -> Answers:
        """Start n answers to one prompt (seeds seed, seed+1, ...); iterate the result for
        TokenEvents (`event.answer` says whose), then read `.results` (n Results, in order).
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SettingsError(
                f"n must be a whole number of answers >= 1 (got {n!r}).", "ask for n=5"
            )
        settings = (settings or self.default_settings).with_changes(**changes)
        if settings.seed is None:
            settings = settings.with_changes(seed=random.SystemRandom().randrange(2**31))
        starts = [
            functools.partial(
                self.stream,
                prompt,
                settings.with_changes(seed=settings.seed + i),
                system=system,
                raw=raw,
                ignore_end=ignore_end,
            )
            for i in range(n)
        ]
        return Answers(starts)

    def brainstorm(
        self, prompt: Prompt, n: int = 5, settings: GenerationSettings | None = None, **kw
    ) -> list[Result]:
        """n answers to one prompt, seeds seed, seed+1, ... (see stream_answers)."""
        if not isinstance(n, int) or n < 1:
            raise SettingsError(f"brainstorm needs n >= 1 answers (got {n}).", "ask for n=5")
        return self.stream_answers(prompt, n, settings, **kw).run()

    def close(self) -> None:
        """Free the models (waits for a running generation to end). Idempotent."""
        if self._gate.closed:
            return
        with self._gate.held():
            self._gate.closed = True
            self.scheduler.close()
            self.loaded.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Answers:
    """Several answers to one prompt, generated as one job. Iterate for TokenEvents
    (each with its answer's index); `.results` holds the Results once done (None
    before); `cancel()` stops them all, keeping what each produced (answers not yet
    started are left out)."""

    def __init__(self, starts):
        self._starts = starts
        self._current = None
        self._cancelled = threading.Event()
        self.results: list[Result] | None = None

    def __iter__(self):
        if self.results is not None:
            for result in self.results:
                yield from result.tokens
            return
        results = []
        for index, start in enumerate(self._starts):
            if self._cancelled.is_set() and results:
                break
            generation = self._current = start()
            if self._cancelled.is_set():
                generation.cancel()
            for event in generation:
                yield dataclasses.replace(event, answer=index)
            results.append(generation.result)
        self.results = results

    def run(self) -> list[Result]:
        for _ in self:
            pass
        return self.results

    def cancel(self) -> None:
        self._cancelled.set()
        if self._current is not None:
            self._current.cancel()


class _Gate:
    """One generation at a time per pair. Another thread waits its turn; the same thread
    starting a second one while the first is still open gets an error, not a deadlock;
    after close() everything is refused, since the native models are gone."""

    def __init__(self):
        self._lock = threading.Lock()
        self._owner: int | None = None
        self.closed = False

    @contextlib.contextmanager
    def held(self):
        if self._owner == threading.get_ident():
            raise BacoError(
                "Another generation on this pair is still open in this thread.",
                "iterate it to the end (or call .cancel() and then iterate) before starting "
                "the next one",
            )
        with self._lock:
            if self.closed:
                raise BacoError("This pair is closed.", "load it again with Pair.load(...)")
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None


class _Locked:
    """A Generation that holds the pair's gate while it runs."""

    def __init__(self, generation: Generation, gate: _Gate):
        self.generation = generation
        self._gate = gate

    def __iter__(self):
        with self._gate.held():
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
