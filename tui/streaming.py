"""Running answers in a worker thread, and handing their tokens to the UI.

Nothing here touches widgets. A worker calls `run_answers`, which iterates each
generation and puts every token event into the job's `Outbox`. The outbox posts one
`TokensArrived` message when it goes from empty to non-empty; the UI takes everything
waiting when it handles that message. So when the UI is idle each token is shown as soon
as it exists, and when the UI is busy a fast model's tokens arrive as one batch: the event
loop is never flooded, and no token ever waits unseen for the next one.

`Job.cancel()` may be called from the UI thread at any time: it stops the running
generation before its next token, keeping what was produced; answers not started are
skipped.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .messages import AnswerDone, AnswerFailed, JobFinished, TokensArrived

_job_ids = itertools.count(1)


class Outbox:
    """Token events from one worker to the UI: the worker puts, the UI takes."""

    def __init__(self, job_id: int, post: Callable[[object], None]):
        self._job_id, self._post = job_id, post
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, object]] = []
        self._announced = False  # a TokensArrived is on its way and not yet handled

    def put(self, slot: int, event) -> None:
        with self._lock:
            self._waiting.append((slot, event))
            announce, self._announced = not self._announced, True
        if announce:
            self._post(TokensArrived(self._job_id))

    def take(self) -> list[tuple[int, list]]:
        """Everything waiting, as (slot, events) runs in arrival order."""
        with self._lock:
            waiting, self._waiting, self._announced = self._waiting, [], False
        runs: list[tuple[int, list]] = []
        for slot, event in waiting:
            if runs and runs[-1][0] == slot:
                runs[-1][1].append(event)
            else:
                runs.append((slot, [event]))
        return runs


class Job:
    """One request (one chat answer, one brainstorm set, one comparison)."""

    def __init__(self):
        self.id = next(_job_ids)
        self._cancelled = threading.Event()
        self._generation = None
        self.outbox: Outbox | None = None

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

    def take_events(self) -> list[tuple[int, list]]:
        return self.outbox.take() if self.outbox is not None else []


@dataclass(frozen=True)
class AnswerRequest:
    """Answers to produce: the conversation, its settings and system prompt; n > 1
    answers (seeds seed, seed+1, ...) are decoded together and take n slots."""

    messages: Sequence[dict]
    settings: object  # GenerationSettings
    system: str | None = None
    n: int = 1


def run_answers(
    pair, job: Job, requests: Sequence[AnswerRequest], post: Callable[[object], None]
) -> None:
    """Generate each request in turn, posting messages as they come. A request takes
    slots slot..slot+n-1 (its answers, decoded together: their tokens interleave).

    An error in one request (a BacoError such as a full context; or a bug) is posted as
    AnswerFailed for each of its slots, never raised: the app shows it and stays up, and
    the next request runs.
    """
    job.outbox = Outbox(job.id, post)
    slot = 0
    for request in requests:
        if job.cancelled:
            break
        done: set[int] = set()
        try:
            if request.n == 1:
                generation = pair.stream(request.messages, request.settings, system=request.system)
            else:
                generation = pair.stream_answers(
                    request.messages, request.n, request.settings, system=request.system
                )
            job.attach(generation)
            for event in generation:
                job.outbox.put(slot + event.answer, event)
                for index, result in _finished(generation):
                    done.add(index)
                    post(AnswerDone(job.id, slot + index, result))
            results = [generation.result] if request.n == 1 else generation.results
            for index, result in enumerate(results):
                if index not in done:
                    post(AnswerDone(job.id, slot + index, result))
        except Exception as error:  # noqa: BLE001 - shown to the user, see docstring
            for index in range(request.n):
                if index not in done:
                    post(AnswerFailed(job.id, slot + index, error))
        slot += request.n
    post(JobFinished(job.id))


def _finished(generation) -> list:
    take = getattr(generation, "take_finished", None)
    return take() if take is not None else []
