"""Where work runs: in this process, in worker processes, or on Ray actors.

A `Job` says what every worker loads once (from plain-data config) and how it works one
unit (plain data in, a stream of events out). An executor runs a job's units and yields
a `Report` for each event as it arrives; the caller (the one writer of any file) decides
what to keep. Executors hold the loaded resources: each worker loads them once and
closes them when the run ends.

    here.InProcess          one worker: this process
    processes.Processes     N spawned processes on this machine
    ray_actors.RayActors    N Ray actors on a cluster (the only module that imports Ray)

A unit's events are ("answer", data) as each answer ends, then ("done", data). An
executor adds its own reports with unit -1: ("loaded", {"where", "notes"}) when a
worker has loaded (notes: what the loaded resources say of themselves, if anything),
("started", seconds) when a cluster is joined, ("news", line) for what the person
waiting should know (actors Ray has not placed); and ("retry", why) for a unit that is run
again from its start because its worker died (forget what it reported before).
A job's own kinds (batch's "skipped") pass through as they are.

May import: errors. Jobs come from eval and batch (which import this package), never
the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

Event = tuple[str, Any]


@dataclass(frozen=True)
class Placement:
    """Where a worker runs: its llama.cpp threads (None: the config's own), and whether
    it runs on another machine (then names, not paths, find its files)."""

    threads: int | None = None
    elsewhere: bool = False


@dataclass(frozen=True)
class Job:
    """load(config, placement) -> resources (with close()), once per worker;
    work(resources, unit) -> events. Both are module-level functions (workers import
    them by name); config and units are plain data."""

    load: Callable[[Any, Placement], Any]
    work: Callable[[Any, Any], Iterator[Event]]
    config: Any


class Report(NamedTuple):
    unit: int  # the unit's index in the list given to run; -1 for the executor's news
    kind: str  # "answer", "done", "loaded", "started", "retry"
    data: Any = None


class Executor(Protocol):
    def run(self, job: Job, units: Sequence[Any]) -> Iterator[Report]:
        """Run every unit; yield reports as they come. Closing the iterator stops the
        work and releases the workers."""
        ...


def make_executor(
    workers: int | None = 1, ray: str | None = None, threads: int | None = None
) -> Executor:
    """The executor the options name: Ray actors when `ray` is given ("local" for a
    local instance, "auto" or "ray://HOST:PORT" for a cluster; workers None: as many as
    the cluster holds), else this process or `workers` processes."""
    if ray is not None:
        from .ray_actors import RayActors

        return RayActors(ray, workers=workers, threads=threads)
    if workers is None or workers <= 1:
        from .here import InProcess

        return InProcess()
    from .processes import Processes

    return Processes(workers)


def loaded(where: str, resources) -> Report:
    """The report that a worker has loaded: where, and the notes its resources carry."""
    return Report(-1, "loaded", {"where": where, "notes": list(getattr(resources, "notes", ()))})


def error_data(error: BaseException) -> dict:
    """A BacoError as plain data (exceptions with hints may not survive pickling)."""
    return {"message": getattr(error, "message", str(error)), "hint": getattr(error, "hint", None)}
