"""The Python API: load a pair, then generate, stream, or brainstorm.

from baco_local import Pair

with Pair.load(base="base.gguf", aligned="instruct.gguf") as pair:
    print(pair.generate("Name three moons.", router="p-punc", gamma=0.5).text)
    for event in pair.stream("Tell me a story", max_tokens=64):
        print(event.text, end="", flush=True)
    ideas = pair.brainstorm("Give me a startup idea.", n=5)
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from .core.events import Result, TokenEvent
from .core.routers import ALIGNED
from .core.settings import GenerationSettings, LoadSettings, check_settings_object
from .decoding.batch_loop import BatchLoop
from .decoding.handle import Handle
from .decoding.requests_many import Finished, Request
from .decoding.scheduler import Scheduler
from .errors import BacoError, SettingsError
from .pairs.loading import LoadedPair, PairSpec
from .pairs.prompt_formats import Message, to_messages

Prompt = str | Sequence[Message | Mapping[str, str]]


class Pair:
    """A loaded base/aligned pair ready to generate. Answers started from several threads
    (or several at once from one) are decoded together, in one batch."""

    def __init__(self, loaded: LoadedPair):
        self.loaded = loaded
        self.roles = loaded.roles[ALIGNED]
        self.scheduler = Scheduler(loaded.n_threads)
        self.loop = BatchLoop(loaded, self.scheduler)
        self._closed = False
        self._ids = itertools.count()

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
        if base is None and aligned is not None:
            raise SettingsError(
                f"aligned={aligned!r} needs base= too.",
                "give base= and aligned= together, or a catalog pair's name alone",
            )
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
        return self.loaded.spec.recommended_settings()

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
    ) -> AnswerStream:
        """Start an answer; iterate the result for TokenEvents, then read `.result`.

        prompt: a string, or messages ({"role", "content"} dicts or Message objects)
        ending with a user message. raw: feed the prompt text unchanged to both models.
        ignore_end: run to max_tokens past end-of-turn and stop strings (benchmarks).
        changes: GenerationSettings fields (router, gamma, temperature, max_tokens, seed...).
        """
        handle = self.stream_answers(
            prompt, 1, settings, system=system, raw=raw, ignore_end=ignore_end, **changes
        )
        return AnswerStream(handle)

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
    ) -> Handle:
        """Start n answers to one prompt (seeds seed, seed+1, ...); iterate the result for
        TokenEvents (`event.answer` says whose), then read `.results` (n Results, in order).
        At most LoadSettings.n_parallel answers (and what the context holds) decode at
        once; the others start as sequences free up.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SettingsError(
                f"n must be a whole number of answers >= 1 (got {n!r}).", "ask for n=5"
            )
        if settings is not None:
            check_settings_object(settings)
        settings = _with_seed((settings or self.default_settings).with_changes(**changes))
        request = Request(
            f"request-{next(self._ids)}",
            to_messages(prompt, system),
            settings,
            n=n,
            raw=raw,
            ignore_end=ignore_end,
        )
        return self.submit(request)

    def check(self, request: Request) -> None:
        """Raise the BacoError `submit` would raise for this request (settings this pair
        cannot honour, a prompt that does not fit), without queueing it."""
        self.loop.prepare(request)  # checks every answer's settings, then the prompts

    def submit(self, request: Request) -> Handle:
        """Queue a request; iterate the Handle for its events (this drives the decoding)."""
        if self._closed:
            raise BacoError("This pair is closed.", "load it again with Pair.load(...)")
        self.loaded.check_settings(request.settings)
        return self.loop.submit(request)

    def answer_all(
        self,
        requests: Iterable[Request],
        ahead: int | None = None,
        on_error: Callable[[Request, BacoError], None] | None = None,
    ) -> Iterator[Finished]:
        """Answer many requests (each its own prompt, settings and n); yield each answer
        as it ends. Requests are taken from the iterable as the batch has room for them
        (`ahead`: answers kept waiting beyond those decoding, n_parallel by default).
        A request that cannot be answered (a prompt longer than the context) raises its
        BacoError, or, with `on_error`, is passed to it and skipped.
        Closing the iterator (or Ctrl-C) stops the answers in progress: what was yielded
        before is complete."""
        ahead = self.loaded.load_settings.n_parallel if ahead is None else ahead
        pending = iter(requests)
        handles: list[Handle] = []
        exhausted = False
        ids: set[str] = set()  # answers are told apart by (request id, answer index)
        try:
            while True:
                while not exhausted and self.loop.waiting <= ahead:
                    request = next(pending, None)
                    if request is None:
                        exhausted = True
                    elif not isinstance(request, Request):
                        raise SettingsError(
                            f"answer_all takes Requests, not {type(request).__name__} "
                            f"({request!r:.40}).",
                            'build each with Request("id", "prompt", settings) (a string '
                            "is a single prompt: use pair.generate)",
                        )
                    elif request.first_answer < request.n:
                        try:
                            if request.id in ids:
                                raise SettingsError(
                                    f"Two requests have the id {request.id!r}.",
                                    "give each request its own id",
                                )
                            ids.add(request.id)
                            handles.append(self.submit(request))
                        except BacoError as error:
                            if on_error is None:
                                raise
                            on_error(request, error)
                if not handles:
                    return
                self.loop.drive()
                for handle in list(handles):
                    handle.poll()  # events are not wanted here: only whole answers
                    for index, result in handle.take_finished():
                        yield Finished(handle.request.id, index, result)
                    if handle.done:
                        handles.remove(handle)
        finally:
            for handle in handles:
                handle.cancel()
            for handle in handles:
                for _ in handle:
                    pass

    def brainstorm(
        self, prompt: Prompt, n: int = 5, settings: GenerationSettings | None = None, **kw
    ) -> list[Result]:
        """n answers to one prompt, seeds seed, seed+1, ... (see stream_answers)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SettingsError(f"brainstorm needs n >= 1 answers (got {n}).", "ask for n=5")
        return self.stream_answers(prompt, n, settings, **kw).run()

    def close(self) -> None:
        """Free the models (answers still running end with what they wrote). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.loop.close()
        self.loaded.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AnswerStream:
    """One answer being generated: iterate it for TokenEvents; then `.result`. cancel()
    (any thread) stops it, keeping what it wrote."""

    def __init__(self, handle: Handle):
        self.handle = handle

    def __iter__(self) -> Iterator[TokenEvent]:
        return iter(self.handle)

    def run(self) -> Result:
        for _ in self:
            pass
        return self.result

    def cancel(self) -> None:
        self.handle.cancel()

    @property
    def result(self) -> Result | None:
        return self.handle.result

    @property
    def settings(self) -> GenerationSettings:
        return self.handle.settings


def _with_seed(settings: GenerationSettings) -> GenerationSettings:
    if settings.seed is not None:
        return settings
    return settings.with_changes(seed=random.SystemRandom().randrange(2**31))
