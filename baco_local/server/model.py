"""The pair behind the server: up to `parallel` requests answered at once, in one batch,
the rest in a bounded queue.

Each request's answers are read on a worker thread of their own, which iterates the
request's Handle: the pair's batched loop decodes every running request's answers
together, one step at a time, stepped by whichever worker is waiting (so llama.cpp is
called by one thread at a time). Their TokenEvents come back to the event loop through
an asyncio queue. A request that finds `parallel` requests running and `queue` others
already waiting is refused at once (HTTP 429) rather than left to hang.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..core.events import Result, TokenEvent
from ..core.routers import ROUTERS
from ..core.settings import GenerationSettings
from ..errors import BacoError, SettingsError
from .errors import ApiError, from_baco_error, queue_full, shutting_down
from .protocol import GenerationRequest


@dataclass(frozen=True)
class _End:
    results: tuple[Result, ...]


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class Job:
    """One request's answers. The worker thread runs `run`; the event loop reads `events`.

    cancel() is safe from any thread: a running job stops before its next token and keeps
    what it wrote; a job still waiting its turn ends at once without touching the pair.
    """

    def __init__(
        self,
        start: Callable,
        loop: asyncio.AbstractEventLoop,
        prompt_param: str,
        on_done: Callable[[Job], None],
    ):
        self._start = start  # () -> Answers (see Pair.stream_answers)
        self._loop = loop
        self._prompt_param = prompt_param
        self._on_done = on_done  # called on the loop once the last item is delivered
        self._items: asyncio.Queue = asyncio.Queue()
        self._first = None  # the first item, once wait_started has read it
        self._lock = threading.Lock()
        self._started = False
        self._cancelled = False
        self._error: ApiError | None = None  # what to answer if no answer ever began
        self._answers = None
        self.results: tuple[Result, ...] | None = None

    # --- the worker thread's side ---------------------------------------------------------

    def run(self) -> None:
        with self._lock:
            if self._cancelled:
                return  # cancelled while waiting: cancel() has ended it already
            self._started = True
        try:
            answers = self._start()
            with self._lock:
                self._answers = answers
                cancelled = self._cancelled
            if cancelled:
                answers.cancel()
            for event in answers:
                self._post(event)
            results = tuple(answers.results)
            with self._lock:
                error = self._error
            if not results and error is not None:
                # Stopped before any of its answers began (they waited for a sequence
                # in the batch): a waiting request, answered as one.
                self._post(_Failed(error))
            else:
                self._post(_End(results))
        except BacoError as error:  # settings and prompts found out only now
            self._post(_Failed(from_baco_error(error, self._prompt_param)))
        except Exception as error:
            self._post(_Failed(error))

    def _post(self, item) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancel()

    def _deliver(self, item) -> None:
        self._items.put_nowait(item)
        if isinstance(item, (_End, _Failed)):
            self._on_done(self)

    # --- any thread -----------------------------------------------------------------------

    def cancel(self, error: ApiError | None = None) -> None:
        """Stop the answers. A job none of whose answers has begun ends with `error` if
        given (on a worker already, or still waiting for one)."""
        with self._lock:
            already = self._cancelled
            self._cancelled = True
            self._error = self._error or error
            started, answers = self._started, self._answers
        if answers is not None:
            answers.cancel()
        elif not started and not already:
            self._post(_Failed(error) if error else _End(()))

    # --- the event loop's side ------------------------------------------------------------

    async def wait_started(self) -> None:
        """Wait for the first token (or the end). Errors found before any token, such as a
        prompt longer than the context, are raised here, before a response has begun."""
        self._first = await self._items.get()
        if isinstance(self._first, _Failed):
            raise self._first.error

    async def events(self) -> AsyncIterator[TokenEvent]:
        """The TokenEvents as they come; afterwards `results` holds the Results."""
        item = self._first if self._first is not None else await self._items.get()
        while True:
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, _End):
                self.results = item.results
                return
            yield item
            item = await self._items.get()

    async def finish(self) -> tuple[Result, ...]:
        """Wait for the end; return the Results."""
        async for _ in self.events():
            pass
        return self.results


class PairHost:
    """Owns the loaded pair for the server's lifetime.

    parallel: requests answered at once (default: the answers the pair decodes together,
    LoadSettings.n_parallel). queue: how many more may wait; past that, HTTP 429.
    model_id: the pair's name in /v1/models (with `:<router>` for each router).
    """

    def __init__(self, pair, defaults: GenerationSettings, queue: int, parallel: int | None = None):
        self.pair = pair
        self.defaults = defaults
        self.queue = queue
        self.parallel = pair.loaded.load_settings.n_parallel if parallel is None else parallel
        self.model_id = model_id(pair)
        self.stopping = False
        self._jobs: list[Job] = []  # admitted and not yet done, in order of arrival
        self._worker = ThreadPoolExecutor(
            max_workers=self.parallel, thread_name_prefix="baco-generate"
        )

    @property
    def model_ids(self) -> list[str]:
        """The pair's id, then one per router this pair can run."""
        return [self.model_id] + [
            f"{self.model_id}:{name}" for name in ROUTERS if self._runs_router(name)
        ]

    def _runs_router(self, name: str) -> bool:
        try:
            self.pair.check_settings(self.defaults.with_changes(router=name))
        except SettingsError:
            return False
        return True

    @property
    def running(self) -> int:
        """Requests being answered (each on a worker)."""
        return min(len(self._jobs), self.parallel)

    @property
    def waiting(self) -> int:
        """Requests admitted that wait for a worker."""
        return max(len(self._jobs) - self.parallel, 0)

    def load(self) -> dict:
        """What /health reports: requests running and waiting, and the batch's answers."""
        loop = self.pair.loop
        return {
            "parallel": self.parallel,
            "running": self.running,
            "waiting": self.waiting,
            "answers_decoding": loop.running,
            "answers_waiting": loop.waiting,
        }

    def submit(self, request: GenerationRequest) -> Job:
        """Queue the request's answers (call on the event loop). Raises ApiError: 429 when
        `queue` requests are already waiting, 503 while shutting down."""
        if self.stopping:
            raise shutting_down()
        if len(self._jobs) >= self.parallel + self.queue:
            raise queue_full(self.parallel, self.queue)
        try:
            self.pair.check_settings(request.settings)  # what this pair cannot do
        except BacoError as error:
            raise from_baco_error(error, "router") from None

        def start():
            return self.pair.stream_answers(
                request.prompt,
                request.n,
                request.settings,
                raw=request.raw,
                ignore_end=request.ignore_eos,
            )

        job = Job(start, asyncio.get_running_loop(), request.prompt_param, self._jobs.remove)
        self._jobs.append(job)
        self._worker.submit(job.run)
        return job

    def stop(self) -> None:
        """Begin shutting down (call on the event loop): refuse new requests, end the
        running answers with what they have, and answer waiting requests with 503."""
        self.stopping = True
        for job in list(self._jobs):
            job.cancel(shutting_down())

    def close(self) -> None:
        """After the server has stopped: wait for the worker, then free the models."""
        for job in list(self._jobs):
            job.cancel(shutting_down())
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.pair.close()


def model_id(pair) -> str:
    """The pair's model id: its catalog name, else the base file's name."""
    spec = pair.loaded.spec
    return spec.name or pair.loaded.base_model.path.name.removesuffix(".gguf")
