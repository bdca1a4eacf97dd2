"""Bring streams up to date: lazily, in batches, and two at a time in two threads.

A stream's pushed tokens wait until the decode loop needs its logits. When two streams
must catch up at the same step they run concurrently, each on half the threads
(ctypes releases the GIL during llama_decode, and each stream owns its own context, so
they never share native state). A stream that catches up alone gets every thread.
"""

from __future__ import annotations

import concurrent.futures as futures
import time
from collections.abc import Iterable

from .backend import Stream


class Scheduler:
    """Decides when and with how many threads streams are evaluated; owns the helper thread.

    `catch_up(streams)` blocks until each given stream has its next-token logits.
    """

    def __init__(self, n_threads: int):
        self.n_threads = max(1, n_threads)
        self._pool: futures.ThreadPoolExecutor | None = None
        self.seconds = 0.0  # time spent inside llama.cpp, for the bench

    def catch_up(self, streams: Iterable[Stream]) -> None:
        todo = [s for s in dict.fromkeys(streams) if s.pending]
        started = time.perf_counter()
        try:
            if len(todo) == 1:
                todo[0].set_threads(self.n_threads)
                todo[0].catch_up()
            elif len(todo) == 2 and self.n_threads >= 2:
                self._together(*todo)
            else:
                for stream in todo:
                    stream.set_threads(self.n_threads)
                    stream.catch_up()
        finally:
            self.seconds += time.perf_counter() - started

    def _together(self, first: Stream, second: Stream) -> None:
        half = self.n_threads // 2
        first.set_threads(self.n_threads - half)
        second.set_threads(half)
        if self._pool is None:
            self._pool = futures.ThreadPoolExecutor(1, thread_name_prefix="baco-eval")
        pending = self._pool.submit(second.catch_up)
        try:
            first.catch_up()
        finally:
            # Never leave a decode running on a context the caller may touch next,
            # even when interrupted (Ctrl-C) while waiting.
            futures.wait([pending])
        pending.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
