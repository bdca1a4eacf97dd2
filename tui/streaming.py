"""Running answers in a worker thread: batching token events and stopping on request.

Nothing here touches widgets. A worker calls `run_answers`, which iterates each
generation and hands events to `post` in small batches (at most ~30 a second, so a fast
model does not flood the event loop), then the result. `Job.cancel()` may be called from
the UI thread at any time: it stops the running generation before its next token and
keeps what was produced; answers not yet started are skipped.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .messages import AnswerDone, AnswerFailed, JobFinished, TokensArrived

BATCH_SECONDS = 1 / 30
_job_ids = itertools.count(1)


@dataclass
class Job:
    """One request (one chat answer, one brainstorm set, one comparison)."""

    id: int = field(default_factory=lambda: next(_job_ids))
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _generation: object | None = None

    def attach(self, generation) -> None:
        """Called by the worker for each generation it starts."""
        self._generation = generation
        if self._cancelled.is_set():  # cancel() ran before the generation existed
            generation.cancel()

    def cancel(self) -> None:
        self._cancelled.set()
        generation = self._generation
        if generation is not None:
            generation.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


@dataclass(frozen=True)
class AnswerRequest:
    """One answer to produce: the conversation, its settings and system prompt."""

    messages: Sequence[dict]
    settings: object  # GenerationSettings
    system: str | None = None


def run_answers(
    pair, job: Job, requests: Sequence[AnswerRequest], post: Callable[[object], None]
) -> None:
    """Generate each request in turn (slot = its index), posting messages as they come.

    An error in one answer (a BacoError such as a full context; or a bug) is posted as
    AnswerFailed, never raised: the app shows it and stays up, and the next answer runs.
    """
    for slot, request in enumerate(requests):
        if job.cancelled:
            break
        try:
            generation = pair.stream(request.messages, request.settings, system=request.system)
            job.attach(generation)
            _stream_one(generation, job, slot, post)
        except Exception as error:  # noqa: BLE001 - shown to the user, see docstring
            post(AnswerFailed(job.id, slot, error))
    post(JobFinished(job.id))


def _stream_one(generation, job: Job, slot: int, post) -> None:
    batch: list = []
    last_post = time.monotonic()
    for event in generation:
        batch.append(event)
        now = time.monotonic()
        if now - last_post >= BATCH_SECONDS:
            post(TokensArrived(job.id, slot, batch))
            batch, last_post = [], now
    if batch:
        post(TokensArrived(job.id, slot, batch))
    post(AnswerDone(job.id, slot, generation.result))
