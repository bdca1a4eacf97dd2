"""Run work units in this process or in N worker processes, each loading the pair once.

Workers are spawned (never forked: llama.cpp state does not survive a fork), take
units from a process pool and report each finished answer on a queue, so progress and
time remaining move per answer. Finished records are written by this process only.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import queue as queue_module
from collections.abc import Callable

from ..errors import BacoError
from .runner import ResourceConfig, Resources, WorkUnit, run_unit, run_unit_in_process
from .store import RecordStore

Progress = Callable[[int], None]  # called with the number of answers just finished


def run_units(
    units: list[WorkUnit],
    config: ResourceConfig,
    store: RecordStore,
    *,
    workers: int = 1,
    progress: Progress = lambda n: None,
    on_loaded: Callable[[], None] = lambda: None,
) -> None:
    """Run every unit and add its record to the store."""
    if not units:
        return
    if workers <= 1:
        _run_here(units, config, store, progress, on_loaded)
    else:
        _run_in_pool(units, config, store, workers, progress, on_loaded)


def _run_here(units, config, store, progress, on_loaded) -> None:
    resources = Resources(config)
    on_loaded()
    try:
        for unit in units:
            store.add(run_unit(unit, resources, on_answer=lambda: progress(1)))
    finally:
        resources.close()


# --- worker processes -------------------------------------------------------------------

_worker: dict = {}


def _init_worker(config: ResourceConfig, answers) -> None:
    _worker["config"] = config
    _worker["answers"] = answers


def _work(unit_data: dict) -> dict:
    try:
        return run_unit_in_process(
            unit_data, _worker["config"], on_answer=lambda: _worker["answers"].put(1)
        )
    except BacoError as error:  # sent back as data: exceptions with hints may not unpickle
        return {"error": error.message, "hint": error.hint}


def _run_in_pool(units, config, store, workers, progress, on_loaded) -> None:
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    pool = futures.ProcessPoolExecutor(
        max_workers=min(workers, len(units)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(config, answers),
    )
    loaded = False
    try:
        pending = {pool.submit(_work, unit.to_dict()) for unit in units}
        while pending:
            done, pending = futures.wait(pending, timeout=0.25, return_when="FIRST_COMPLETED")
            count = _drain(answers)
            if count and not loaded:
                loaded = True
                on_loaded()
            progress(count)
            for future in done:
                record = future.result()
                if "error" in record:
                    raise BacoError(record["error"], record.get("hint"))
                store.add(record)
        progress(_drain(answers))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(answers) -> int:
    count = 0
    while True:
        try:
            count += answers.get_nowait()
        except queue_module.Empty:
            return count
