"""One request in the batched loop, as its caller sees it.

Iterate a Handle for its answers' TokenEvents (each with its answer index) as they
come; `results` holds its Results once every answer has ended; `take_finished()` gives
the answers that ended since the last call; `cancel()` works from any thread and keeps
what each answer wrote.

Iterating drives the loop: the waiting thread has the loop's next step run (on the
process's decode thread, `backend.decode_thread`), or, when another thread's step is
running, waits for it. So callers in several threads (a server's clients, a terminal
app's screens) decode their answers together, in one batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

from ..core.events import Result, TokenEvent
from ..core.settings import GenerationSettings
from .requests_many import Request


class _Ended(NamedTuple):
    """In the event queue after an answer's last event: it ended with `result`."""

    index: int
    result: Result


class Handle:
    """A request submitted to a loop (see the module's docstring)."""

    def __init__(self, loop, request: Request, prompts: dict, fit_note: str | None):
        self.loop = loop
        self.request = request
        self.prompts = prompts  # each role's Prompt
        self.fit_note = fit_note
        self.submitted = time.perf_counter()
        self.cancelled = threading.Event()
        self.next_answer = request.first_answer  # the next answer to give a sequence
        self.done = False  # every answer has ended and its events are queued
        self._histories: dict[int, dict[str, list[int]]] = {}  # each model's tokens
        self._queue: deque = deque()  # TokenEvents and _Ended markers, in order
        self._results: dict[int, Result] = {}
        self._finished: list[tuple[int, Result]] = []  # ended, every event yielded
        self._started = 0
        self._ended = 0
        self._consumed = False

    @property
    def settings(self) -> GenerationSettings:
        return self.request.settings

    @property
    def waiting(self) -> int:
        """Answers not yet given a sequence."""
        return self.request.n - self.next_answer

    # --- the loop's side (under its lock) ---------------------------------------------------

    def deliver(self, events: list[TokenEvent]) -> None:
        self._queue.extend(events)

    def start_answers(self, count: int) -> list[int]:
        """The indices of the next `count` answers, which now have sequences."""
        first = self.next_answer
        self.next_answer += count
        self._started += count
        return list(range(first, first + count))

    def answer_ended(self, index: int, result: Result, histories: dict) -> None:
        self._histories[index] = histories
        self._queue.append(_Ended(index, result))
        self._ended += 1
        self._check_done()

    def skip_waiting(self) -> None:
        """The request was cancelled: answers without a sequence will never start."""
        self.next_answer = self.request.n
        self._check_done()

    def _check_done(self) -> None:
        self.done = self.next_answer == self.request.n and self._ended == self._started

    # --- the caller's side -------------------------------------------------------------------

    def __iter__(self) -> Iterator[TokenEvent]:
        if self._consumed:  # iterated before: its events again
            for result in self.results or ():
                yield from result.tokens
            return
        try:
            while True:
                yield from self.poll()
                if self.done and not self._queue:
                    return
                self.loop.drive()
        finally:
            if not self.done:  # the caller stopped listening: stop the answers too
                self.cancel()
                while not self.done:
                    self.loop.drive()
            self.poll()
            self._consumed = True

    def poll(self) -> list[TokenEvent]:
        """The events that came since the last call, without driving the loop (answers
        that ended meanwhile go to take_finished)."""
        events = []
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, _Ended):
                self._results[item.index] = item.result
                self._finished.append(item)
            else:
                events.append(item)
        return events

    def run(self) -> list[Result]:
        for _ in self:
            pass
        return self.results

    def cancel(self) -> None:
        self.cancelled.set()

    def take_finished(self) -> list[tuple[int, Result]]:
        """(answer index, result) of the answers that ended since the last call, every
        event of which was yielded."""
        done, self._finished = self._finished, []
        return [(item.index, item.result) for item in done]

    @property
    def results(self) -> list[Result] | None:
        """Every answer's Result in order, once all have ended (answers that never began,
        the request having been cancelled first, are left out)."""
        if not self.done:
            return None
        return [self._results[i] for i in sorted(self._results)]

    @property
    def histories(self) -> list[dict[str, list[int]]]:
        """Each answer's tokens in each model (its own vocabulary), in order."""
        return [self._histories[i] for i in sorted(self._histories)]

    @property
    def result(self) -> Result | None:
        """The first answer's Result (for a single answer)."""
        results = self.results
        return results[0] if results else None
