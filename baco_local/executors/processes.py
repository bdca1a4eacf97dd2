"""Run a job's units in N spawned worker processes on this machine.

Workers are spawned (never forked: llama.cpp state does not survive a fork), load the
job's resources on their first unit and keep them, take units from a shared queue (a
fast worker takes more), and send each event on another queue as it happens, so the
caller sees answers as they end, from every worker. A run stopped early (Ctrl-C, an
error, the caller closing the iterator) terminates the workers at once: their units'
unread events are not wanted, and a worker blocked on a full queue would never end.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import BacoError
from . import Job, Placement, Report, error_data, loaded


def _worker(job: Job, units, events, number: int) -> None:
    resources = None
    try:
        while (item := units.get()) is not None:
            index, unit = item
            if resources is None:
                resources = job.load(job.config, Placement())
                events.put(loaded(f"worker {number} (process {os.getpid()})", resources))
            for kind, data in job.work(resources, unit):
                events.put(Report(index, kind, data))
    except BacoError as error:
        events.put(Report(-1, "error", error_data(error)))
    except KeyboardInterrupt:
        pass
    except Exception as error:  # a bug: its gist for the caller, not a worker's traceback
        message = f"A worker process failed: {error.__class__.__name__}: {error}"
        events.put(Report(-1, "error", {"message": message, "hint": "please report it"}))
    finally:
        if resources is not None:
            resources.close()


class Processes:
    def __init__(self, workers: int):
        self.workers = workers

    def run(self, job: Job, units: Sequence[Any]) -> Iterator[Report]:
        if not units:
            return
        context = multiprocessing.get_context("spawn")
        todo, events = context.Queue(), context.Queue()
        for item in enumerate(units):
            todo.put(item)
        count = min(self.workers, len(units))
        for _ in range(count):
            todo.put(None)  # one end mark per worker
        workers = [
            context.Process(target=_worker, args=(job, todo, events, number), daemon=True)
            for number in range(1, count + 1)
        ]
        for process in workers:
            process.start()
        finished = 0
        try:
            while finished < len(units):  # every unit ends with a "done" report
                try:
                    report = events.get(timeout=0.25)
                except queue_module.Empty:
                    if any(p.exitcode not in (None, 0) for p in workers):
                        raise BacoError(
                            "A worker process died before its work was done.",
                            "see the messages above (out of memory?); rerun the same "
                            "command to continue: finished work is kept",
                        ) from None
                    continue
                if report.kind == "error":
                    raise BacoError(report.data["message"], report.data["hint"])
                finished += report.kind == "done"
                yield report
        finally:
            for process in workers:
                if finished < len(units) and process.is_alive():
                    process.terminate()
                process.join()
            for q in (todo, events):
                q.cancel_join_thread()
                q.close()
