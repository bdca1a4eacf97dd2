"""Where and with how many threads the two models decode.

Every step of the loop runs on the process's decode thread
(`backend.decode_thread`), whichever thread asked for it, so the same threads always
decode. When a server's clients each stepped the loop in their own thread, measured on
a 2-core host with 8 clients of the in-context Gemma pair, `baco serve --parallel 8`
gave 26-30 tokens/s; with the steps on the decode thread, 42 (see decode_thread.py
for why). A single answer pays one hand-over per step: within +-0.8% on that host.

When both models have a batch to decode at the same step, there are two plans
(`thread_plan`):
- side by side: the first decodes on the decode thread and the second on its helper,
  each on half the threads (ctypes releases the GIL during llama_decode, and each
  model owns its own context, so they never share native state); work for the
  decode thread may run once the first is done, while the second still decodes;
- one after the other: each with every thread.
A ThreadPlanner times the steps under each plan and keeps the faster one. A model that
decodes alone, or a long batch such as a prompt, gets every thread.
"""

from __future__ import annotations

import threading
import time

from ..backend import decode_thread
from .thread_plan import ONE_AFTER_THE_OTHER, ThreadPlanner


class Scheduler:
    """Runs decode jobs (callables taking a thread count) and times them.

    seconds: wall time during which at least one llama.cpp decode was running
    (the bench's "inside llama.cpp").
    """

    def __init__(self, n_threads: int):
        self.n_threads = max(1, n_threads)
        self.planner = ThreadPlanner(self.n_threads)
        self._busy_lock = threading.Lock()
        self._running = 0
        self._busy_since = 0.0
        self.seconds = 0.0

    def run_side_by_side(self, first, second, kind: str = "batch", between=None) -> None:
        """Run two decode jobs, side by side or one after the other as the planner says;
        times them for it. Errors propagate (after both jobs have stopped).
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
            helper = decode_thread.helper().submit(self._busy, second, half)
            try:
                self._busy(first, self.n_threads - half)
                if between is not None:
                    between()
            finally:
                decode_thread.wait(helper)
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
