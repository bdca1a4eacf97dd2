"""Bring streams up to date: lazily, and two at a time when that is faster here.

A stream's pushed tokens wait until the decode loop needs its logits. When two streams
must catch up a few tokens at the same step, there are two plans (`thread_plan`):
- side by side: the first catches up in the calling thread and the second in a helper
  thread, each on half the threads (ctypes releases the GIL during llama_decode, and
  each stream owns its own context, so they never share native state); `begin` returns
  as soon as the first stream is ready, so the loop can route on the base model's
  logits while the other model is still decoding;
- one after the other: the first catches up with every thread, and the second only
  when the step asks for it (`wait`), also with every thread.
A ThreadPlanner times the steps under each plan and keeps the faster one. `wait`
blocks for one stream, and `settle` for all, before a stream is touched again.

A stream that catches up alone, or a long batch such as a prompt, gets every thread.
`run_side_by_side` offers the same choice to the batched loop's two model batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent import futures

from ..backend import Stream
from .thread_plan import ONE_AFTER_THE_OTHER, ThreadPlanner

# Two streams with more pending tokens than this (a prompt) go one after the other with
# every thread each: a long batch scales with threads (550 -> 940 tok/s on Gemma 3 270M
# on one 2-core host). For fewer, the planner decides.
_SIDE_BY_SIDE_MAX = 4


class Scheduler:
    """Decides when, where and with how many threads streams are evaluated.

    seconds: wall time during which at least one llama.cpp decode was running
    (the bench's "inside llama.cpp").
    """

    def __init__(self, n_threads: int):
        self.n_threads = max(1, n_threads)
        self.planner = ThreadPlanner(self.n_threads)
        self._step: tuple[str, float] | None = None  # (plan, start) of the step being timed
        self._pool: futures.ThreadPoolExecutor | None = None
        self._in_flight: dict[Stream, futures.Future] = {}
        self._busy_lock = threading.Lock()
        self._running = 0
        self._busy_since = 0.0
        self.seconds = 0.0
        self.stop_event: threading.Event | None = None  # set: stop between prompt chunks

    def begin(self, streams: Iterable[Stream]) -> None:
        """Start catching up the given streams; return once the first one is ready."""
        todo = [s for s in dict.fromkeys(streams) if s.pending and s not in self._in_flight]
        if len(todo) == 2 and _small(todo):
            plan = self.planner.choose("token")
            self._step = (plan, time.perf_counter())
            if plan == ONE_AFTER_THE_OTHER:
                self.wait(todo[0])  # the second waits until (unless) the step needs it
                return
            first, second = todo
            half = self.n_threads // 2
            first.set_threads(self.n_threads - half)
            second.set_threads(half)
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(1, thread_name_prefix="baco-decode")
            self._in_flight[second] = self._pool.submit(self._timed, second)
            try:
                self._timed(first)
            except BaseException:
                futures.wait([self._in_flight.pop(second)])
                raise
            return
        for stream in todo:
            self.wait(stream)

    def catch_up(self, streams: Iterable[Stream]) -> None:
        """Block until every given stream has its next-token logits."""
        streams = list(streams)
        self.begin(streams)
        for stream in streams:
            self.wait(stream)

    def wait(self, stream: Stream) -> None:
        """Block until `stream` is ready: its in-flight decode done, or caught up here."""
        pending = self._in_flight.get(stream)
        if pending is not None:
            try:
                futures.wait([pending])
            finally:
                # Forget it only once it is done: if Ctrl-C interrupted the wait, settle()
                # still sees it and waits again before anyone touches the stream.
                if pending.done():
                    del self._in_flight[stream]
            pending.result()
        elif stream.pending:
            stream.set_threads(self.n_threads)
            self._timed(stream)

    def end_step(self) -> None:
        """The loop chose its token: the step's time goes to the planner (when it had a
        choice to make)."""
        if self._step is not None:
            plan, started = self._step
            self._step = None
            self.planner.record("token", plan, time.perf_counter() - started)

    def run_side_by_side(self, first, second, kind: str = "batch", between=None) -> None:
        """Run two decode jobs (callables taking a thread count), side by side or one
        after the other as the planner says; times them for it. Errors propagate.
        between: work for the calling thread once `first` is done, while `second` may
        still run (it must not touch what `second` decodes)."""
        plan = self.planner.choose(kind)
        started = time.perf_counter()
        if plan == ONE_AFTER_THE_OTHER:
            self._busy(first, self.n_threads)
            if between is not None:
                between()
            self._busy(second, self.n_threads)
        else:
            half = self.n_threads // 2
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(1, thread_name_prefix="baco-decode")
            helper = self._pool.submit(self._busy, second, half)
            try:
                self._busy(first, self.n_threads - half)
                if between is not None:
                    between()
            finally:
                futures.wait([helper])
            helper.result()
        self.planner.record(kind, plan, time.perf_counter() - started)

    def run_alone(self, job) -> None:
        """Run one decode job with every thread."""
        self._busy(job, self.n_threads)

    def _busy(self, job, n_threads: int) -> None:
        with self._busy_lock:
            self._running += 1
            if self._running == 1:
                self._busy_since = time.perf_counter()
        try:
            job(n_threads)
        finally:
            with self._busy_lock:
                self._running -= 1
                if self._running == 0:
                    self.seconds += time.perf_counter() - self._busy_since

    def settle(self) -> None:
        """Wait for every decode still running in the helper thread; re-raise its error."""
        error = None
        for stream, pending in list(self._in_flight.items()):
            futures.wait([pending])
            del self._in_flight[stream]
            error = error or pending.exception()
        if error is not None:
            raise error

    def _timed(self, stream: Stream) -> None:
        self._busy(lambda _threads: stream.catch_up(self.stop_event), 0)

    def close(self) -> None:
        for pending in self._in_flight.values():
            futures.wait([pending])
        self._in_flight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _small(streams: list[Stream]) -> bool:
    return all(len(s.pending) <= _SIDE_BY_SIDE_MAX for s in streams)
