"""Two models to decode at one step: side by side (threads split) or one after the other?

The answer depends on the machine, and on what else it is doing. Where one decode
barely speeds up with more threads (93 -> 100 tok/s from 1 to 2 threads was measured
on one 2-core host), two models side by side on one thread each are far faster. Where
a decode scales with threads (33 -> 50 tok/s on another 2-core host), or where another
program takes a core, one model after the other with every thread wins, and it can
skip a decode that the step turns out not to need.

So the loop does not guess: it alternates the two plans for its first steps, times each
step, then keeps the plan with the lower median time, trying the other one now and then
in case the machine changed. Results do not depend on the plan (llama.cpp's numbers do
not depend on the thread count here: repacked weights and flash attention are off on
the CPU), only the speed does. Pure Python; the clock is the caller's.
"""

from __future__ import annotations

import statistics
from collections import deque

SIDE_BY_SIDE = "side-by-side"
ONE_AFTER_THE_OTHER = "one-after-the-other"
PLANS = (SIDE_BY_SIDE, ONE_AFTER_THE_OTHER)


class ThreadPlanner:
    """Chooses a plan per kind of step ("token", "batch", ...) from timed samples.

    explore: samples of each plan taken (alternating) before choosing.
    recheck_every: after choosing, one step in this many tries the other plan.
    keep: the most recent samples kept per plan (the median is taken over them).
    """

    def __init__(self, n_threads: int, explore: int = 6, recheck_every: int = 48, keep: int = 9):
        self.n_threads = n_threads
        self.explore = explore
        self.recheck_every = recheck_every
        self._samples: dict[str, dict[str, deque[float]]] = {}
        self._steps: dict[str, int] = {}
        self.keep = keep

    def choose(self, kind: str) -> str:
        """The plan for the next step of this kind."""
        if self.n_threads < 2:
            return ONE_AFTER_THE_OTHER  # nothing to split
        samples = self._kind(kind)
        step = self._steps.get(kind, 0)
        self._steps[kind] = step + 1
        short = [plan for plan in PLANS if len(samples[plan]) < self.explore]
        if short:  # still learning: alternate, so both plans see the same mix of steps
            return PLANS[step % 2] if len(short) == 2 else short[0]
        best = self.best(kind)
        if step % self.recheck_every == 0:
            return ONE_AFTER_THE_OTHER if best == SIDE_BY_SIDE else SIDE_BY_SIDE
        return best

    def record(self, kind: str, plan: str, seconds: float) -> None:
        """A step of this kind took `seconds` under `plan`."""
        self._kind(kind)[plan].append(seconds)

    def best(self, kind: str) -> str:
        """The plan with the lower median so far (side by side until both are known)."""
        if self.n_threads < 2:
            return ONE_AFTER_THE_OTHER
        medians = self.medians(kind)
        if None in medians.values():
            return SIDE_BY_SIDE
        return min(PLANS, key=lambda plan: medians[plan])

    def medians(self, kind: str) -> dict[str, float | None]:
        samples = self._kind(kind)
        return {plan: statistics.median(samples[plan]) if samples[plan] else None for plan in PLANS}

    def describe(self) -> dict:
        """What was learned, for `baco bench`: per kind, the plan and median step times."""
        out = {}
        for kind in self._samples:
            medians = self.medians(kind)
            out[kind] = {
                "plan": self.best(kind),
                "median_step_ms": {
                    plan: None if m is None else round(m * 1000, 2) for plan, m in medians.items()
                },
                "samples": {plan: len(self._samples[kind][plan]) for plan in PLANS},
            }
        return out

    def _kind(self, kind: str) -> dict[str, deque[float]]:
        if kind not in self._samples:
            self._samples[kind] = {plan: deque(maxlen=self.keep) for plan in PLANS}
        return self._samples[kind]
