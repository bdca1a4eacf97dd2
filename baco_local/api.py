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
import os
import random
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from .core.events import Result
from .core.routers import ALIGNED
from .core.settings import GenerationSettings, LoadSettings
from .decoding.batch_loop import BatchLoop
from .decoding.requests_many import Finished, Request
from .decoding.scheduler import Scheduler
from .errors import BacoError, SettingsError
from .pairs.loading import LoadedPair, PairSpec
from .pairs.prompt_formats import Message, to_messages

Prompt = str | Sequence[Message | Mapping[str, str]]


class Pair:
    """A loaded base/aligned pair ready to generate. One generation runs at a time."""

    def __init__(self, loaded: LoadedPair):
        self.loaded = loaded
        self.roles = loaded.roles[ALIGNED]
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
        return cls(LoadedPair(spec, settings))

    @property
    def label(self) -> str:
        return self.loaded.label

    @property
    def notes(self) -> list[str]:
        return list(self.loaded.notes)

    @property
    def default_settings(self) -> GenerationSettings:
        """Defaults for this pair: the catalog's recommended router, gamma, lead and
        sampler, if any."""
        from .core.sampler_presets import sampler_changes

        spec = self.loaded.spec
        settings = GenerationSettings()
        if spec.router is not None:
            settings = settings.with_changes(router=spec.router, gamma=spec.gamma)
        if spec.lead is not None:
            settings = settings.with_changes(lead=spec.lead)
        return settings.with_changes(**sampler_changes(spec.sampler, spec.temperature))

    def check_settings(self, settings: GenerationSettings) -> None:
        """Raise SettingsError for settings this pair cannot honour (the ensemble baseline
        on a pair of two vocabularies); generating checks this too, before any work."""
        self.loaded.check_settings(settings)

    def stream(
        self,
        prompt: Prompt,
        settings: GenerationSettings | None = None,
        *,
        system: str | None = None,
        raw: bool = False,
        ignore_end: bool = False,
        **changes,
    ) -> _Locked:
        """Start an answer; iterate the result for TokenEvents, then read `.result`.

        prompt: a string, or messages ({"role", "content"} dicts or Message objects)
        ending with a user message. raw: feed the prompt text unchanged to both models.
        ignore_end: run to max_tokens past end-of-turn and stop strings (benchmarks).
        changes: GenerationSettings fields (router, gamma, temperature, max_tokens, seed...).
        """
        settings = _with_seed((settings or self.default_settings).with_changes(**changes))
        self.loaded.check_settings(settings)
        messages = to_messages(prompt, system)
        with self._gate.held():  # formatting reads the models: not while closing
            return _Locked(self._batch(messages, [settings], raw, ignore_end), self._gate)

    def _batch(self, messages, settings: list[GenerationSettings], raw, ignore_end, first=0):
        return BatchLoop(
            self.loaded,
            messages,
            settings,
            raw=raw,
            scheduler=self.scheduler,
            ignore_end=ignore_end,
            first_index=first,
        )

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
        settings = _with_seed((settings or self.default_settings).with_changes(**changes))
        self.loaded.check_settings(settings)
        every = [settings.with_changes(seed=settings.seed + i) for i in range(n)]
        messages = to_messages(prompt, system)

        def groups():
            done = 0
            while done < n:
                with self._gate.held():
                    batch = self._batch(messages, every[done:], raw, ignore_end, first=done)
                done += len(batch.answers)
                yield _Locked(batch, self._gate)

        return Answers(groups)

    def answer_all(self, requests: Iterable[Request]) -> Iterator[Finished]:
        """Answer many requests (each its own prompt, settings and n); yield each answer
        as it ends. Closing the iterator (or Ctrl-C) stops the answers in progress: what
        was yielded before is complete. Requests are read from the iterable as the
        batch has room for them."""
        for request in requests:
            messages = to_messages(request.messages)
            done = request.first_answer
            while done < request.n:
                every = [request.answer_settings(i) for i in range(done, request.n)]
                with self._gate.held():
                    batch = self._batch(messages, every, request.raw, request.ignore_end, done)
                group = _Locked(batch, self._gate)
                try:
                    for _ in group:
                        for index, result in batch.take_finished():
                            yield Finished(request.id, index, result)
                finally:
                    group.cancel()
                for index, result in batch.take_finished():
                    if result.finish_reason != "cancelled":
                        yield Finished(request.id, index, result)
                done += len(batch.answers)

    def brainstorm(
        self, prompt: Prompt, n: int = 5, settings: GenerationSettings | None = None, **kw
    ) -> list[Result]:
        """n answers to one prompt, seeds seed, seed+1, ... (see stream_answers)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
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
    """Several answers to one prompt, generated as one job (in groups of at most
    LoadSettings.n_parallel answers, decoded together). Iterate for TokenEvents (each
    with its answer's index); `.results` holds the Results once done (None before);
    `cancel()` stops them all, keeping what each produced (answers of a group not yet
    started are left out)."""

    def __init__(self, groups):
        self._groups = groups
        self._current = None
        self._cancelled = threading.Event()
        self.results: list[Result] | None = None
        self.histories: list[dict[str, list[int]]] = []  # each model's tokens, per answer
        self._leftover: list[tuple[int, Result]] = []

    def __iter__(self):
        if self.results is not None:
            for result in self.results:
                yield from result.tokens
            return
        results: list[Result] = []
        try:
            for group in self._groups():
                if self._cancelled.is_set() and results:
                    break
                self._current = group
                if self._cancelled.is_set():
                    group.cancel()
                try:
                    yield from group
                finally:  # also when interrupted: keep what the group produced
                    self._leftover += self._take(group)
                    results.extend(r for r in _results_of(group) if r is not None)
                    for answer in getattr(group.generation, "answers", ()):
                        self.histories.append(answer.histories)
        finally:
            self.results = results

    def run(self) -> list[Result]:
        for _ in self:
            pass
        return self.results

    def take_finished(self) -> list[tuple[int, Result]]:
        """(answer index, result) of answers that ended since the last call, all of whose
        events were yielded: a caller can finish each answer as soon as it ends."""
        done, self._leftover = self._leftover + self._take(self._current), []
        return done

    @staticmethod
    def _take(group) -> list[tuple[int, Result]]:
        take = getattr(getattr(group, "generation", None), "take_finished", None)
        return take() if take is not None else []

    def cancel(self) -> None:
        self._cancelled.set()
        if self._current is not None:
            self._current.cancel()


def _results_of(group) -> list[Result]:
    results = getattr(group.generation, "results", None)
    return list(results) if results is not None else [group.result]


def _with_seed(settings: GenerationSettings) -> GenerationSettings:
    if settings.seed is not None:
        return settings
    return settings.with_changes(seed=random.SystemRandom().randrange(2**31))


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
    """A generation (a BatchLoop) that holds the pair's gate while it runs."""

    def __init__(self, generation: BatchLoop, gate: _Gate):
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
