"""Run a job's units in N spawned worker processes on this machine.

Workers are spawned (never forked: llama.cpp state does not survive a fork), load the
job's resources on their first unit and keep them for the next, and send each event on a
queue as it happens, so the caller sees answers as they end, from every worker.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import queue as queue_module
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import BacoError
from . import Job, Placement, Report, error_data

_worker: dict = {}  # this worker process's job, event queue and loaded resources


def _init_worker(job: Job, events) -> None:
    _worker.update(job=job, events=events, resources=None)


def _work(index: int, unit: Any) -> None:
    job, events = _worker["job"], _worker["events"]
    try:
        if _worker["resources"] is None:
            _worker["resources"] = job.load(job.config, Placement())
            events.put(Report(-1, "loaded", f"process {multiprocessing.current_process().name}"))
        for kind, data in job.work(_worker["resources"], unit):
            events.put(Report(index, kind, data))
    except BacoError as error:
        events.put(Report(index, "error", error_data(error)))


class Processes:
    def __init__(self, workers: int):
        self.workers = workers

    def run(self, job: Job, units: Sequence[Any]) -> Iterator[Report]:
        if not units:
            return
        context = multiprocessing.get_context("spawn")
        events = context.Queue()
        pool = futures.ProcessPoolExecutor(
            max_workers=min(self.workers, len(units)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(job, events),
        )
        try:
            pending = {pool.submit(_work, i, unit) for i, unit in enumerate(units)}
            finished = 0
            while finished < len(units):  # every unit ends with a "done" report
                try:
                    report = events.get(timeout=0.25)
                except queue_module.Empty:
                    done = {f for f in pending if f.done()}
                    for future in done:
                        future.result()  # a worker that crashed raises here
                    pending -= done
                    continue
                if report.kind == "error":
                    raise BacoError(report.data["message"], report.data["hint"])
                finished += report.kind == "done"
                yield report
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
