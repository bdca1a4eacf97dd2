"""Run work units with an executor (here, N processes, Ray: baco_local.executors) and
keep each unit's record, in this process only, as it arrives."""

from __future__ import annotations

from collections.abc import Callable

from ..executors import Executor, make_executor
from .runner import ResourceConfig, WorkUnit, eval_job
from .store import RecordStore

Progress = Callable[[int], None]  # called with the number of answers just finished


def run_units(
    units: list[WorkUnit],
    config: ResourceConfig,
    store: RecordStore,
    *,
    workers: int = 1,
    executor: Executor | None = None,
    progress: Progress = lambda n: None,
    on_loaded: Callable[[], None] = lambda: None,
    on_news: Callable[[str], None] = lambda line: None,
) -> None:
    """Run every unit and add its record to the store (executor: processes by default,
    `workers` of them). A unit run again after its worker died takes back the answers
    it counted; on_news hears of that and of how long Ray took to start."""
    if not units:
        return
    executor = executor or make_executor(workers)
    counted = [0] * len(units)  # answers of each unit counted in progress
    loaded = False
    reports = executor.run(eval_job(config), [unit.to_dict() for unit in units])
    try:
        for report in reports:
            if report.kind == "loaded" and not loaded:
                loaded = True
                on_loaded()
            elif report.kind == "started":
                on_news(f"Ray: joined in {report.data:.1f} s")
            elif report.kind == "news":
                on_news(report.data)
            elif report.kind == "answer":
                counted[report.unit] += 1
                progress(1)
            elif report.kind == "retry":
                on_news(f"unit {report.unit}: run again, {report.data}")
                progress(-counted[report.unit])
                counted[report.unit] = 0
            elif report.kind == "done":
                store.add(report.data)
    finally:
        reports.close()
